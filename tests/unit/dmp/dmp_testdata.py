"""Fixtures of the DMP client tests: a KOS built with pydicom, a report, fixed times."""

from __future__ import annotations

import datetime as dt
import io

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from drimbox.reports.model import Code, Organization, PatientIdentity, Person, Report, StudyOrder

KOS_UID = "1.2.826.0.1.3680043.8.498.77.1.42"
STUDY_UID = "1.2.250.1.59.453.859.998.1.1"
NOW = dt.datetime(2024, 3, 5, 10, 20, 30, tzinfo=dt.timezone.utc)


def make_kos(uid: str = KOS_UID, studies=(STUDY_UID,), *, offset: str = "+0100") -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.59"
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.59"
    ds.SOPInstanceUID = uid
    ds.Modality = "KO"
    ds.PatientID = "279035121518989"
    ds.InstanceCreationDate = "20240305"
    ds.InstanceCreationTime = "112000"
    if offset:
        ds.TimezoneOffsetFromUTC = offset
    evidence = []
    for study in studies:
        item = Dataset()
        item.StudyInstanceUID = study
        evidence.append(item)
    ds.CurrentRequestedProcedureEvidenceSequence = evidence
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def make_report(**changes) -> Report:
    values = dict(
        report_id="1.2.250.1.213.1.1.1.45.2",
        title="CR d'imagerie médicale",
        patient=PatientIdentity(ins="279035121518989", ins_oid="1.2.250.1.213.1.4.10", family="PAT-TROIS",
                                given="DOMINIQUE", sex="F", birth_date="19790328"),
        studies=(StudyOrder(study_uid=STUDY_UID, accession="ACC-1", accession_issuer="1.2.3.4.5.6",
                            order="ORD-1", order_issuer="1.2.3.4.5.7"),),
        act=Code("ZBQH001", "1.2.250.1.213.2.5", "Scanner du thorax"),
        modalities=("CT", "MR"),
        anatomic_regions=(Code("51185008", "2.16.840.1.113883.6.96", "Thorax"),),
        service_start="20210108101700+0100",
        service_stop="20210108111700+0100",
        author=Person(id_nat="801234567890", family="RADIO", given="Jean"),
        organization=Organization(id="3123456789012345", name="Cabinet de radiologie",
                                  sector=Code("AMBULATOIRE", "1.2.250.1.213.1.1.4.9", "Ambulatoire"),
                                  facility_type=Code("SA08", "1.2.250.1.71.4.2.4", "Cabinet de groupe")),
        legal_authenticator=Person(id_nat="801234567890", family="RADIO", given="Jean"),
        practice_setting=Code("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Établissement de santé"),
    )
    values.update(changes)
    return Report(**values)


