"""Registry-state-free checks of submitted metadata (IHE XDS.b + the CI-SIS DMP rules: docs/conformance.md, DMP)."""

from __future__ import annotations

import re

from . import constants as c
from .errors import ErrorCollector
from .metadata import Coded, DocumentEntryView, RegistryObjectView, Submission, SubmissionSetView

META = "XDSRegistryMetadataError"

_DTM = re.compile(r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2})?)?)?)?)?$")
_OID = re.compile(r"^[0-2](\.(0|[1-9]\d*))+$")
_HEX40 = re.compile(r"^[0-9A-Fa-f]{40}$")
_PATIENT_CX = re.compile(r"^[0-9A-Za-z]{1,20}\^\^\^&(" + "|".join(re.escape(o) for o in c.OID_INS) + r")&ISO\^NH$")
_SOURCE_PATIENT_CX = re.compile(r"^[^\^]+\^\^\^&[0-9.]+&ISO\^[A-Z]{2}$")
_XCN = re.compile(r"^[^\^]+\^.*\^&[0-9.]+&ISO\^[A-Z]\^\^\^[A-Z]+$")
_XON = re.compile(r"^[^\^]*\^\^\^\^\^&[0-9.]+&ISO\^[A-Z]+\^\^\^[^\^]+$")
_REFERENCE_ID = re.compile(r"^[^\^]+\^\^\^[^\^]*\^urn:ihe:iti:xds:20\d\d:[A-Za-z]+$")
_ALL_SCHEMES = {
    c.DE_AUTHOR, c.DE_CLASS_CODE, c.DE_CONFIDENTIALITY, c.DE_EVENT_CODE, c.DE_FORMAT_CODE, c.DE_FACILITY_TYPE,
    c.DE_PRACTICE_SETTING, c.DE_TYPE_CODE,
}

KIND_KOS = "KOS"
KIND_SIGNATURE = "SIGNATURE"
KIND_OTHER = "OTHER"


def document_kind(doc: DocumentEntryView) -> str:
    type_code, _ = doc.code_of(c.DE_TYPE_CODE)
    class_code, _ = doc.code_of(c.DE_CLASS_CODE)
    if type_code == c.KOS_TYPE[0] or doc.mime_type == c.KOS_MIME or class_code == c.KOS_CLASS[0]:
        return KIND_KOS
    if type_code == c.SIG_TYPE_CODE or class_code == c.SIG_CLASS_CODE:
        return KIND_SIGNATURE
    return KIND_OTHER


def structure_ids(obj: RegistryObjectView, scheme: str) -> set[str]:
    """Structure ids (XON component 10) of the authorInstitution values of an object's authors."""
    found = set()
    for author in obj.coded(scheme):
        for xon in author.slots.get("authorInstitution", []):
            parts = xon.split("^")
            if len(parts) >= 10 and parts[9]:
                found.add(parts[9])
    return found


def check_single_slot(errors: ErrorCollector, obj: RegistryObjectView, name: str, pattern: re.Pattern | None = None,
                      what: str = "") -> str | None:
    values = obj.slots.get(name)
    if not values:
        errors.add(META, f"{what} {obj.id}: mandatory slot {name} missing", obj.id)
        return None
    if len(values) != 1:
        errors.add(META, f"{what} {obj.id}: slot {name} must have exactly one value (has {len(values)})", obj.id)
        return None
    if pattern is not None and not pattern.match(values[0]):
        errors.add(META, f"{what} {obj.id}: slot {name} value {values[0]!r} is malformed", obj.id)
        return None
    return values[0]


