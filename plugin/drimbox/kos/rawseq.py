"""Explicit VR Little Endian encoding of the large KOS sequences, done by hand for speed.

A 10,000-instance manifest holds about 50,000 nested datasets; building and writing them through
pydicom's object model takes seconds. These functions produce the sequence values as bytes, which go
into the pydicom dataset as RawDataElements: pydicom writes them as they are (when the dataset's
original encoding is Explicit VR Little Endian) and decodes them lazily if someone reads them.
Elements inside an item must be passed in ascending tag order.
"""

from __future__ import annotations

import struct

from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_ITEM = b"\xfe\xff\x00\xe0"
_SHORT = struct.Struct("<HH2sH")
_LONG = struct.Struct("<HH2sHI")


def element(tag: int, vr: bytes, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr == b"UI" else b" "
    group, elem = tag >> 16, tag & 0xFFFF
    if vr in _LONG_VRS:
        return _LONG.pack(group, elem, vr, 0, len(value)) + value
    if len(value) > 0xFFFF:
        raise ValueError(f"value of ({group:04X},{elem:04X}) {vr.decode()} is too long: {len(value)} bytes")
    return _SHORT.pack(group, elem, vr, len(value)) + value


def text(tag: int, vr: bytes, value: str) -> bytes:
    return element(tag, vr, value.encode("utf-8"))


def item(*elements: bytes) -> bytes:
    body = b"".join(elements)
    return _ITEM + struct.pack("<I", len(body)) + body


def sequence(tag: int, items: list[bytes] | tuple[bytes, ...]) -> bytes:
    """A whole SQ element (for nesting inside items)."""
    return element(tag, b"SQ", b"".join(items))


def raw_sequence(tag: int, items: list[bytes]) -> RawDataElement:
    """A top-level SQ data element whose value is ``items`` already encoded."""
    value = b"".join(items)
    return RawDataElement(Tag(tag), "SQ", len(value), value, 0, False, True)
