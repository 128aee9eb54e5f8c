"""Read a CR-IMG (CDA R2 level 1) into a :class:`Report`.

Elements are matched on their local names, so documents that forget the HL7 v3 namespace still parse.

Pairing studies with orders (a report may cover several of each; the CDA does not link them):
- no order: every study gets an empty order;
- one order: it applies to every study;
- one study and several orders: one pair per order, all on that study;
- as many orders as studies: paired by position (document order);
- otherwise: paired by position, extra studies get no order, extra orders go to the last study (a warning
  says so).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from lxml import etree

from drimbox.reports.errors import ReportError
from drimbox.reports.model import Code, Organization, PatientIdentity, Person, Report, StudyOrder
from drimbox.reports.text import normalise_modality, repair_double_utf8

INS_OIDS = frozenset({"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"})
RPPS_ROOT = "1.2.250.1.71.4.2.1"
CCAM_OID = "1.2.250.1.213.2.5"
DICOM_CODES_OID = "1.2.840.10008.2.16.4"
SNOMED_OID = "2.16.840.1.113883.6.96"
LOINC_OID = "2.16.840.1.113883.6.1"
REPORT_LOINC = "18748-4"

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")
_LOOSE_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")
_ENCODING_DECL = re.compile(rb"""^(<\?xml[^>]*?encoding\s*=\s*)(["'])[^"']*\2""")


def parse_cda(xml: bytes) -> Report:
    """Parse a CR-IMG. Raises :class:`ReportError` when the document cannot be used."""
    if not xml or not xml.strip():
        raise ReportError("the CDA is empty")
    data, warnings = _prepare(xml)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True,
                             remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ReportError(f"the CDA is not well-formed XML: {exc}") from None
    if _local(root) != "ClinicalDocument":
        raise ReportError(f"the XML root is <{_local(root)}>, not a CDA <ClinicalDocument>")

    report_id = _format_id(_first(root, "id"))
    if not report_id:
        raise ReportError("ClinicalDocument/id has no root: the report has no identifier")
    doc_code = _first(root, "code")
    if doc_code is not None and doc_code.get("code") and doc_code.get("code") != REPORT_LOINC:
        warnings.append(f"ClinicalDocument/code is {doc_code.get('code')}, not {REPORT_LOINC} (imaging report)")

    patient = _patient(root, warnings)
    if not patient.ins:
        raise ReportError("recordTarget/patientRole has no INS (id with root " + " or ".join(sorted(INS_OIDS)) + ")")

    events = _imaging_service_events(root, warnings)
    study_uids = _unique(uid for _, uids in events for uid in uids)
    if not study_uids:
        raise ReportError("the CDA names no study: documentationOf/serviceEvent/id (Study Instance UID) is missing")
    orders = _orders(root)
    studies = _pair(study_uids, orders, warnings)

    act, translations, modalities, regions = _acts([event for event, _ in events], warnings)
    starts = [t for event, _ in events if (t := _attr(event, "effectiveTime/low", "value"))]
    stops = [t for event, _ in events if (t := _attr(event, "effectiveTime/high", "value"))]

    author_entity = _first(root, "author/assignedAuthor")
    organization = _organization(_first(author_entity, "representedOrganization"),
                                 _first(root, "componentOf/encompassingEncounter/location/healthCareFacility/code"))
    practice = None
    for event, _ in events:
        practice = _code(_first(event, "performer/assignedEntity/representedOrganization/standardIndustryClassCode"))
        if practice:
            break

    return Report(
        report_id=report_id,
        set_id=_format_id(_first(root, "setId")),
        version=_version(root, warnings),
        replaces_report_id=_replaced(root),
        title=_text(_first(root, "title")),
        effective_time=_attr(root, "effectiveTime", "value"),
        confidentiality=_code(_first(root, "confidentialityCode")),
        patient=patient,
        studies=studies,
        act=act,
        act_translations=translations,
        modalities=modalities,
        anatomic_regions=regions,
        service_start=min(starts, key=_sortable_time) if starts else "",
        service_stop=max(stops, key=_sortable_time) if stops else "",
        author=_person(author_entity),
        organization=organization,
        legal_authenticator=_person(_first(root, "legalAuthenticator/assignedEntity")),
        practice_setting=practice or organization.sector,
        warnings=tuple(warnings),
    )


def format_ii(root: str, extension: str | None) -> str:
    """The box's string form of an HL7 v3 II: "root" or "root^extension"."""
    return f"{root}^{extension}" if extension else root


def is_dicom_uid(value: str) -> bool:
    return len(value) <= 64 and bool(_UID.match(value))


# -- preparation ---------------------------------------------------------------------------------------------

def _prepare(xml: bytes) -> tuple[bytes, list[str]]:
    warnings: list[str] = []
    data = xml.lstrip()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data, warnings  # not UTF-8: let the XML declaration name the encoding
    repaired, changed = repair_double_utf8(text)
    if changed:
        warnings.append("the CDA text was double-encoded UTF-8; repaired")
        data = _ENCODING_DECL.sub(rb"\1\2UTF-8\2", repaired.encode("utf-8"), count=1)
    return data, warnings


# -- tree helpers (local names, namespace-agnostic) ----------------------------------------------------------

def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _children(el: etree._Element | None, name: str) -> Iterator[etree._Element]:
    if el is None:
        return
    for child in el:
        if isinstance(child.tag, str) and _local(child) == name:
            yield child


def _all(el: etree._Element | None, path: str) -> list[etree._Element]:
    nodes = [el] if el is not None else []
    for step in path.split("/"):
        nodes = [child for node in nodes for child in _children(node, step)]
    return nodes


def _first(el: etree._Element | None, path: str) -> etree._Element | None:
    found = _all(el, path)
    return found[0] if found else None


def _attr(el: etree._Element | None, path: str, attribute: str) -> str:
    node = _first(el, path)
    return (node.get(attribute) or "").strip() if node is not None else ""


def _text(el: etree._Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def _ii(el: etree._Element | None) -> tuple[str, str]:
    if el is None:
        return "", ""
    return (el.get("root") or "").strip(), (el.get("extension") or "").strip()


def _format_id(el: etree._Element | None) -> str:
    root, extension = _ii(el)
    return format_ii(root, extension) if root else ""


def _code(el: etree._Element | None) -> Code | None:
    if el is None or not el.get("code"):
        return None
    return Code(el.get("code", "").strip(), (el.get("codeSystem") or "").strip(), (el.get("displayName") or "").strip())


def _unique(items: Iterable) -> list:
    seen: list = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _sortable_time(value: str) -> str:
    return re.sub(r"[^0-9].*$", "", value).ljust(14, "0")


# -- sections -------------------------------------------------------------------------------------------------

def _version(root: etree._Element, warnings: list[str]) -> int:
    raw = _attr(root, "versionNumber", "value")
    if not raw:
        return 1
    try:
        return int(raw)
    except ValueError:
        warnings.append(f"versionNumber {raw!r} is not an integer; using 1")
        return 1


def _replaced(root: etree._Element) -> str | None:
    for related in _children(root, "relatedDocument"):
        if (related.get("typeCode") or "").upper() == "RPLC":
            replaced = _format_id(_first(related, "parentDocument/id"))
            if replaced:
                return replaced
    return None


def _patient(root: etree._Element, warnings: list[str]) -> PatientIdentity:
    role = _first(root, "recordTarget/patientRole")
    if role is None:
        raise ReportError("the CDA has no recordTarget/patientRole (patient)")
    ins = ins_oid = ipp = ipp_issuer = None
    for id_el in _children(role, "id"):
        id_root, extension = _ii(id_el)
        if not extension:
            continue
        if id_root in INS_OIDS:
            if ins is None:
                ins, ins_oid = extension, id_root
            elif extension != ins:
                warnings.append(f"the patient has a second INS {extension} ({id_root}); using {ins}")
        elif ipp is None:
            ipp, ipp_issuer = extension, id_root or None

    person = _first(role, "patient")
    birth_family = used_family = birth_given = used_given = ""
    plain_family = ""
    for name in _children(person, "name"):
        for family in _children(name, "family"):
            qualifier = (family.get("qualifier") or "").upper().split()
            value = _text(family)
            if "BR" in qualifier and not birth_family:
                birth_family = value
            elif ("CL" in qualifier or "SP" in qualifier) and not used_family:
                used_family = value
            elif not qualifier and not plain_family:
                plain_family = value
        for given in _children(name, "given"):
            qualifier = (given.get("qualifier") or "").upper().split()
            value = _text(given)
            if "CL" in qualifier:
                used_given = used_given or value
            elif not birth_given:
                birth_given = value
    birth_family = birth_family or plain_family or used_family
    sex = _attr(person, "administrativeGenderCode", "code").upper()
    if sex and sex not in ("M", "F", "U"):
        warnings.append(f"administrativeGenderCode {sex!r} read as U")
        sex = "U"
    birthplace = _text(_first(person, "birthplace/place/addr/county")) or None
    return PatientIdentity(
        ins=ins, ins_oid=ins_oid, ipp=ipp, ipp_issuer=ipp_issuer,
        family=birth_family, given=birth_given, sex=sex,
        birth_date=_attr(person, "birthTime", "value")[:8], birthplace=birthplace,
        used_family=used_family or birth_family, used_given=used_given or birth_given,
    )


def _study_uid(id_el: etree._Element, warnings: list[str]) -> str | None:
    root, extension = _ii(id_el)
    if not extension or extension.lower() == "studyinstanceuid":
        candidate = root
    elif _LOOSE_UID.match(extension):
        candidate = extension
    else:
        warnings.append(f"serviceEvent/id {format_ii(root, extension)} is not a study UID; ignored")
        return None
    if not candidate:
        return None
    if not is_dicom_uid(candidate):
        if _LOOSE_UID.match(candidate) and len(candidate) <= 64:
            warnings.append(f"study UID {candidate} is not a strictly valid DICOM UID (leading zero); kept")
            return candidate
        warnings.append(f"serviceEvent/id {candidate!r} is not a DICOM UID; ignored")
        return None
    return candidate


def _imaging_service_events(root: etree._Element, warnings: list[str]) -> list[tuple[etree._Element, list[str]]]:
    """serviceEvents naming at least one study, with their study UIDs."""
    events = []
    for event in _all(root, "documentationOf/serviceEvent"):
        uids = _unique(uid for id_el in _children(event, "id") if (uid := _study_uid(id_el, warnings)))
        if uids:
            events.append((event, uids))
    return events


def _orders(root: etree._Element) -> list[StudyOrder]:
    """Orders as StudyOrder records with an empty study UID (filled when paired)."""
    orders = []
    for order in _all(root, "inFulfillmentOf/order"):
        order_root, order_ext = _ii(_first(order, "id"))
        acc_root, acc_ext = _ii(_first(order, "accessionNumber"))
        if not (order_root or order_ext or acc_ext):
            continue
        orders.append(StudyOrder(
            study_uid="",
            accession=acc_ext,
            accession_issuer=acc_root if acc_ext else "",
            order=order_ext or order_root,
            order_issuer=order_root if order_ext else "",
        ))
    return orders


def _pair(study_uids: list[str], orders: list[StudyOrder], warnings: list[str]) -> tuple[StudyOrder, ...]:
    def on(order: StudyOrder, uid: str) -> StudyOrder:
        return StudyOrder(uid, order.accession, order.accession_issuer, order.order, order.order_issuer)

    if not orders:
        return tuple(StudyOrder(uid) for uid in study_uids)
    if len(orders) == 1:
        return tuple(on(orders[0], uid) for uid in study_uids)
    if len(study_uids) == 1:
        return tuple(on(order, study_uids[0]) for order in orders)
    if len(orders) != len(study_uids):
        warnings.append(f"{len(study_uids)} studies and {len(orders)} orders: paired by position")
    pairs = [on(order, uid) for uid, order in zip(study_uids, orders, strict=False)]
    pairs += [StudyOrder(uid) for uid in study_uids[len(orders):]]
    pairs += [on(order, study_uids[-1]) for order in orders[len(study_uids):]]
    return tuple(pairs)


def _acts(events: list[etree._Element], warnings: list[str]):
    act = None
    translations: list[Code] = []
    modalities: list[str] = []
    regions: list[Code] = []
    for event in events:
        code_el = _first(event, "code")
        if act is None:
            act = _code(code_el)
        for tr in _children(code_el, "translation"):
            code = _code(tr)
            if code is None:
                continue
            if code.system == DICOM_CODES_OID and code.code.isalpha():
                modality = normalise_modality(code.code)
                if modality != code.code:
                    warnings.append(f"modality {code.code!r} read as {modality!r}")
                    code = Code(modality, code.system, code.display)
                if modality not in modalities:
                    modalities.append(modality)
            elif code.system == SNOMED_OID and code not in regions:
                regions.append(code)
            if code not in translations:
                translations.append(code)
    return act, tuple(translations), tuple(modalities), tuple(regions)


def _person(entity: etree._Element | None) -> Person:
    if entity is None:
        return Person()
    ids = list(_children(entity, "id"))
    chosen = next((el for el in ids if el.get("root") == RPPS_ROOT), ids[0] if ids else None)
    id_root, extension = _ii(chosen)
    name = _first(entity, "assignedPerson/name")
    return Person(
        id_nat=extension,
        family=_text(_first(name, "family")),
        given=_text(_first(name, "given")),
        id_root=id_root or RPPS_ROOT,
    )


def _organization(org: etree._Element | None, facility: etree._Element | None) -> Organization:
    if org is None:
        return Organization(facility_type=_code(facility))
    id_root, extension = _ii(_first(org, "id"))
    return Organization(
        id=extension or id_root,
        id_root=(id_root if extension else "") or Organization.id_root,
        name=_text(_first(org, "name")),
        sector=_code(_first(org, "standardIndustryClassCode")),
        facility_type=_code(facility),
    )