def check_coded(errors: ErrorCollector, obj: RegistryObjectView, scheme: str, label: str, *, min_count: int = 1,
                max_count: int | None = 1, expected: tuple[str, tuple[str, ...] | str] | None = None,
                coding_schemes: tuple[str, ...] | None = None) -> list[Coded]:
    found = obj.coded(scheme)
    if len(found) < min_count:
        errors.add(META, f"{obj.id}: {label} classification ({scheme}) missing", obj.id)
        return found
    if max_count is not None and len(found) > max_count:
        errors.add(META, f"{obj.id}: {label} must appear at most {max_count} time(s) (found {len(found)})", obj.id)
    for cl in found:
        where = f"{obj.id}/{label}"
        if cl.classified_object != obj.id:
            errors.add(META, f"{where}: classifiedObject {cl.classified_object!r} is not {obj.id}", obj.id)
        if scheme == c.DE_AUTHOR or scheme == c.SS_AUTHOR:
            continue
        if not cl.code:
            errors.add(META, f"{where}: nodeRepresentation (code) missing", obj.id)
        if len(cl.coding_scheme) != 1 or not cl.coding_scheme[0]:
            errors.add(META, f"{where}: codingScheme slot must have exactly one value", obj.id)
            continue
        if not cl.display:
            errors.add(META, f"{where}: Name (display name) of code {cl.code!r} missing", obj.id)
        if expected is not None:
            code, schemes = expected
            schemes = (schemes,) if isinstance(schemes, str) else schemes
            if cl.code != code or cl.coding_scheme[0] not in schemes:
                errors.add(META, f"{where}: expected {code}^{'|'.join(schemes)}, got "
                                 f"{cl.code}^{cl.coding_scheme[0]}", obj.id)
        elif coding_schemes is not None and cl.coding_scheme[0] not in coding_schemes:
            errors.add(META, f"{where}: codingScheme {cl.coding_scheme[0]!r} not allowed "
                             f"(expected {' or '.join(coding_schemes)})", obj.id)
    return found


def check_authors(errors: ErrorCollector, obj: RegistryObjectView, scheme: str) -> None:
    authors = check_coded(errors, obj, scheme, "author", max_count=None)
    for author in authors:
        if author.code:
            errors.add(META, f"{obj.id}/author: nodeRepresentation must be empty", obj.id)
        persons = author.slots.get("authorPerson", [])
        institutions = author.slots.get("authorInstitution", [])
        if not persons and not institutions:
            errors.add(META, f"{obj.id}/author: authorPerson or authorInstitution required", obj.id)
        if len(persons) > 1:
            errors.add(META, f"{obj.id}/author: authorPerson must have one value", obj.id)
        for value in persons:
            if not _XCN.match(value):
                errors.add(META, f"{obj.id}/author: authorPerson {value!r} is not an XCN with an assigning authority",
                           obj.id)
        for value in institutions:
            if not _XON.match(value):
                errors.add(META, f"{obj.id}/author: authorInstitution {value!r} is not an XON "
                                 f"<name>^^^^^&<OID>&ISO^<type>^^^<id>", obj.id)


def check_external_ids(errors: ErrorCollector, obj: RegistryObjectView, schemes: dict[str, str]) -> None:
    for scheme, label in schemes.items():
        values = obj.external_ids.get(scheme, [])
        if len(values) != 1:
            errors.add(META, f"{obj.id}: ExternalIdentifier {label} ({scheme}) must appear exactly once "
                             f"(found {len(values)})", obj.id)
            continue
        owner = obj.external_id_owners[scheme][0]
        if owner != obj.id:
            errors.add(META, f"{obj.id}: ExternalIdentifier {label} has registryObject {owner!r}", obj.id)


def check_submission_set(errors: ErrorCollector, ss: SubmissionSetView) -> None:
    check_single_slot(errors, ss, "submissionTime", _DTM, "SubmissionSet")
    check_authors(errors, ss, c.SS_AUTHOR)
    check_coded(errors, ss, c.SS_CONTENT_TYPE, "contentTypeCode", coding_schemes=(c.OID_CONTENT_TYPE,))
    check_external_ids(errors, ss, {c.SS_PATIENT_ID: "XDSSubmissionSet.patientId",
                                    c.SS_SOURCE_ID: "XDSSubmissionSet.sourceId",
                                    c.SS_UNIQUE_ID: "XDSSubmissionSet.uniqueId"})
    if ss.patient_id and not _PATIENT_CX.match(ss.patient_id):
        errors.add(META, f"SubmissionSet patientId {ss.patient_id!r} is not an INS CX <INS>^^^&<INS OID>&ISO^NH",
                   ss.id)
    for label, value in (("sourceId", ss.external(c.SS_SOURCE_ID)), ("uniqueId", ss.unique_id)):
        if value and (not _OID.match(value) or len(value) > 64):
            errors.add(META, f"SubmissionSet {label} {value!r} is not an OID of at most 64 characters", ss.id)


