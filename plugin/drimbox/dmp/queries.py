"""ITI-18 Registry Stored Query: the requests (FindDocuments, FindDocumentsByReferenceId, GetDocuments) and the
reading of their DocumentEntries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from drimbox.dmp import xds_ids
from drimbox.reports.model import Code

RIM = xds_ids.RIM


@dataclass(frozen=True)
class DocumentEntrySummary:
    entry_uuid: str
    unique_id: str = ""
    repository_id: str = ""
    home_community_id: str = ""
    status: str = ""
    mime_type: str = ""
    patient_id: str = ""
    title: str = ""
    creation_time: str = ""
    service_start: str = ""
    service_stop: str = ""
    hash: str = ""
    size: int | None = None
    class_code: Code | None = None
    type_code: Code | None = None
    format_code: Code | None = None
    confidentiality: tuple[Code, ...] = ()
    event_codes: tuple[Code, ...] = ()
    reference_ids: tuple[str, ...] = ()
    author_institutions: tuple[str, ...] = ()
    author_persons: tuple[str, ...] = ()

    @property
    def study_uids(self) -> tuple[str, ...]:
        return tuple(ref.split("^", 1)[0] for ref in self.reference_ids if ref.endswith(xds_ids.REF_STUDY_UID))


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _list(values: Iterable[str]) -> str:
    return "(" + ",".join(_quoted(v) for v in values) + ")"


def _code_list(codes: Iterable[Code]) -> str:
    return _list(f"{code.code}^^{code.system}" for code in codes)


def adhoc_query(query_id: str, parameters: list[tuple[str, str]], return_type: str = "LeafClass") -> etree._Element:
    request = etree.Element(f"{{{xds_ids.QUERY}}}AdhocQueryRequest", nsmap={"query": xds_ids.QUERY, "rim": RIM})
    etree.SubElement(request, f"{{{xds_ids.QUERY}}}ResponseOption", returnType=return_type,
                     returnComposedObjects="true")
    query = etree.SubElement(request, f"{{{RIM}}}AdhocQuery", id=query_id)
    for name, value in parameters:
        slot = etree.SubElement(query, f"{{{RIM}}}Slot", name=name)
        etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = value
    return request


def find_documents(
    patient_cx: str,
    *,
    statuses: Iterable[str] = (xds_ids.STATUS_APPROVED,),
    type_codes: Iterable[Code] = (),
    class_codes: Iterable[Code] = (),
    event_codes: Iterable[Code] = (),
    creation_from: str = "",
    creation_to: str = "",
    service_start_from: str = "",
    service_stop_to: str = "",
) -> etree._Element:
    parameters = [("$XDSDocumentEntryPatientId", _quoted(patient_cx)),
                  ("$XDSDocumentEntryStatus", _list(statuses))]
    if class_codes := list(class_codes):
        parameters.append(("$XDSDocumentEntryClassCode", _code_list(class_codes)))
    if type_codes := list(type_codes):
        parameters.append(("$XDSDocumentEntryTypeCode", _code_list(type_codes)))
    if event_codes := list(event_codes):
        parameters.append(("$XDSDocumentEntryEventCodeList", _code_list(event_codes)))
    for name, value in (("$XDSDocumentEntryCreationTimeFrom", creation_from),
                        ("$XDSDocumentEntryCreationTimeTo", creation_to),
                        ("$XDSDocumentEntryServiceStartTimeFrom", service_start_from),
                        ("$XDSDocumentEntryServiceStopTimeTo", service_stop_to)):
        if value:
            parameters.append((name, value))
    return adhoc_query(xds_ids.QUERY_FIND_DOCUMENTS, parameters)


def find_documents_by_reference_id(
    patient_cx: str,
    reference_ids: Iterable[str],
    *,
    statuses: Iterable[str] = (xds_ids.STATUS_APPROVED,),
) -> etree._Element:
    parameters = [("$XDSDocumentEntryPatientId", _quoted(patient_cx)),
                  ("$XDSDocumentEntryStatus", _list(statuses)),
                  ("$XDSDocumentEntryReferenceIdList", _list(reference_ids))]
    return adhoc_query(xds_ids.QUERY_FIND_DOCUMENTS_BY_REFERENCE_ID, parameters)


def get_documents(unique_ids: Iterable[str]) -> etree._Element:
    return adhoc_query(xds_ids.QUERY_GET_DOCUMENTS, [("$XDSDocumentEntryUniqueId", _list(unique_ids))])


def document_entries(response: etree._Element) -> list[DocumentEntrySummary]:
    """Every ExtrinsicObject of an AdhocQueryResponse (LeafClass) as a summary."""
    return [_summary(entry) for entry in response.iter(f"{{{RIM}}}ExtrinsicObject")]


def _slot_values(entry: etree._Element, name: str) -> list[str]:
    for slot in entry.iterfind(f"{{{RIM}}}Slot"):
        if slot.get("name") == name:
            return [(value.text or "").strip() for value in slot.iterfind(f"{{{RIM}}}ValueList/{{{RIM}}}Value")]
    return []


def _first(entry: etree._Element, name: str) -> str:
    values = _slot_values(entry, name)
    return values[0] if values else ""


def _name(element: etree._Element) -> str:
    localized = element.find(f"{{{RIM}}}Name/{{{RIM}}}LocalizedString")
    return localized.get("value", "") if localized is not None else ""


def _codes(entry: etree._Element, scheme: str) -> list[Code]:
    codes = []
    for classification in entry.iterfind(f"{{{RIM}}}Classification"):
        if classification.get("classificationScheme") == scheme:
            system = _first(classification, "codingScheme")
            codes.append(Code(classification.get("nodeRepresentation", ""), system, _name(classification)))
    return codes


def _external_id(entry: etree._Element, scheme: str) -> str:
    for identifier in entry.iterfind(f"{{{RIM}}}ExternalIdentifier"):
        if identifier.get("identificationScheme") == scheme:
            return identifier.get("value", "")
    return ""


def _summary(entry: etree._Element) -> DocumentEntrySummary:
    authors_institution: list[str] = []
    authors_person: list[str] = []
    for classification in entry.iterfind(f"{{{RIM}}}Classification"):
        if classification.get("classificationScheme") == xds_ids.DE_AUTHOR:
            authors_institution += _slot_values(classification, "authorInstitution")
            authors_person += _slot_values(classification, "authorPerson")
    size = _first(entry, "size")

    def one(scheme: str) -> Code | None:
        codes = _codes(entry, scheme)
        return codes[0] if codes else None

    return DocumentEntrySummary(
        entry_uuid=entry.get("id", ""),
        unique_id=_external_id(entry, xds_ids.DE_UNIQUE_ID),
        repository_id=_first(entry, "repositoryUniqueId"),
        home_community_id=entry.get("home", ""),
        status=entry.get("status", ""),
        mime_type=entry.get("mimeType", ""),
        patient_id=_external_id(entry, xds_ids.DE_PATIENT_ID),
        title=_name(entry),
        creation_time=_first(entry, "creationTime"),
        service_start=_first(entry, "serviceStartTime"),
        service_stop=_first(entry, "serviceStopTime"),
        hash=_first(entry, "hash"),
        size=int(size) if size.isdigit() else None,
        class_code=one(xds_ids.DE_CLASS_CODE),
        type_code=one(xds_ids.DE_TYPE_CODE),
        format_code=one(xds_ids.DE_FORMAT_CODE),
        confidentiality=tuple(_codes(entry, xds_ids.DE_CONFIDENTIALITY_CODE)),
        event_codes=tuple(_codes(entry, xds_ids.DE_EVENT_CODE_LIST)),
        reference_ids=tuple(_slot_values(entry, xds_ids.REFERENCE_ID_LIST_SLOT)),
        author_institutions=tuple(authors_institution),
        author_persons=tuple(authors_person),
    )
