"""The DRIM-M manifest: a Key Object Selection document (title 113030) referencing one whole study.

Layout (CI-SIS IMG-KOS, IHE XDS-I.b, TID 2010): the patient is the report's INS; one
ReferencedRequestSequence item per order of the study; per series a WADO-RS RetrieveURL on this box;
one content item per referenced object (key image note series first), then the Key Object Description.

Key Object Description format (one line each, ``\\n`` separated; other products parse it)::

    Examen : <study description>
    Acte : <act display> (<act code>)                      (only when the report names an act)
    Série <series number> : <modality> : <series description> : <count> instance(s)

Built with pydicom directly: highdicom's KOS needs the referenced datasets themselves, cannot carry
RetrieveURL or the request issuers, and is much slower on 10,000 references.
"""

from __future__ import annotations

from datetime import datetime

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from drimbox.kos import codes, document, sr
from drimbox.kos.uids import new_uid
from drimbox.reports.model import Code, Report, StudyOrder
from drimbox.studies.model import SeriesContent, StudyContent

INS_ISSUER = "ASIP-SANTE-INS-NIR"
MANIFEST_SERIES_NUMBER = 9999
EXCLUDED_KINDS = frozenset({"manifest", "rejection"})


class ManifestError(ValueError):
    """The report and study cannot make a manifest (no INS, study not in the report, nothing to reference)."""


def build_manifest(
    report: Report,
    study: StudyContent,
    *,
    retrieve_base: str,
    uid_root: str,
    institution_name: str = "",
    now: datetime | None = None,
) -> Dataset:
    """A new manifest (new SOP and series instance UIDs on every call) for ``study``."""
    patient = report.patient
    ins, ins_oid = patient.ins, patient.ins_oid
    if not ins or not ins_oid:
        raise ManifestError(f"report {report.report_id} has no INS (number and OID): a DMP manifest needs it")
    orders = report.orders_for(study.study_uid)
    if not orders:
        raise ManifestError(f"study {study.study_uid} is not one of report {report.report_id}'s studies")
    series = referenced_series(study)
    if not series:
        raise ManifestError(f"study {study.study_uid} has no instance a manifest can reference")
    unclassed = [i.sop_instance_uid for s in series for i in s.instances if not i.sop_class_uid]
    if unclassed:
        raise ManifestError(f"{len(unclassed)} instance(s) of study {study.study_uid} have no SOP class UID, "
                            f"e.g. {unclassed[0]}")

    now = now or datetime.now().astimezone()
    ds = document.new_kos(
        title=codes.MANIFEST,
        sop_instance_uid=new_uid(uid_root),
        series_instance_uid=new_uid(uid_root),
        study_uid=study.study_uid,
        now=now,
        series_number=MANIFEST_SERIES_NUMBER,
        institution_name=institution_name,
    )
    _set_patient(ds, report, study, ins, ins_oid)
    _set_study(ds, study)
    ds.ReferencedRequestSequence = Sequence([_request_item(order, report.act) for order in orders])

    base = retrieve_base.rstrip("/")
    evidence = [
        document.EvidenceSeries(
            series_uid=s.series_uid,
            references=tuple((i.sop_class_uid, i.sop_instance_uid) for i in s.instances),
            retrieve_url=f"{base}/studies/{study.study_uid}/series/{s.series_uid}",
        )
        for s in series
    ]
    ds[0x0040A375] = document.evidence_sequence(study.study_uid, evidence)
    ds[0x0040A730] = document.content_sequence(evidence, describe(study, series, report.act))
    return ds


def encode_manifest(ds: Dataset) -> bytes:
    """Part-10 bytes of a manifest (Explicit VR Little Endian)."""
    return document.encode(ds)


def referenced_series(study: StudyContent) -> list[SeriesContent]:
    """The series a manifest references: manifests and rejection notes left out, duplicates dropped,
    series holding key image notes first, the others in the order given."""
    seen: set[str] = set()
    kept: list[SeriesContent] = []
    for s in study.series:
        instances = []
        for inst in s.instances:
            if inst.kind in EXCLUDED_KINDS or inst.sop_instance_uid in seen:
                continue
            seen.add(inst.sop_instance_uid)
            instances.append(inst)
        if instances:
            kept.append(SeriesContent(s.series_uid, s.modality, s.description, s.number, tuple(instances)))
    return sorted(kept, key=lambda s: not any(i.kind == "key_images" for i in s.instances))


def describe(study: StudyContent, series: list[SeriesContent], act: Code | None) -> str:
    lines = [f"Examen : {study.description}"]
    if act is not None:
        lines.append(f"Acte : {act.display or act.code} ({act.code})")
    for position, s in enumerate(series, start=1):
        number = s.number if s.number is not None else position
        lines.append(f"Série {number} : {s.modality} : {s.description} : {len(s.instances)} instance(s)")
    return "\n".join(lines)


def _set_patient(ds: Dataset, report: Report, study: StudyContent, ins: str, ins_oid: str) -> None:
    patient = report.patient
    if patient.family:
        ds.PatientName = f"{patient.family}^{patient.given}" if patient.given else patient.family
    else:
        ds.PatientName = study.patient_name
    ds.PatientID = ins
    ds.IssuerOfPatientID = INS_ISSUER
    ds.IssuerOfPatientIDQualifiersSequence = Sequence([sr.universal_entity(ins_oid)])
    ds.PatientBirthDate = patient.birth_date or study.patient_birth_date
    ds.PatientSex = _dicom_sex(patient.sex) or _dicom_sex(study.patient_sex)
    other = Dataset()
    other.PatientID = ins
    other.IssuerOfPatientID = INS_ISSUER
    other.TypeOfPatientID = "TEXT"
    other.IssuerOfPatientIDQualifiersSequence = Sequence([sr.universal_entity(ins_oid)])
    ds.OtherPatientIDsSequence = Sequence([other])


def _set_study(ds: Dataset, study: StudyContent) -> None:
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.ReferringPhysicianName = study.referring_physician
    ds.StudyID = study.study_id[:16]
    ds.AccessionNumber = ""  # the orders live in ReferencedRequestSequence
    if study.description:
        ds.StudyDescription = study.description[:64]


def _request_item(order: StudyOrder, act: Code | None) -> Dataset:
    item = Dataset()
    item.AccessionNumber = order.accession
    if order.accession_issuer:
        item.IssuerOfAccessionNumberSequence = Sequence([sr.universal_entity(order.accession_issuer)])
    item.ReferencedStudySequence = Sequence()
    item.StudyInstanceUID = order.study_uid
    item.RequestedProcedureDescription = (act.display or act.code)[:64] if act else ""
    designator = sr.CODING_SCHEME_DESIGNATORS.get(act.system) if act else None
    item.RequestedProcedureCodeSequence = Sequence(
        [sr.code_item(act.code, designator, act.display or act.code)] if act and designator else [])
    if order.order_issuer:
        item.OrderPlacerIdentifierSequence = Sequence([sr.universal_entity(order.order_issuer)])
    item.RequestedProcedureID = ""
    item.PlacerOrderNumberImagingServiceRequest = order.order
    item.FillerOrderNumberImagingServiceRequest = ""
    return item


def _dicom_sex(sex: str) -> str:
    sex = (sex or "").strip().upper()
    return sex if sex in ("M", "F", "O") else ""