def check_document(errors: ErrorCollector, doc: DocumentEntryView, ss: SubmissionSetView | None) -> str:
    kind = document_kind(doc)
    if doc.object_type != c.OBJECT_TYPE_STABLE_DOC:
        errors.add(META, f"ExtrinsicObject {doc.id}: objectType {doc.object_type!r} must be "
                         f"{c.OBJECT_TYPE_STABLE_DOC} (stable DocumentEntry)", doc.id)
    if not doc.mime_type:
        errors.add(META, f"ExtrinsicObject {doc.id}: mimeType missing", doc.id)
    for name in doc.duplicate_slots:
        errors.add(META, f"ExtrinsicObject {doc.id}: slot {name} appears twice", doc.id)
    what = "DocumentEntry"
    check_single_slot(errors, doc, "creationTime", _DTM, what)
    check_single_slot(errors, doc, "hash", _HEX40, what)
    check_single_slot(errors, doc, "size", re.compile(r"^\d+$"), what)
    language = check_single_slot(errors, doc, "languageCode", None, what)
    check_single_slot(errors, doc, "sourcePatientId", _SOURCE_PATIENT_CX, what)
    for name in ("serviceStartTime", "serviceStopTime"):
        if name in doc.slots or kind == KIND_KOS:
            check_single_slot(errors, doc, name, _DTM, what)
    if "legalAuthenticator" in doc.slots or kind == KIND_KOS:
        check_single_slot(errors, doc, "legalAuthenticator", _XCN, what)

    check_authors(errors, doc, c.DE_AUTHOR)
    check_external_ids(errors, doc, {c.DE_PATIENT_ID: "XDSDocumentEntry.patientId",
                                     c.DE_UNIQUE_ID: "XDSDocumentEntry.uniqueId"})
    if doc.unique_id and len(doc.unique_id) > 128:
        errors.add(META, f"ExtrinsicObject {doc.id}: uniqueId longer than 128 characters", doc.id)
    if ss is not None and doc.patient_id and ss.patient_id and doc.patient_id != ss.patient_id:
        errors.add("XDSPatientIdDoesNotMatch", f"DocumentEntry {doc.id} patientId {doc.patient_id!r} differs from "
                                               f"SubmissionSet patientId {ss.patient_id!r}", doc.id)
    check_coded(errors, doc, c.DE_FACILITY_TYPE, "healthcareFacilityTypeCode", coding_schemes=(c.OID_SECTEUR_ACTIVITE,))
    check_coded(errors, doc, c.DE_PRACTICE_SETTING, "practiceSettingCode", coding_schemes=(c.OID_PRACTICE_SETTING,))
    confidentiality = check_coded(errors, doc, c.DE_CONFIDENTIALITY, "confidentialityCode", max_count=None)
    _check_confidentiality(errors, doc, confidentiality)

    if kind == KIND_KOS:
        _check_kos(errors, doc, language)
    elif kind == KIND_SIGNATURE:
        _check_signature(errors, doc, language)
    else:
        check_coded(errors, doc, c.DE_CLASS_CODE, "classCode")
        check_coded(errors, doc, c.DE_TYPE_CODE, "typeCode")
        check_coded(errors, doc, c.DE_FORMAT_CODE, "formatCode")
        check_coded(errors, doc, c.DE_EVENT_CODE, "eventCodeList", min_count=0, max_count=None)
    for cl in doc.classifications:
        if cl.scheme and cl.scheme not in _ALL_SCHEMES:
            errors.add(META, f"ExtrinsicObject {doc.id}: unknown classificationScheme {cl.scheme}", doc.id)
    return kind


def _check_confidentiality(errors: ErrorCollector, doc: DocumentEntryView, codes: list[Coded]) -> None:
    hl7 = 0
    for cl in codes:
        scheme = cl.coding_scheme[0] if cl.coding_scheme else ""
        if scheme == c.OID_CONFIDENTIALITY_HL7 and cl.code in c.CONFIDENTIALITY_HL7_CODES:
            hl7 += 1
        elif not (scheme == c.OID_CONFIDENTIALITY_DMP and cl.code in c.CONFIDENTIALITY_DMP_CODES):
            errors.add(META, f"{doc.id}/confidentialityCode: {cl.code}^{scheme} is not an allowed value", doc.id)
    if codes and hl7 != 1:
        errors.add(META, f"{doc.id}/confidentialityCode: exactly one HL7 code (N/R/V^{c.OID_CONFIDENTIALITY_HL7}) "
                         f"required, found {hl7}", doc.id)


