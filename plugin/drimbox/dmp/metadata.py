"""The ebRIM SubmitObjectsRequest of one DMP lot: SubmissionSet, KOS DocumentEntry, DSG signature DocumentEntry.

A pure function of its inputs: ids, times and the signature bytes are given by the caller (see ``drimbox.dmp.lot``).
Element order follows rim.xsd (Slot*, Name, Description, Classification*, ExternalIdentifier*).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from drimbox.config.sections import IdentitySettings
from drimbox.dmp import hl7dt, xds_ids
from drimbox.dmp.errors import MetadataError
from drimbox.dmp.kosfacts import KosFacts
from drimbox.dmp.settings import DmpSettings
from drimbox.reports.model import Code, Report

RIM = xds_ids.RIM

# DICOM modality -> French display of the CI-SIS modality value set (informative Name of the event code).
MODALITY_DISPLAY = {
    "CR": "Radiographie numérisée", "CT": "Scanner", "DX": "Radiographie numérique", "ES": "Endoscopie",
    "IO": "Radiographie intra-orale", "MG": "Mammographie", "MR": "IRM", "NM": "Médecine nucléaire",
    "OP": "Ophtalmographie", "OT": "Autre", "PT": "TEP", "PX": "Radiographie panoramique",
    "RF": "Radiofluoroscopie", "RG": "Radiographie", "US": "Échographie", "XA": "Angiographie",
}

# MetaDMPMSS flag -> DMP confidentiality code (1.2.250.1.213.1.1.4.13)
CONFIDENTIALITY_FLAGS = (
    ("MASQUE_PS", Code("MASQUE_PS", xds_ids.SYSTEM_CONFIDENTIALITY_DMP, "Masqué aux professionnels de santé")),
    ("INVISIBLE_PATIENT", Code("INVISIBLE_PATIENT", xds_ids.SYSTEM_CONFIDENTIALITY_DMP, "Non visible par le patient")),
    ("INVISIBLE_REP_LEGAUX", Code("INVISIBLE_REPRESENTANTS_LEGAUX", xds_ids.SYSTEM_CONFIDENTIALITY_DMP,
                                  "Non visible par les représentants légaux du patient")),
)
NORMAL = Code("N", xds_ids.SYSTEM_CONFIDENTIALITY_HL7, "Normal")

KOS_CLASS = Code("31", xds_ids.SYSTEM_CLASS_CODE, "Imagerie médicale")
KOS_TYPE = Code("IMG-KOS", xds_ids.SYSTEM_TYPE_CODE, "Référence d'objets d'un examen d'imagerie")
KOS_FORMAT = Code(xds_ids.KOS_SOP_CLASS, xds_ids.SYSTEM_DICOM_UID_REGISTRY,
                  "Document de références d'objets d'imagerie selon le profil IHE RAD XDS-I")

SIGNATURE_CLASS = Code("urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1", "URN", "Digital Signature")
SIGNATURE_TYPE = Code("E1762", "ASTM", "Full Document")
SIGNATURE_FORMAT = Code("http://www.w3.org/2000/09/xmldsig#", "URN", "Default Signature Style")
SIGNATURE_EVENT = Code(xds_ids.DSG_PURPOSE_OF_SIGNATURE, "1.2.840.10065.1.12", "Source")
SIGNATURE_CONFIDENTIALITY = (NORMAL, CONFIDENTIALITY_FLAGS[0][1], CONFIDENTIALITY_FLAGS[1][1])


@dataclass(frozen=True)
class LotIds:
    """Every id of one lot. Entry ids are ``urn:uuid:`` values kept by the registry as entryUUIDs."""

    submission_set_id: str
    submission_set_unique_id: str
    kos_entry_id: str
    kos_unique_id: str
    signature_entry_id: str
    signature_unique_id: str


@dataclass(frozen=True)
class Author:
    person: str  # XCN
    institution: str  # XON
    specialty: Code | None = None


def confidentiality_codes(flags: Mapping[str, bool]) -> tuple[Code, ...]:
    """``N`` plus the DMP codes the MetaDMPMSS flags ask for."""
    return (NORMAL,) + tuple(code for flag, code in CONFIDENTIALITY_FLAGS if flags.get(flag))


def event_codes(report: Report, settings: DmpSettings) -> tuple[Code, ...]:
    """One code per modality, then one per anatomical region. An empty configured system keeps the source one."""
    codes: list[Code] = []
    for modality in report.modalities:
        modality = modality.strip().upper()
        code = Code(modality, settings.event_code_modality_system or "1.2.840.10008.2.16.4",
                    MODALITY_DISPLAY.get(modality, modality))
        if modality and code not in codes:
            codes.append(code)
    for region in report.anatomic_regions:
        code = Code(region.code, settings.event_code_region_system or region.system, region.display or region.code)
        if region.code and code not in codes:
            codes.append(code)
    return tuple(codes)


def reference_ids(report: Report, kos: KosFacts) -> tuple[str, ...]:
    """Accession, order and study UID of every study the KOS covers (CXi of referenceIdList)."""
    studies = list(kos.study_uids) or list(report.study_uids)
    values: list[str] = []

    def add(value: str) -> None:
        if value not in values:
            values.append(value)

    for study in studies:
        for order in report.orders_for(study):
            if order.accession:
                add(hl7dt.reference_id(order.accession, order.accession_issuer, xds_ids.REF_ACCESSION))
            if order.order:
                add(hl7dt.reference_id(order.order, order.order_issuer, xds_ids.REF_ORDER))
        add(hl7dt.reference_id(study, "", xds_ids.REF_STUDY_UID))
    return tuple(values)


def lot_author(report: Report, settings: DmpSettings, identity: IdentitySettings) -> Author:
    try:
        institution = hl7dt.xon(report.organization)
        if settings.author_is_device:
            person = hl7dt.device_xcn(settings.lps_id, settings.lps_name, identity.oid_root)
            return Author(person=person, institution=institution)
        specialty = Code(settings.specialty_code, xds_ids.SYSTEM_SPECIALTY, settings.specialty_display)
        return Author(person=hl7dt.xcn(report.author), institution=institution, specialty=specialty)
    except ValueError as error:
        raise MetadataError(f"author of the lot: {error}") from None


def source_patient_info(report: Report) -> tuple[str, ...]:
    patient = report.patient
    values = []
    if patient.family or patient.given:
        values.append(f"PID-5|{hl7dt.escape(patient.family)}^{hl7dt.escape(patient.given)}^^^^^L")
    if patient.birth_date:
        values.append(f"PID-7|{patient.birth_date}")
    if patient.sex:
        values.append(f"PID-8|{patient.sex}")
    return tuple(values)


def submit_objects_request(
    *,
    ids: LotIds,
    kos: bytes,
    kos_facts: KosFacts,
    signature: bytes,
    report: Report,
    flags: Mapping[str, bool],
    settings: DmpSettings,
    identity: IdentitySettings,
    now: datetime,
    new_uuid: Callable[[], str],
    replaces_entry_uuid: str | None = None,
) -> etree._Element:
    """``lcm:SubmitObjectsRequest`` of the lot (the body of ITI-41 without its documents)."""
    try:
        patient_id = hl7dt.patient_cx_of(report.patient)
    except ValueError as error:
        raise MetadataError(str(error)) from None
    facility = _required(report.organization.facility_type, "report organisation's healthcare facility type (SAxx)")
    practice = _required(report.practice_setting or report.organization.sector,
                         "report's practice setting (or organisation sector)")
    author = lot_author(report, settings, identity)
    submission_time = hl7dt.dtm_utc(now)
    creation = hl7dt.dtm_utc(kos_facts.created) if kos_facts.created else submission_time
    legal = _legal_authenticator(report)
    patient_info = source_patient_info(report)
    builder = _Builder(new_uuid)

    request = etree.Element(f"{{{xds_ids.LCM}}}SubmitObjectsRequest", nsmap={"lcm": xds_ids.LCM, "rim": RIM})
    objects = etree.SubElement(request, f"{{{RIM}}}RegistryObjectList")

    kos_slots = [
        ("creationTime", [creation]),
        ("hash", [hashlib.sha1(kos).hexdigest()]),
        ("languageCode", ["fr-FR"]),
        ("legalAuthenticator", [legal]),
        ("serviceStartTime", [_hl7_time(report.service_start, "serviceStartTime")] if report.service_start else []),
        ("serviceStopTime", [_hl7_time(report.service_stop, "serviceStopTime")] if report.service_stop else []),
        ("size", [str(len(kos))]),
        ("sourcePatientId", [patient_id]),
        ("sourcePatientInfo", list(patient_info)),
        (xds_ids.REFERENCE_ID_LIST_SLOT, list(reference_ids(report, kos_facts))),
    ]
    kos_entry = builder.document_entry(
        ids.kos_entry_id, "application/dicom", kos_slots, _kos_title(report),
        author=author,
        classifications=[
            (xds_ids.DE_CLASS_CODE, [KOS_CLASS]),
            (xds_ids.DE_CONFIDENTIALITY_CODE, list(confidentiality_codes(flags))),
            (xds_ids.DE_EVENT_CODE_LIST, list(event_codes(report, settings))),
            (xds_ids.DE_FORMAT_CODE, [KOS_FORMAT]),
            (xds_ids.DE_HEALTHCARE_FACILITY_TYPE_CODE, [facility]),
            (xds_ids.DE_PRACTICE_SETTING_CODE, [practice]),
            (xds_ids.DE_TYPE_CODE, [KOS_TYPE]),
        ],
        patient_id=patient_id, unique_id=ids.kos_unique_id,
    )
    objects.append(kos_entry)

    signature_slots = [
        ("creationTime", [submission_time]),
        ("hash", [hashlib.sha1(signature).hexdigest()]),
        ("languageCode", ["art"]),
        ("legalAuthenticator", [legal]),
        ("serviceStartTime", [submission_time]),
        ("serviceStopTime", [submission_time]),
        ("size", [str(len(signature))]),
        ("sourcePatientId", [patient_id]),
        ("sourcePatientInfo", list(patient_info)),
    ]
    objects.append(builder.document_entry(
        ids.signature_entry_id, "text/xml", signature_slots, "Source",
        author=author,
        classifications=[
            (xds_ids.DE_CLASS_CODE, [SIGNATURE_CLASS]),
            (xds_ids.DE_CONFIDENTIALITY_CODE, list(SIGNATURE_CONFIDENTIALITY)),
            (xds_ids.DE_EVENT_CODE_LIST, [SIGNATURE_EVENT]),
            (xds_ids.DE_FORMAT_CODE, [SIGNATURE_FORMAT]),
            (xds_ids.DE_HEALTHCARE_FACILITY_TYPE_CODE, [facility]),
            (xds_ids.DE_PRACTICE_SETTING_CODE, [practice]),
            (xds_ids.DE_TYPE_CODE, [SIGNATURE_TYPE]),
        ],
        patient_id=patient_id, unique_id=ids.signature_unique_id,
    ))

    content_type = Code(settings.content_type_code, settings.content_type_system, settings.content_type_code)
    objects.append(builder.submission_set(
        ids.submission_set_id, submission_time, author, content_type, patient_id,
        unique_id=ids.submission_set_unique_id, source_id=identity.oid_root,
    ))
    objects.append(builder.association(xds_ids.ASSOC_HAS_MEMBER, ids.submission_set_id, ids.kos_entry_id,
                                       [("SubmissionSetStatus", ["Original"])]))
    objects.append(builder.association(xds_ids.ASSOC_HAS_MEMBER, ids.submission_set_id, ids.signature_entry_id,
                                       [("SubmissionSetStatus", ["Original"])]))
    objects.append(builder.association(xds_ids.ASSOC_SIGNS, ids.signature_entry_id, ids.submission_set_id))
    if replaces_entry_uuid:
        objects.append(builder.association(xds_ids.ASSOC_RPLC, ids.kos_entry_id, replaces_entry_uuid))
    return request


def availability_update_request(
    *,
    entry_uuid: str,
    report: Report,
    settings: DmpSettings,
    identity: IdentitySettings,
    submission_set_id: str,
    submission_set_unique_id: str,
    now: datetime,
    new_uuid: Callable[[], str],
    new_status: str = xds_ids.STATUS_DELETED_DMP,
    original_status: str = xds_ids.STATUS_APPROVED,
) -> etree._Element:
    """ITI-57 ``lcm:SubmitObjectsRequest`` changing a DocumentEntry's availability status (DMP deletion)."""
    try:
        patient_id = hl7dt.patient_cx_of(report.patient)
    except ValueError as error:
        raise MetadataError(str(error)) from None
    author = lot_author(report, settings, identity)
    builder = _Builder(new_uuid)
    request = etree.Element(f"{{{xds_ids.LCM}}}SubmitObjectsRequest", nsmap={"lcm": xds_ids.LCM, "rim": RIM})
    objects = etree.SubElement(request, f"{{{RIM}}}RegistryObjectList")
    content_type = Code(settings.content_type_code, settings.content_type_system, settings.content_type_code)
    objects.append(builder.submission_set(
        submission_set_id, hl7dt.dtm_utc(now), author, content_type, patient_id,
        unique_id=submission_set_unique_id, source_id=identity.oid_root,
    ))
    objects.append(builder.association(
        xds_ids.ASSOC_UPDATE_AVAILABILITY, submission_set_id, entry_uuid,
        [("OriginalStatus", [original_status]), ("NewStatus", [new_status])],
    ))
    return request


