"""Coded concepts of Key Object Selection documents (DICOM PS3.16, CID 7010 and TID 2010)."""

from __future__ import annotations

KOS_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.88.59"

MANIFEST = ("113030", "DCM", "Manifest")
SIGNED_MANIFEST = ("113031", "DCM", "Signed Manifest")
OF_INTEREST = ("113000", "DCM", "Of Interest")
KEY_OBJECT_DESCRIPTION = ("113012", "DCM", "Key Object Description")

# IHE IOCM rejection note titles.
REJECTION_TITLES = {
    "113001": "Rejected for Quality Reasons",
    "113037": "Rejected for Patient Safety Reasons",
    "113038": "Incorrect Modality Worklist Entry",
    "113039": "Data Retention Policy Expired",
}
MANIFEST_TITLES = {MANIFEST[0], SIGNED_MANIFEST[0]}
KEY_IMAGES_TITLES = {OF_INTEREST[0]}

TEMPLATE_KOS = "2010"
