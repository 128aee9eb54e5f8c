"""What the pipeline needs of a key object (KOS) instance, read from its bytes."""

from __future__ import annotations

import io

import pydicom

from drimbox.kos.classify import classify_key_object, rejected_instances
from drimbox.store import InstanceFact

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"


def read_key_object(sop_class: str, data: bytes) -> InstanceFact:
    """What the pipeline needs of a key object (KOS), from its bytes: kind, rejected UIDs, its own UIDs.

    Raises ValueError when the bytes do not show the study, series and instance UIDs."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    kind = classify_key_object(ds)
    rejects = tuple(sorted(rejected_instances(ds))) if kind == "rejection" else ()
    fact = InstanceFact(sop_class, kind, rejects, _text(ds, "StudyInstanceUID"), _text(ds, "SeriesInstanceUID"),
                        _text(ds, "SOPInstanceUID"), _number(ds.get("InstanceNumber")))
    if not (fact.study_uid and fact.complete):
        raise ValueError("no study, series or SOP instance UID in the key object")
    return fact


def _text(ds, keyword: str) -> str | None:
    return str(ds.get(keyword, "") or "").strip() or None


def _number(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


