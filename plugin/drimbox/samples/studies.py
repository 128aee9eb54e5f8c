"""Synthetic DICOM studies: real Part-10 files for tests and demos, in-memory contents for benches.

Pixel data shows a gradient, a frame and a disk that moves from one image to the next, so a viewer
scrolling through a series visibly shows something. ``jpegls=True`` re-encodes each file with dcmtk's
``dcmcjpls`` (lossless), in parallel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

from drimbox.kos import codes, document
from drimbox.kos.uids import new_uid
from drimbox.studies.model import InstanceRef, SeriesContent, StudyContent

SAMPLE_UID_ROOT = "1.2.826.0.1.3680043.8.498.78"

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SOP_CLASS_BY_MODALITY = {"CT": CT_IMAGE, "MR": MR_IMAGE, "CR": CR_IMAGE}

_BODY_PARTS = {"CT": "CHEST", "MR": "HEAD", "CR": "CHEST"}
_SERIES_DESCRIPTIONS = {"CT": "Coupes axiales", "MR": "T2 axial", "CR": "Face"}


def make_study(
    out_dir: str | os.PathLike,
    *,
    study_uid: str | None = None,
    patient_id: str,
    patient_name: str,
    birth_date: str,
    sex: str,
    accession: str,
    series: Sequence[tuple[str, int]] = (("CT", 3), ("CT", 2)),
    rows: int = 64,
    cols: int = 64,
    jpegls: bool = False,
    study_description: str = "Examen de démonstration",
    study_date: str = "",
    study_time: str = "",
    referring_physician: str = "",
    uid_root: str = SAMPLE_UID_ROOT,
    noise: int = 24,
    workers: int | None = None,
) -> StudyContent:
    """Write one study as Part-10 files under ``out_dir`` and return what it holds.

    ``series`` lists (modality, image count); CT, MR and CR get their own image SOP class, other
    modalities are written as Secondary Capture. ``noise`` is the amplitude of a reproducible random
    noise (stored values; the pattern spans 0-3000) that makes compressed sizes realistic: 1,300
    512x512 CT images in JPEG-LS come to about 200 MB, like the national performance study.
    ``workers`` bounds the parallel ``dcmcjpls`` processes (default: twice the CPU count).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if jpegls and not shutil.which("dcmcjpls"):
        raise RuntimeError("jpegls=True needs dcmtk's dcmcjpls on the PATH")
    now = datetime.now()
    study = StudyContent(
        study_uid=study_uid or new_uid(uid_root),
        patient_id=patient_id,
        patient_name=patient_name,
        patient_birth_date=birth_date,
        patient_sex=sex,
        accession=accession,
        description=study_description,
        study_date=study_date or now.strftime("%Y%m%d"),
        study_time=study_time or now.strftime("%H%M%S"),
        study_id="1",
        referring_physician=referring_physician,
    )
    frame_of_reference = new_uid(uid_root)
    pattern = _PatternMaker(rows, cols, noise)
    contents: list[SeriesContent] = []
    # Compression starts as soon as a file is written, overlapping with the generation of the next ones.
    pool = ThreadPoolExecutor(max_workers=workers or (os.cpu_count() or 2) * 2) if jpegls else None
    pending = []
    try:
        for number, (modality, count) in enumerate(series, start=1):
            modality = modality.upper()
            sop_class = SOP_CLASS_BY_MODALITY.get(modality, SECONDARY_CAPTURE)
            description = _SERIES_DESCRIPTIONS.get(modality, f"Série {modality}")
            series_uid = new_uid(uid_root)
            refs = []
            for index in range(1, count + 1):
                sop_uid = new_uid(uid_root)
                ds = _image(study, modality, sop_class, series_uid, number, description, sop_uid, index,
                            frame_of_reference, pattern.image(index, count, modality), now)
                path = out / f"{number:03d}_{index:05d}.dcm"
                _write(ds, path)
                if pool:
                    pending.append(pool.submit(_compress_one, path))
                refs.append(InstanceRef(sop_class, sop_uid, index))
            contents.append(SeriesContent(series_uid, modality, description, number, tuple(refs)))
        for future in pending:
            future.result()
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
    return _with_series(study, contents)


def _compress_one(path: Path) -> None:
    tmp = path.with_suffix(".jls.tmp")
    result = subprocess.run(["dcmcjpls", "+el", str(path), str(tmp)], capture_output=True, text=True)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"dcmcjpls failed on {path}: {result.stderr.strip()}")
    tmp.replace(path)


