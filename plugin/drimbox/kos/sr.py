"""Small pydicom helpers for the coded parts of Key Object Selection documents."""

from __future__ import annotations

from functools import lru_cache

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID_dictionary

# Coding scheme OIDs (as reports carry them) -> DICOM Coding Scheme Designators.
CODING_SCHEME_DESIGNATORS = {
    "2.16.840.1.113883.6.1": "LN",
    "2.16.840.1.113883.6.96": "SCT",
    "1.2.840.10008.2.16.4": "DCM",
    "1.2.250.1.213.2.5": "CCAM",
}

_WAVEFORM_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.9."


def code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    if len(value) > 16:
        item.add_new(0x00080119, "UC", value)  # LongCodeValue
    else:
        item.add_new(0x00080100, "SH", value)  # CodeValue
    item.add_new(0x00080102, "SH", scheme)  # CodingSchemeDesignator
    item.add_new(0x00080104, "LO", meaning[:64])  # CodeMeaning
    return item


def universal_entity(oid: str) -> Dataset:
    """An item of an issuer sequence: (UniversalEntityID, ISO)."""
    item = Dataset()
    item.add_new(0x00400032, "UT", oid)  # UniversalEntityID
    item.add_new(0x00400033, "CS", "ISO")  # UniversalEntityIDType
    return item


@lru_cache(maxsize=512)
def value_type_for(sop_class_uid: str) -> str:
    """TID 2010 value type of a referenced object: IMAGE, WAVEFORM or COMPOSITE."""
    if sop_class_uid.startswith(_WAVEFORM_CLASS_PREFIX):
        return "WAVEFORM"
    entry = UID_dictionary.get(sop_class_uid)
    if entry and "Image Storage" in entry[0] and "Presentation State" not in entry[0]:
        return "IMAGE"
    return "COMPOSITE"


def template_sequence(template_id: str) -> Sequence:
    item = Dataset()
    item.add_new(0x00080105, "CS", "DCMR")  # MappingResource
    item.add_new(0x0040DB00, "CS", template_id)  # TemplateIdentifier
    return Sequence([item])
