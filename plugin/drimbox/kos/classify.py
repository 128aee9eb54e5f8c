"""What a Key Object Selection instance is for, and IHE IOCM rejection notes."""

from __future__ import annotations

from dataclasses import replace

from pydicom.dataset import Dataset

from drimbox.kos import codes
from drimbox.studies.model import StudyContent

MANIFEST = "manifest"
KEY_IMAGES = "key_images"
REJECTION = "rejection"
OTHER = "other"


def kind_of_title(code_value: str, scheme: str = "DCM") -> str:
    """Kind of a KO from its document title (ConceptNameCodeSequence code)."""
    if scheme != "DCM":
        return OTHER
    if code_value in codes.MANIFEST_TITLES:
        return MANIFEST
    if code_value in codes.KEY_IMAGES_TITLES:
        return KEY_IMAGES
    if code_value in codes.REJECTION_TITLES:
        return REJECTION
    return OTHER


def classify_key_object(ds: Dataset) -> str:
    """``"manifest"``, ``"key_images"``, ``"rejection"`` or ``"other"`` (not a KO, or another title)."""
    if ds.get("SOPClassUID") != codes.KOS_SOP_CLASS_UID:
        return OTHER
    title = ds.get("ConceptNameCodeSequence")
    if not title:
        return OTHER
    return kind_of_title(str(title[0].get("CodeValue", "")), str(title[0].get("CodingSchemeDesignator", "")))


def rejected_instances(ds: Dataset) -> set[str]:
    """SOP instance UIDs a rejection note rejects (empty for any other object)."""
    if classify_key_object(ds) != REJECTION:
        return set()
    rejected: set[str] = set()
    for study_item in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        for series_item in study_item.get("ReferencedSeriesSequence", []):
            for ref in series_item.get("ReferencedSOPSequence", []):
                if "ReferencedSOPInstanceUID" in ref:
                    rejected.add(str(ref.ReferencedSOPInstanceUID))
    for content in ds.get("ContentSequence", []):
        for ref in content.get("ReferencedSOPSequence", []):
            if "ReferencedSOPInstanceUID" in ref:
                rejected.add(str(ref.ReferencedSOPInstanceUID))
    return rejected


def apply_rejections(study: StudyContent, rejected: set[str]) -> StudyContent:
    """``study`` without the rejected instances, and without the series left empty."""
    if not rejected:
        return study
    series = []
    for s in study.series:
        kept = tuple(i for i in s.instances if i.sop_instance_uid not in rejected)
        if kept:
            series.append(s if len(kept) == len(s.instances) else replace(s, instances=kept))
    return replace(study, series=tuple(series))
