"""ITI-18 Registry Stored Query: parameter parsing and the three stored queries the DMP flows use."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from . import constants as c
from .errors import XdsRefusal
from .metadata import read_slots
from .store import DmpStore, StoredDocument

KNOWN_STATUSES = {c.STATUS_APPROVED, c.STATUS_DEPRECATED, c.STATUS_DELETED}

FIND_DOCUMENTS_PARAMS = {
    "$XDSDocumentEntryPatientId", "$XDSDocumentEntryStatus", "$XDSDocumentEntryClassCode",
    "$XDSDocumentEntryTypeCode", "$XDSDocumentEntryPracticeSettingCode", "$XDSDocumentEntryCreationTimeFrom",
    "$XDSDocumentEntryCreationTimeTo", "$XDSDocumentEntryServiceStartTimeFrom", "$XDSDocumentEntryServiceStartTimeTo",
    "$XDSDocumentEntryServiceStopTimeFrom", "$XDSDocumentEntryServiceStopTimeTo",
    "$XDSDocumentEntryHealthcareFacilityTypeCode", "$XDSDocumentEntryEventCodeList",
    "$XDSDocumentEntryConfidentialityCode", "$XDSDocumentEntryAuthorPerson", "$XDSDocumentEntryFormatCode",
    "$XDSDocumentEntryType",
}
BY_REFERENCE_PARAMS = FIND_DOCUMENTS_PARAMS | {"$XDSDocumentEntryReferenceIdList", "$homeCommunityId"}
GET_DOCUMENTS_PARAMS = {"$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId", "$homeCommunityId"}


def parse_value(raw: str, param: str) -> list[str]:
    """"('a','b')" -> [a, b]; "'a'" -> [a]; "20200101" -> ["20200101"]."""
    text = raw.strip()
    if text.startswith("(") != text.endswith(")"):
        raise XdsRefusal.one("XDSRegistryError", f"parameter {param}: unbalanced parentheses in {raw!r}", param)
    if text.startswith("("):
        text = text[1:-1]
    items: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " ,":
            i += 1
        if i >= n:
            break
        if text[i] == "'":
            i += 1
            buf = []
            while True:
                if i >= n:
                    raise XdsRefusal.one("XDSRegistryError", f"parameter {param}: unterminated quoted value {raw!r}")
                if text[i] == "'":
                    if i + 1 < n and text[i + 1] == "'":
                        buf.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(text[i])
                i += 1
            items.append("".join(buf))
        else:
            j = text.find(",", i)
            j = n if j < 0 else j
            item = text[i:j].strip()
            if "'" in item or "(" in item:
                raise XdsRefusal.one("XDSRegistryError", f"parameter {param}: malformed value {raw!r}", param)
            items.append(item)
            i = j
    return items


@dataclass
class StoredQuery:
    query_id: str
    return_type: str
    params: dict[str, list[list[str]]]  # name -> list of Value elements -> list of items

    def single(self, name: str) -> str | None:
        values = self.params.get(name)
        if not values:
            return None
        flat = [v for group in values for v in group]
        if len(flat) != 1:
            raise XdsRefusal.one("XDSStoredQueryParamNumber", f"parameter {name} accepts exactly one value")
        return flat[0]

    def required(self, name: str) -> str:
        value = self.single(name)
        if value is None:
            raise XdsRefusal.one("XDSStoredQueryParamNumber", f"required parameter {name} is missing")
        return value

    def any_of(self, name: str) -> list[str]:
        return [v for group in self.params.get(name, []) for v in group]

    def and_of_or(self, name: str) -> list[list[str]]:
        return self.params.get(name, [])


def read_query(payload: etree._Element) -> StoredQuery:
    if payload.tag != f"{{{c.QUERY}}}AdhocQueryRequest":
        raise XdsRefusal.one("XDSRegistryError", f"expected query:AdhocQueryRequest, got {payload.tag}")
    option = payload.find(f"{{{c.QUERY}}}ResponseOption")
    return_type = option.get("returnType", "") if option is not None else ""
    if return_type not in ("LeafClass", "ObjectRef"):
        raise XdsRefusal.one("XDSRegistryError", f"ResponseOption/@returnType {return_type!r} must be LeafClass or "
                                                 "ObjectRef")
    query = payload.find(f"{{{c.RIM}}}AdhocQuery")
    if query is None or not query.get("id"):
        raise XdsRefusal.one("XDSRegistryError", "rim:AdhocQuery with the stored query id missing")
    params: dict[str, list[list[str]]] = {}
    for slot in query.iterfind(f"{{{c.RIM}}}Slot"):
        name = slot.get("name", "")
        values = [(v.text or "") for v in slot.iterfind(f"{{{c.RIM}}}ValueList/{{{c.RIM}}}Value")]
        params.setdefault(name, []).extend(parse_value(v, name) for v in values)
    return StoredQuery(query.get("id"), return_type, params)


def _check_params(q: StoredQuery, allowed: set[str], required: tuple[str, ...]) -> None:
    for name in q.params:
        if name not in allowed:
            raise XdsRefusal.one("XDSRegistryError", f"parameter {name} is not a parameter of stored query "
                                                     f"{q.query_id}", name)
    for name in required:
        if not q.any_of(name):
            raise XdsRefusal.one("XDSStoredQueryMissingParam", f"required parameter {name} missing", name)


def _code_matches(code: str, scheme: str, wanted: list[str]) -> bool:
    for item in wanted:
        w_code, _, rest = item.partition("^^")
        if w_code == code and (not rest or rest == scheme):
            return True
    return False


def _time_in(value: str, lower: str | None, upper: str | None) -> bool:
    if lower is None and upper is None:
        return True
    if not value:
        return False
    if lower is not None and value[:len(lower)] < lower:
        return False
    if upper is not None and value[:len(upper)] >= upper:
        return False
    return True


def _filter(docs: list[StoredDocument], q: StoredQuery) -> list[StoredDocument]:
    simple_codes = {
        "$XDSDocumentEntryClassCode": "class_code",
        "$XDSDocumentEntryTypeCode": "type_code",
        "$XDSDocumentEntryFormatCode": "format_code",
        "$XDSDocumentEntryPracticeSettingCode": "practice_setting",
        "$XDSDocumentEntryHealthcareFacilityTypeCode": "facility_type",
    }
    result = []
    for doc in docs:
        keep = True
        for param, attr in simple_codes.items():
            wanted = q.any_of(param)
            if wanted:
                code, _, scheme = (getattr(doc, attr) or "").partition("^^")
                if not _code_matches(code, scheme, wanted):
                    keep = False
        for param, codes in (("$XDSDocumentEntryEventCodeList", doc.event_codes),
                             ("$XDSDocumentEntryConfidentialityCode", doc.confidentiality)):
            for group in q.and_of_or(param):  # each Value element is ANDed, items inside are ORed
                if not any(_code_matches(code, scheme, group) for code, scheme in codes):
                    keep = False
        for prefix, value in (("CreationTime", doc.creation_time), ("ServiceStartTime", doc.service_start),
                              ("ServiceStopTime", doc.service_stop)):
            lower = q.single(f"$XDSDocumentEntry{prefix}From")
            upper = q.single(f"$XDSDocumentEntry{prefix}To")
            if not _time_in(value or "", lower, upper):
                keep = False
        types = q.any_of("$XDSDocumentEntryType")
        if types and c.OBJECT_TYPE_STABLE_DOC not in types:
            keep = False
        if keep:
            result.append(doc)
    return result


def _statuses(q: StoredQuery) -> list[str]:
    statuses = q.any_of("$XDSDocumentEntryStatus")
    for s in statuses:
        if s not in KNOWN_STATUSES:
            raise XdsRefusal.one("XDSRegistryError", f"unknown status {s!r} in $XDSDocumentEntryStatus",
                                 "$XDSDocumentEntryStatus")
    return statuses


def run_query(store: DmpStore, q: StoredQuery) -> list[StoredDocument]:
    if q.query_id == c.SQ_FIND_DOCUMENTS:
        _check_params(q, FIND_DOCUMENTS_PARAMS, ("$XDSDocumentEntryPatientId", "$XDSDocumentEntryStatus"))
        docs = store.documents_of_patient(q.required("$XDSDocumentEntryPatientId"), _statuses(q))
        return _filter(docs, q)
    if q.query_id == c.SQ_FIND_DOCUMENTS_BY_REFERENCE_ID:
        _check_params(q, BY_REFERENCE_PARAMS, ("$XDSDocumentEntryPatientId", "$XDSDocumentEntryStatus",
                                               "$XDSDocumentEntryReferenceIdList"))
        docs = store.documents_of_patient(q.required("$XDSDocumentEntryPatientId"), _statuses(q))
        wanted = set(q.any_of("$XDSDocumentEntryReferenceIdList"))
        return [d for d in _filter(docs, q) if wanted & set(d.reference_ids)]
    if q.query_id == c.SQ_GET_DOCUMENTS:
        _check_params(q, GET_DOCUMENTS_PARAMS, ())
        uuids = q.any_of("$XDSDocumentEntryEntryUUID")
        unique_ids = q.any_of("$XDSDocumentEntryUniqueId")
        if bool(uuids) == bool(unique_ids):
            raise XdsRefusal.one("XDSStoredQueryParamNumber", "GetDocuments needs exactly one of "
                                 "$XDSDocumentEntryEntryUUID or $XDSDocumentEntryUniqueId")
        found = [store.document_by_uuid(u) for u in uuids] + [store.document_by_unique_id(u) for u in unique_ids]
        docs = [d for d in found if d is not None]
        patients = {d.patient_id for d in docs}
        if len(patients) > 1:
            raise XdsRefusal.one("XDSResultNotSinglePatient", "GetDocuments result spans several patients")
        return docs
    raise XdsRefusal.one("XDSUnknownStoredQuery", f"stored query {q.query_id} is not supported by this registry",
                         q.query_id)


def leaf_class(doc: StoredDocument, repository_unique_id: str) -> etree._Element:
    el = etree.fromstring(doc.xml)
    el.set("status", doc.status)
    el.set("lid", el.get("lid") or doc.entry_uuid)
    el.set("objectType", c.OBJECT_TYPE_STABLE_DOC)
    slots, _ = read_slots(el)
    if "repositoryUniqueId" not in slots:
        slot = etree.Element(f"{{{c.RIM}}}Slot", {"name": "repositoryUniqueId"})
        etree.SubElement(etree.SubElement(slot, f"{{{c.RIM}}}ValueList"), f"{{{c.RIM}}}Value").text = \
            repository_unique_id
        el.insert(0, slot)
    return el


def object_ref(doc: StoredDocument) -> etree._Element:
    return etree.Element(f"{{{c.RIM}}}ObjectRef", {"id": doc.entry_uuid})