def _check_kos(errors: ErrorCollector, doc: DocumentEntryView, language: str | None) -> None:
    if doc.mime_type != c.KOS_MIME:
        errors.add(META, f"KOS {doc.id}: mimeType must be {c.KOS_MIME} (got {doc.mime_type!r})", doc.id)
    check_coded(errors, doc, c.DE_CLASS_CODE, "classCode", expected=c.KOS_CLASS)
    check_coded(errors, doc, c.DE_TYPE_CODE, "typeCode", expected=c.KOS_TYPE)
    check_coded(errors, doc, c.DE_FORMAT_CODE, "formatCode", expected=c.KOS_FORMAT)
    check_coded(errors, doc, c.DE_EVENT_CODE, "eventCodeList", max_count=None, coding_schemes=c.KOS_EVENT_SCHEMES)
    if language is not None and language != "fr-FR":
        errors.add(META, f"KOS {doc.id}: languageCode must be fr-FR (got {language!r})", doc.id)
    if doc.unique_id and (not _OID.match(doc.unique_id) or len(doc.unique_id) > 64):
        errors.add(META, f"KOS {doc.id}: uniqueId {doc.unique_id!r} must be the KOS SOP Instance UID (OID, <= 64)",
                   doc.id)
    info = doc.slots.get("sourcePatientInfo", [])
    for prefix in ("PID-5|", "PID-7|", "PID-8|"):
        if not any(v.startswith(prefix) and len(v) > len(prefix) for v in info):
            errors.add(META, f"KOS {doc.id}: sourcePatientInfo lacks {prefix[:-1]}", doc.id)
    refs = doc.slots.get(c.SLOT_REFERENCE_ID_LIST, [])
    for value in refs:
        if not _REFERENCE_ID.match(value):
            errors.add(META, f"KOS {doc.id}: referenceIdList value {value!r} is not a CXi "
                             "<id>^^^<authority>^urn:ihe:iti:xds:...", doc.id)
    if not any(v.endswith("^urn:ihe:iti:xds:2016:studyInstanceUID") for v in refs):
        errors.add(META, f"KOS {doc.id}: referenceIdList must carry the study (urn:ihe:iti:xds:2016:studyInstanceUID)",
                   doc.id)


def _check_signature(errors: ErrorCollector, doc: DocumentEntryView, language: str | None) -> None:
    if doc.mime_type != c.SIG_MIME:
        errors.add(META, f"signature {doc.id}: mimeType must be {c.SIG_MIME} (got {doc.mime_type!r})", doc.id)
    check_coded(errors, doc, c.DE_CLASS_CODE, "classCode", expected=(c.SIG_CLASS_CODE, c.SIG_CLASS_SCHEMES))
    check_coded(errors, doc, c.DE_TYPE_CODE, "typeCode", expected=(c.SIG_TYPE_CODE, c.SIG_TYPE_SCHEMES))
    check_coded(errors, doc, c.DE_FORMAT_CODE, "formatCode", expected=(c.SIG_FORMAT_CODE, c.SIG_FORMAT_SCHEMES))
    events = check_coded(errors, doc, c.DE_EVENT_CODE, "eventCodeList", max_count=None)
    if events and not any(e.code == c.SIG_EVENT_CODE and e.coding_scheme[:1] and
                          e.coding_scheme[0] in c.SIG_EVENT_SCHEMES for e in events):
        errors.add(META, f"signature {doc.id}: eventCodeList must hold {c.SIG_EVENT_CODE} (purpose of signature)",
                   doc.id)
    if language is not None and language != "art":
        errors.add(META, f"signature {doc.id}: languageCode must be art (got {language!r})", doc.id)


def check_structure(errors: ErrorCollector, sub: Submission, *, require_documents: bool) -> SubmissionSetView | None:
    seen: set[str] = set()
    for ident in sub.ids:
        if ident in seen:
            errors.add(META, f"id {ident!r} used by more than one registry object", ident)
        seen.add(ident)
    for el in sub.unknown_objects:
        errors.add(META, f"unexpected registry object {el.tag} in RegistryObjectList", el.get("id", ""))
    for pkg in sub.other_packages:
        errors.add(META, f"RegistryPackage {pkg.id} is not classified as a SubmissionSet ({c.NODE_SUBMISSION_SET}); "
                         "folders are not accepted by the DMP", pkg.id)
    if len(sub.submission_sets) != 1:
        errors.add(META, f"exactly one SubmissionSet RegistryPackage required (found {len(sub.submission_sets)})", "")
        return None
    if require_documents and not sub.documents:
        errors.add(META, "the submission holds no DocumentEntry (ExtrinsicObject)", sub.submission_sets[0].id)
    return sub.submission_sets[0]