def _required(code: Code | None, what: str) -> Code:
    if code is None or not code.code:
        raise MetadataError(f"missing {what}")
    return code


def _legal_authenticator(report: Report) -> str:
    try:
        return hl7dt.xcn(report.legal_authenticator)
    except ValueError:
        raise MetadataError("missing report legal authenticator national id (legalAuthenticator)") from None


def _hl7_time(value: str, what: str) -> str:
    try:
        return hl7dt.hl7_ts_to_utc(value)
    except ValueError as error:
        raise MetadataError(f"{what}: {error}") from None


def _kos_title(report: Report) -> str:
    act = report.act.display if report.act and report.act.display else ""
    return f"Objets d'imagerie - {act}" if act else "Objets d'imagerie"


class _Builder:
    def __init__(self, new_uuid: Callable[[], str]):
        self.new_uuid = new_uuid

    def document_entry(self, entry_id: str, mime_type: str, slots, title: str, *, author: Author,
                       classifications: list[tuple[str, list[Code]]], patient_id: str,
                       unique_id: str) -> etree._Element:
        entry = etree.Element(f"{{{RIM}}}ExtrinsicObject", id=entry_id, mimeType=mime_type,
                              objectType=xds_ids.DOCUMENT_ENTRY_STABLE)
        for name, values in slots:
            if values:
                entry.append(slot(name, values))
        entry.append(localized("Name", title))
        entry.append(self.author(xds_ids.DE_AUTHOR, entry_id, author))
        for scheme, codes in classifications:
            for code in codes:
                entry.append(self.coded(scheme, entry_id, code))
        entry.append(self.external_id(xds_ids.DE_PATIENT_ID, entry_id, patient_id, "XDSDocumentEntry.patientId"))
        entry.append(self.external_id(xds_ids.DE_UNIQUE_ID, entry_id, unique_id, "XDSDocumentEntry.uniqueId"))
        return entry

    def submission_set(self, package_id: str, submission_time: str, author: Author, content_type: Code,
                       patient_id: str, *, unique_id: str, source_id: str) -> etree._Element:
        package = etree.Element(f"{{{RIM}}}RegistryPackage", id=package_id)
        package.append(slot("submissionTime", [submission_time]))
        package.append(self.author(xds_ids.SS_AUTHOR, package_id, author))
        package.append(self.coded(xds_ids.SS_CONTENT_TYPE_CODE, package_id, content_type))
        etree.SubElement(package, f"{{{RIM}}}Classification", id=self.new_uuid(), classifiedObject=package_id,
                         classificationNode=xds_ids.SUBMISSION_SET_NODE)
        package.append(self.external_id(xds_ids.SS_UNIQUE_ID, package_id, unique_id, "XDSSubmissionSet.uniqueId"))
        package.append(self.external_id(xds_ids.SS_SOURCE_ID, package_id, source_id, "XDSSubmissionSet.sourceId"))
        package.append(self.external_id(xds_ids.SS_PATIENT_ID, package_id, patient_id, "XDSSubmissionSet.patientId"))
        return package

    def association(self, kind: str, source: str, target: str, slots=()) -> etree._Element:
        association = etree.Element(f"{{{RIM}}}Association", id=self.new_uuid(), associationType=kind,
                                    sourceObject=source, targetObject=target)
        for name, values in slots:
            association.append(slot(name, values))
        return association

    def author(self, scheme: str, classified: str, author: Author) -> etree._Element:
        element = etree.Element(f"{{{RIM}}}Classification", id=self.new_uuid(), classificationScheme=scheme,
                                classifiedObject=classified, nodeRepresentation="")
        element.append(slot("authorPerson", [author.person]))
        element.append(slot("authorInstitution", [author.institution]))
        if author.specialty:
            specialty = author.specialty
            element.append(slot("authorSpecialty", [f"{specialty.code}^{specialty.display}^{specialty.system}"]))
        return element

    def coded(self, scheme: str, classified: str, code: Code) -> etree._Element:
        element = etree.Element(f"{{{RIM}}}Classification", id=self.new_uuid(), classificationScheme=scheme,
                                classifiedObject=classified, nodeRepresentation=code.code)
        element.append(slot("codingScheme", [code.system]))
        element.append(localized("Name", code.display or code.code))
        return element

    def external_id(self, scheme: str, registry_object: str, value: str, name: str) -> etree._Element:
        element = etree.Element(f"{{{RIM}}}ExternalIdentifier", id=self.new_uuid(), registryObject=registry_object,
                                identificationScheme=scheme, value=value)
        element.append(localized("Name", name))
        return element


def slot(name: str, values: Iterable[str]) -> etree._Element:
    element = etree.Element(f"{{{RIM}}}Slot", name=name)
    value_list = etree.SubElement(element, f"{{{RIM}}}ValueList")
    for value in values:
        etree.SubElement(value_list, f"{{{RIM}}}Value").text = value
    return element


def localized(tag: str, value: str) -> etree._Element:
    element = etree.Element(f"{{{RIM}}}{tag}")
    etree.SubElement(element, f"{{{RIM}}}LocalizedString", value=value)
    return element
