"""Reading a KOS manifest back: what it points to and where to fetch it."""

from __future__ import annotations

import io
import struct
from dataclasses import asdict, dataclass, field

import pydicom
from pydicom.errors import InvalidDicomError

from drimbox.kos import codes


@dataclass(frozen=True)
class ManifestSeries:
    series_uid: str
    retrieve_url: str
    instances: list[tuple[str, str]] = field(default_factory=list)  # (SOP class UID, SOP instance UID)


@dataclass(frozen=True)
class ManifestSummary:
    sop_instance_uid: str
    study_uid: str
    patient_id: str
    patient_name: str
    patient_id_issuer: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    title: str = ""  # document title code value, 113030 for a manifest
    accessions: list[str] = field(default_factory=list)  # from ReferencedRequestSequence
    series: list[ManifestSeries] = field(default_factory=list)
    description: str = ""  # Key Object Description text

    @property
    def instance_count(self) -> int:
        return sum(len(s.instances) for s in self.series)

    def to_json(self) -> dict:
        data = asdict(self)
        data["instance_count"] = self.instance_count
        for series in data["series"]:
            series["instances"] = [{"sop_class_uid": c, "sop_instance_uid": i} for c, i in series["instances"]]
        return data


def read_manifest(data: bytes) -> ManifestSummary:
    """Summary of a Key Object Selection document given as Part-10 bytes (or a bare data set)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        sop_class = ds.get("SOPClassUID")
    except (InvalidDicomError, EOFError, ValueError, struct.error) as exc:
        raise ValueError(f"not a DICOM object: {exc}") from exc
    if sop_class != codes.KOS_SOP_CLASS_UID:
        raise ValueError(f"not a Key Object Selection document (SOP class {sop_class or 'missing'})")
    title = ds.get("ConceptNameCodeSequence")
    series: list[ManifestSeries] = []
    study_uid = str(ds.get("StudyInstanceUID", ""))
    for study_item in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        for series_item in study_item.get("ReferencedSeriesSequence", []):
            series.append(ManifestSeries(
                series_uid=str(series_item.get("SeriesInstanceUID", "")),
                retrieve_url=str(series_item.get("RetrieveURL", "")),
                instances=[(str(ref.ReferencedSOPClassUID), str(ref.ReferencedSOPInstanceUID))
                           for ref in series_item.get("ReferencedSOPSequence", [])],
            ))
    description = ""
    for item in ds.get("ContentSequence", []):
        if item.get("ValueType") == "TEXT":
            concept = item.get("ConceptNameCodeSequence")
            if concept and concept[0].get("CodeValue") == codes.KEY_OBJECT_DESCRIPTION[0]:
                description = str(item.get("TextValue", ""))
    return ManifestSummary(
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        study_uid=study_uid,
        patient_id=str(ds.get("PatientID", "")),
        patient_name=str(ds.get("PatientName", "")),
        patient_id_issuer=str(ds.get("IssuerOfPatientID", "")),
        patient_birth_date=str(ds.get("PatientBirthDate", "")),
        patient_sex=str(ds.get("PatientSex", "")),
        title=str(title[0].get("CodeValue", "")) if title else "",
        accessions=[str(item.get("AccessionNumber", "")) for item in ds.get("ReferencedRequestSequence", [])],
        series=series,
        description=description,
    )

