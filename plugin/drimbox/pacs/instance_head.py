"""What the pipeline needs of one instance, read from the first bytes of its DICOM file."""

from __future__ import annotations

import io

import pydicom

from drimbox.kos.classify import classify_key_object, rejected_instances
from drimbox.pacs.dicom_head import read_head_attributes
from drimbox.store import InstanceFact

# enough for any ordinary header; the study UID lies far before the pixel data
HEAD_BYTES = 256 * 1024

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
HEAD_TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "InstanceNumber"]


def read_head(sop_class: str, data: bytes) -> InstanceFact:
    """What the pipeline needs of an instance, from its first bytes (key objects: whole, to classify them).

    Raises ValueError when the bytes do not show the study, series and instance UIDs (unreadable, or a head
    longer than what is kept)."""
    if sop_class == KOS_SOP_CLASS:
        ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
        kind = classify_key_object(ds)
        rejects = tuple(sorted(rejected_instances(ds))) if kind == "rejection" else ()
    else:
        attributes = read_head_attributes(data)
        if attributes is not None and all(attributes.get(k) for k in HEAD_TAGS[:3]):
            ds = attributes  # the fast path: same keys as the pydicom data set
        else:
            ds = pydicom.dcmread(io.BytesIO(data[:HEAD_BYTES]), force=True, stop_before_pixels=True,
                                 specific_tags=HEAD_TAGS)
        kind, rejects = "", ()
    fact = InstanceFact(sop_class, kind, rejects, _text(ds, "StudyInstanceUID"), _text(ds, "SeriesInstanceUID"),
                        _text(ds, "SOPInstanceUID"), _number(ds.get("InstanceNumber")))
    if not (fact.study_uid and fact.complete):
        raise ValueError("no study, series or SOP instance UID in the instance's head")
    return fact


def _text(ds, keyword: str) -> str | None:
    return str(ds.get(keyword, "") or "").strip() or None


def _number(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


