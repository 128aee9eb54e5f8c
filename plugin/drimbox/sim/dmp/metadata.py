"""Reading of ebRIM 3.0 registry objects (SubmissionSet, DocumentEntry, Association) into plain views."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from lxml import etree

from . import constants as c

RIM = f"{{{c.RIM}}}"


@dataclass
class Coded:
    id: str
    scheme: str
    code: str
    coding_scheme: list[str]
    display: str | None
    classified_object: str
    slots: dict[str, list[str]]
    node: str = ""


@dataclass
class RegistryObjectView:
    id: str
    element: etree._Element
    slots: dict[str, list[str]] = field(default_factory=dict)
    duplicate_slots: list[str] = field(default_factory=list)
    classifications: list[Coded] = field(default_factory=list)
    external_ids: dict[str, list[str]] = field(default_factory=dict)
    external_id_owners: dict[str, list[str]] = field(default_factory=dict)

    def coded(self, scheme: str) -> list[Coded]:
        return [cl for cl in self.classifications if cl.scheme == scheme]

    def slot(self, name: str) -> str | None:
        values = self.slots.get(name)
        return values[0] if values else None

    def external(self, scheme: str) -> str | None:
        values = self.external_ids.get(scheme)
        return values[0] if values else None


@dataclass
class DocumentEntryView(RegistryObjectView):
    mime_type: str = ""
    object_type: str = ""

    @property
    def unique_id(self) -> str:
        return self.external(c.DE_UNIQUE_ID) or ""

    @property
    def patient_id(self) -> str:
        return self.external(c.DE_PATIENT_ID) or ""

    def code_of(self, scheme: str) -> tuple[str, str]:
        found = self.coded(scheme)
        if not found:
            return "", ""
        return found[0].code, (found[0].coding_scheme[0] if found[0].coding_scheme else "")


@dataclass
class SubmissionSetView(RegistryObjectView):
    @property
    def unique_id(self) -> str:
        return self.external(c.SS_UNIQUE_ID) or ""

    @property
    def patient_id(self) -> str:
        return self.external(c.SS_PATIENT_ID) or ""


@dataclass
class AssociationView:
    id: str
    type: str
    source: str
    target: str
    slots: dict[str, list[str]]
    element: etree._Element


@dataclass
class Submission:
    object_list: etree._Element
    submission_sets: list[SubmissionSetView]
    other_packages: list[RegistryObjectView]
    documents: list[DocumentEntryView]
    associations: list[AssociationView]
    loose_classifications: list[etree._Element]
    unknown_objects: list[etree._Element]
    ids: list[str]


def read_slots(el: etree._Element) -> tuple[dict[str, list[str]], list[str]]:
    slots: dict[str, list[str]] = {}
    duplicates = []
    for slot in el.iterfind(f"{RIM}Slot"):
        name = slot.get("name", "")
        if name in slots:
            duplicates.append(name)
        slots.setdefault(name, []).extend(
            (v.text or "").strip() for v in slot.iterfind(f"{RIM}ValueList/{RIM}Value"))
    return slots, duplicates


def localized(el: etree._Element, child: str) -> str | None:
    ls = el.find(f"{RIM}{child}/{RIM}LocalizedString")
    return None if ls is None else ls.get("value")


def read_classification(cl: etree._Element) -> Coded:
    slots, _ = read_slots(cl)
    return Coded(
        id=cl.get("id", ""),
        scheme=cl.get("classificationScheme", ""),
        code=cl.get("nodeRepresentation", ""),
        coding_scheme=slots.get("codingScheme", []),
        display=localized(cl, "Name"),
        classified_object=cl.get("classifiedObject", ""),
        slots=slots,
        node=cl.get("classificationNode", ""),
    )


def _fill(view: RegistryObjectView) -> None:
    el = view.element
    view.slots, view.duplicate_slots = read_slots(el)
    for cl in el.iterfind(f"{RIM}Classification"):
        view.classifications.append(read_classification(cl))
    for ei in el.iterfind(f"{RIM}ExternalIdentifier"):
        scheme = ei.get("identificationScheme", "")
        view.external_ids.setdefault(scheme, []).append(ei.get("value", ""))
        view.external_id_owners.setdefault(scheme, []).append(ei.get("registryObject", ""))


def read_submission(object_list: etree._Element) -> Submission:
    """object_list: rim:RegistryObjectList. Classifications placed at list level are attached to their object."""
    packages: list[RegistryObjectView] = []
    documents: list[DocumentEntryView] = []
    associations: list[AssociationView] = []
    loose: list[etree._Element] = []
    unknown: list[etree._Element] = []
    ids: list[str] = []
    for el in object_list:
        if not isinstance(el.tag, str):
            continue
        tag = etree.QName(el).localname if el.tag.startswith(RIM) else el.tag
        if el.get("id"):
            ids.append(el.get("id"))
        if tag == "RegistryPackage":
            view = RegistryObjectView(el.get("id", ""), el)
            _fill(view)
            packages.append(view)
        elif tag == "ExtrinsicObject":
            doc = DocumentEntryView(el.get("id", ""), el, mime_type=el.get("mimeType", ""),
                                    object_type=el.get("objectType", ""))
            _fill(doc)
            documents.append(doc)
        elif tag == "Association":
            slots, _ = read_slots(el)
            associations.append(AssociationView(el.get("id", ""), el.get("associationType", ""),
                                                el.get("sourceObject", ""), el.get("targetObject", ""), slots, el))
        elif tag == "Classification":
            loose.append(el)
        else:
            unknown.append(el)
    by_id: dict[str, RegistryObjectView] = {p.id: p for p in packages}
    by_id.update({d.id: d for d in documents})
    for el in loose:
        owner = by_id.get(el.get("classifiedObject", ""))
        if owner is not None:
            owner.classifications.append(read_classification(el))
    submission_sets, others = [], []
    for p in packages:
        if any(cl.node == c.NODE_SUBMISSION_SET for cl in p.classifications):
            submission_sets.append(SubmissionSetView(p.id, p.element, p.slots, p.duplicate_slots, p.classifications,
                                                     p.external_ids, p.external_id_owners))
        else:
            others.append(p)
    return Submission(object_list, submission_sets, others, documents, associations, loose, unknown, ids)


_REFERENCE_ATTRIBUTES = ("id", "classifiedObject", "registryObject", "sourceObject", "targetObject", "lid")


def assign_uuids(object_list: etree._Element) -> dict[str, str]:
    """Replace every symbolic id by a fresh urn:uuid (as a registry does) and return the mapping."""
    mapping: dict[str, str] = {}
    for el in object_list.iter(f"{RIM}*"):
        ident = el.get("id")
        if ident and not ident.startswith("urn:uuid:") and ident not in mapping:
            mapping[ident] = f"urn:uuid:{uuid.uuid4()}"
    for el in object_list.iter(f"{RIM}*"):
        for attr in _REFERENCE_ATTRIBUTES:
            value = el.get(attr)
            if value in mapping:
                el.set(attr, mapping[value])
    return mapping