def make_key_image_note(
    out_dir: str | os.PathLike,
    study: StudyContent,
    *,
    referenced: Sequence[InstanceRef] | None = None,
    description: str = "Images clés",
    uid_root: str = SAMPLE_UID_ROOT,
    now: datetime | None = None,
) -> StudyContent:
    """Write a Key Image Note (KO, title 113000) in ``study``; default: first image of each series.

    Returns ``study`` with the note's series added (its instance has ``kind="key_images"``).
    """
    if referenced is None:
        referenced = [s.instances[0] for s in study.series if s.instances and not s.instances[0].kind]
    return _key_object(out_dir, study, codes.OF_INTEREST, referenced, description, "key_images",
                       "Images clés", uid_root, now)


def make_rejection_note(
    out_dir: str | os.PathLike,
    study: StudyContent,
    rejected: Iterable[str],
    *,
    title: str = "113001",
    uid_root: str = SAMPLE_UID_ROOT,
    now: datetime | None = None,
) -> StudyContent:
    """Write an IHE IOCM rejection note (KO, title ``title``) rejecting SOP instance UIDs of ``study``.

    Returns ``study`` with the note's series added (``kind="rejection"``); the rejected instances are
    still listed: drop them with :func:`drimbox.kos.classify.apply_rejections`.
    """
    wanted = set(rejected)
    refs = [i for s in study.series for i in s.instances if i.sop_instance_uid in wanted]
    missing = wanted - {i.sop_instance_uid for i in refs}
    if missing:
        raise ValueError(f"not instances of study {study.study_uid}: {', '.join(sorted(missing))}")
    concept = (title, "DCM", codes.REJECTION_TITLES[title])
    return _key_object(out_dir, study, concept, refs, None, "rejection", "Rejet", uid_root, now)


def make_study_content(
    n_series: int,
    n_instances_per_series: int,
    *,
    study_uid: str | None = None,
    modality: str = "CT",
    patient_id: str = "P0001",
    patient_name: str = "DEMO^Patient",
    birth_date: str = "19700101",
    sex: str = "F",
    accession: str = "ACC0001",
    description: str = "Examen de démonstration",
    uid_root: str = SAMPLE_UID_ROOT,
) -> StudyContent:
    """An in-memory study (no files), e.g. to bench the KOS builder."""
    sop_class = SOP_CLASS_BY_MODALITY.get(modality, SECONDARY_CAPTURE)
    series = tuple(
        SeriesContent(
            series_uid=new_uid(uid_root),
            modality=modality,
            description=f"Série {number}",
            number=number,
            instances=tuple(InstanceRef(sop_class, new_uid(uid_root), index)
                            for index in range(1, n_instances_per_series + 1)),
        )
        for number in range(1, n_series + 1)
    )
    return StudyContent(
        study_uid=study_uid or new_uid(uid_root), patient_id=patient_id, patient_name=patient_name,
        patient_birth_date=birth_date, patient_sex=sex, accession=accession, description=description,
        study_date="20240102", study_time="101500", study_id="1", series=series)


# -- images ---------------------------------------------------------------------------------------


