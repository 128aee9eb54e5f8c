"""StudyContent from DICOM files on disk (headers only)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from drimbox.kos.classify import apply_rejections, classify_key_object, rejected_instances
from drimbox.kos.codes import KOS_SOP_CLASS_UID
from drimbox.studies.model import InstanceRef, SeriesContent, StudyContent


class StudyFilesError(ValueError):
    pass


def study_content_from_files(paths: Iterable[str | os.PathLike]) -> StudyContent:
    """The one study these files (or folders, searched recursively) hold; non-DICOM files are skipped.

    KO instances get their ``kind``; instances rejected by an IOCM rejection note among the files are
    left out (the note itself stays, marked ``rejection``, so the builder skips it too).
    """
    studies = studies_from_files(paths)
    if not studies:
        raise StudyFilesError("no DICOM instance found")
    if len(studies) > 1:
        raise StudyFilesError(
            f"the files belong to {len(studies)} studies: {', '.join(s.study_uid for s in studies)}")
    return studies[0]


def studies_from_files(paths: Iterable[str | os.PathLike]) -> list[StudyContent]:
    """Every study found in the files, in order of first appearance."""
    studies: dict[str, dict] = {}
    for path in _expand(paths):
        ds = _read_header(path)
        if ds is None:
            continue
        study_uid = str(ds.StudyInstanceUID)
        study = studies.setdefault(study_uid, {"first": ds, "series": {}, "rejected": set()})
        series_uid = str(ds.SeriesInstanceUID)
        series = study["series"].setdefault(series_uid, {"first": ds, "instances": {}})
        kind = ""
        if ds.SOPClassUID == KOS_SOP_CLASS_UID:
            kind = classify_key_object(ds)
            if kind == "rejection":
                study["rejected"] |= rejected_instances(ds)
        series["instances"][str(ds.SOPInstanceUID)] = InstanceRef(
            sop_class_uid=str(ds.SOPClassUID),
            sop_instance_uid=str(ds.SOPInstanceUID),
            instance_number=_int(ds.get("InstanceNumber")),
            kind=kind,
        )
    return [apply_rejections(_study(uid, data), data["rejected"]) for uid, data in studies.items()]


def _expand(paths: Iterable[str | os.PathLike]) -> Iterable[Path]:
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def _read_header(path: Path) -> pydicom.Dataset | None:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError):
        return None
    if not all(k in ds for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")):
        return None  # DICOMDIR and other non-instance files
    return ds


def _study(study_uid: str, data: dict) -> StudyContent:
    first = data["first"]
    series = []
    for series_uid, entry in data["series"].items():
        head = entry["first"]
        instances = sorted(entry["instances"].values(),
                           key=lambda i: (i.instance_number is None, i.instance_number or 0, i.sop_instance_uid))
        series.append(SeriesContent(
            series_uid=series_uid,
            modality=str(head.get("Modality", "")),
            description=str(head.get("SeriesDescription", "")),
            number=_int(head.get("SeriesNumber")),
            instances=tuple(instances),
        ))
    series.sort(key=lambda s: (s.number is None, s.number or 0, s.series_uid))
    return StudyContent(
        study_uid=study_uid,
        patient_id=str(first.get("PatientID", "")),
        patient_name=str(first.get("PatientName", "")),
        patient_birth_date=str(first.get("PatientBirthDate", "")),
        patient_sex=str(first.get("PatientSex", "")),
        accession=str(first.get("AccessionNumber", "")),
        description=str(first.get("StudyDescription", "")),
        study_date=str(first.get("StudyDate", "")),
        study_time=str(first.get("StudyTime", "")),
        study_id=str(first.get("StudyID", "")),
        referring_physician=str(first.get("ReferringPhysicianName", "")),
        series=tuple(series),
    )


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
