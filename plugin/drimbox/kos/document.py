"""The parts every Key Object Selection document shares (manifests, key image notes, rejection notes).

Modules of the KOS IOD (PS3.3 A.35.4) filled here: SOP Common, Key Object Document Series, General
Equipment, Key Object Document and SR Document Content. Patient and General Study are the caller's.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydicom.charset import convert_encodings
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

from drimbox.kos import codes, sr
from drimbox.kos import rawseq as raw


@dataclass(frozen=True)
class EvidenceSeries:
    series_uid: str
    references: tuple[tuple[str, str], ...]  # (SOP class UID, SOP instance UID)
    retrieve_url: str | None = None


def new_kos(
    *,
    title: tuple[str, str, str],
    sop_instance_uid: str,
    series_instance_uid: str,
    study_uid: str,
    now: datetime,
    series_number: int = 1,
    instance_number: int = 1,
    manufacturer: str = "DRIMbox",
    institution_name: str = "",
    series_description: str = "",
) -> Dataset:
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds = Dataset()
    # Raw sequences are written as they are only when the encoding matches (see rawseq).
    ds.set_original_encoding(False, True, convert_encodings("ISO_IR 192"))
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = time
    ds.SOPClassUID = codes.KOS_SOP_CLASS_UID
    ds.SOPInstanceUID = sop_instance_uid
    if now.utcoffset() is not None:
        ds.TimezoneOffsetFromUTC = now.strftime("%z")
    ds.StudyInstanceUID = study_uid
    ds.Modality = "KO"
    ds.SeriesInstanceUID = series_instance_uid
    ds.SeriesNumber = series_number
    ds.SeriesDate = date
    ds.SeriesTime = time
    if series_description:
        ds.SeriesDescription = series_description
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.Manufacturer = manufacturer
    if institution_name:
        ds.InstitutionName = institution_name
    ds.InstanceNumber = instance_number
    ds.ContentDate = date
    ds.ContentTime = time
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([sr.code_item(*title)])
    ds.ContinuityOfContent = "SEPARATE"
    ds.ContentTemplateSequence = sr.template_sequence(codes.TEMPLATE_KOS)
    return ds


def evidence_sequence(study_uid: str, series: Iterable[EvidenceSeries]) -> RawDataElement:
    """CurrentRequestedProcedureEvidenceSequence (Hierarchical SOP Instance Reference Macro)."""
    series_items = []
    for entry in series:
        refs = [_sop_reference(c, i) for c, i in entry.references]
        url = [raw.text(0x00081190, b"UR", entry.retrieve_url)] if entry.retrieve_url else []
        series_items.append(raw.item(
            *url,
            raw.sequence(0x00081199, refs),  # ReferencedSOPSequence
            raw.text(0x0020000E, b"UI", entry.series_uid),
        ))
    study_item = raw.item(
        raw.sequence(0x00081115, series_items),  # ReferencedSeriesSequence
        raw.text(0x0020000D, b"UI", study_uid),
    )
    return raw.raw_sequence(0x0040A375, [study_item])


def content_sequence(series: Iterable[EvidenceSeries], description: str | None) -> RawDataElement:
    """TID 2010 content: one reference item per object, then the Key Object Description."""
    contains = raw.text(0x0040A010, b"CS", "CONTAINS")
    items = [
        raw.item(
            raw.sequence(0x00081199, [_sop_reference(c, i)]),
            contains,
            raw.text(0x0040A040, b"CS", sr.value_type_for(c)),
        )
        for entry in series
        for c, i in entry.references
    ]
    if description:
        value, scheme, meaning = codes.KEY_OBJECT_DESCRIPTION
        items.append(raw.item(
            contains,
            raw.text(0x0040A040, b"CS", "TEXT"),
            raw.sequence(0x0040A043, [raw.item(  # ConceptNameCodeSequence
                raw.text(0x00080100, b"SH", value),
                raw.text(0x00080102, b"SH", scheme),
                raw.text(0x00080104, b"LO", meaning),
            )]),
            raw.text(0x0040A160, b"UT", description),  # TextValue
        ))
    return raw.raw_sequence(0x0040A730, items)


def _sop_reference(sop_class_uid: str, sop_instance_uid: str) -> bytes:
    return raw.item(
        raw.text(0x00081150, b"UI", sop_class_uid),
        raw.text(0x00081155, b"UI", sop_instance_uid),
    )


def encode(ds: Dataset) -> bytes:
    """Part-10 file bytes (preamble, meta header, Explicit VR Little Endian data set)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "DRIMBOX_01"
    ds.file_meta = meta
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