class _PatternMaker:
    def __init__(self, rows: int, cols: int, noise: int) -> None:
        self.rows, self.cols, self.noise = rows, cols, noise
        self.y, self.x = np.mgrid[0:rows, 0:cols]
        border = max(1, min(rows, cols) // 32)
        self.base = (self.x * 1200 // max(cols - 1, 1) + self.y * 400 // max(rows - 1, 1)).astype(np.uint16)
        frame = np.zeros((rows, cols), dtype=bool)
        frame[:border, :] = frame[-border:, :] = frame[:, :border] = frame[:, -border:] = True
        self.frame = frame

    def image(self, index: int, count: int, modality: str) -> np.ndarray:
        img = self.base.copy()
        img[self.frame] = 3000
        t = (index - 1) / max(count - 1, 1)
        cy = self.rows * (0.3 + 0.4 * t)
        cx = self.cols * (0.7 - 0.4 * t)
        radius = min(self.rows, self.cols) / 6
        img[(self.y - cy) ** 2 + (self.x - cx) ** 2 <= radius**2] = 2400
        if self.noise:
            rng = np.random.default_rng(index)
            img += rng.integers(0, self.noise, size=img.shape, dtype=np.uint16)
        if modality == "CR":
            return (4095 - img).astype(np.uint16)  # MONOCHROME1: bright bones on a dark field
        return img


def _image(study: StudyContent, modality: str, sop_class: str, series_uid: str, series_number: int,
           description: str, sop_uid: str, index: int, frame_of_reference: str, pixels: np.ndarray,
           now: datetime) -> Dataset:
    ds = _patient_and_study(study)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.BodyPartExamined = _BODY_PARTS.get(modality, "ABDOMEN")  # unpaired: Laterality must stay absent
    ds.Manufacturer = "DRIMbox samples"
    ds.InstanceNumber = index
    ds.ContentDate = study.study_date
    ds.ContentTime = study.study_time
    ds.SamplesPerPixel = 1
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = 1500
    ds.WindowWidth = 3000
    if sop_class in (CT_IMAGE, MR_IMAGE):
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.PatientPosition = "HFS"
        ds.PixelSpacing = [0.7, 0.7]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-180, -180, -2.5 * index]
        ds.SliceThickness = 2.5
        ds.SliceLocation = -2.5 * index
        ds.AcquisitionNumber = 1
    else:
        ds.PatientOrientation = ["L", "F"]
    if sop_class == CT_IMAGE:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.KVP = 120
        ds.WindowCenter = 1500 - 1024  # same window as the stored values, in HU
    elif sop_class == MR_IMAGE:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = 4000
        ds.EchoTime = 100
        ds.EchoTrainLength = 16
        ds.MagneticFieldStrength = 1.5
    elif sop_class == CR_IMAGE:
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.ViewPosition = "PA"
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
    else:
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.ConversionType = "WSD"
        ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.PixelData = pixels.astype("<u2").tobytes()
    return ds


def _patient_and_study(study: StudyContent) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.patient_birth_date
    ds.PatientSex = study.patient_sex
    ds.StudyInstanceUID = study.study_uid
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.ReferringPhysicianName = study.referring_physician
    ds.StudyID = study.study_id
    ds.AccessionNumber = study.accession
    ds.StudyDescription = study.description
    return ds


def _write(ds: Dataset, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


# -- key objects ----------------------------------------------------------------------------------


def _key_object(out_dir, study: StudyContent, title: tuple[str, str, str], referenced: Sequence[InstanceRef],
                description: str | None, kind: str, series_description: str, uid_root: str,
                now: datetime | None) -> StudyContent:
    if not referenced:
        raise ValueError("a key object note must reference at least one instance")
    now = now or datetime.now()
    series_of = {i.sop_instance_uid: s.series_uid for s in study.series for i in s.instances}
    grouped: dict[str, list[tuple[str, str]]] = {}
    for ref in referenced:
        grouped.setdefault(series_of[ref.sop_instance_uid], []).append((ref.sop_class_uid, ref.sop_instance_uid))
    evidence = [document.EvidenceSeries(uid, tuple(refs)) for uid, refs in grouped.items()]
    sop_uid, series_uid = new_uid(uid_root), new_uid(uid_root)
    number = max((s.number or 0 for s in study.series), default=0) + 1
    ds = document.new_kos(title=title, sop_instance_uid=sop_uid, series_instance_uid=series_uid,
                          study_uid=study.study_uid, now=now, series_number=number,
                          manufacturer="DRIMbox samples", series_description=series_description)
    for element in _patient_and_study(study):
        if element.tag != 0x00080005:
            ds[element.tag] = element
    request = Dataset()
    request.StudyInstanceUID = study.study_uid
    request.ReferencedStudySequence = []
    request.AccessionNumber = study.accession
    request.PlacerOrderNumberImagingServiceRequest = ""
    request.FillerOrderNumberImagingServiceRequest = ""
    request.RequestedProcedureID = ""
    request.RequestedProcedureDescription = ""
    request.RequestedProcedureCodeSequence = []
    ds.ReferencedRequestSequence = [request]
    ds[0x0040A375] = document.evidence_sequence(study.study_uid, evidence)
    ds[0x0040A730] = document.content_sequence(evidence, description)
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"KO_{number:03d}_{kind}.dcm").write_bytes(document.encode(ds))
    series = SeriesContent(series_uid, "KO", series_description, number,
                           (InstanceRef(codes.KOS_SOP_CLASS_UID, sop_uid, 1, kind),))
    return _with_series(study, [*study.series, series])


def _with_series(study: StudyContent, series: Sequence[SeriesContent]) -> StudyContent:
    from dataclasses import replace

    return replace(study, series=tuple(series))
