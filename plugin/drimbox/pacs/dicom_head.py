"""A fast reader of the few top-level attributes the pipeline needs from a Part-10 file's head.

pydicom costs about half a millisecond per file whatever its size, which is Orthanc's own ingest time for a
small image. This walks the data set's elements in the common encodings (explicit and implicit VR little
endian, encapsulated or not), skipping sequences of any length, and stops past group 0x0020. Anything else
(big endian, deflate, a truncated or odd file) returns None and the caller uses pydicom.
"""

from __future__ import annotations

import struct

WANTED = {
    (0x0008, 0x0018): "SOPInstanceUID",
    (0x0020, 0x000D): "StudyInstanceUID",
    (0x0020, 0x000E): "SeriesInstanceUID",
    (0x0020, 0x0013): "InstanceNumber",
}
LAST_WANTED = (0x0020, 0x0013)
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = (0xFFFE, 0xE000), (0xFFFE, 0xE00D), (0xFFFE, 0xE0DD)
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
IMPLICIT_LE = "1.2.840.10008.1.2"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95")
_TAG_LENGTH = struct.Struct("<HHI")
_TAG = struct.Struct("<HH")
_SHORT = struct.Struct("<H")
_LONG = struct.Struct("<I")


class _Unsupported(Exception):
    pass


def read_head_attributes(data: bytes) -> dict[str, str] | None:
    """{keyword: text} of the wanted attributes found at the top level, or None when not readable here."""
    try:
        explicit, position = _after_meta(data)
        found: dict[str, str] = {}
        _walk(data, position, explicit, found, top_level=True)
        return found
    except (_Unsupported, struct.error, IndexError, UnicodeDecodeError):
        return None


def _after_meta(data: bytes) -> tuple[bool, int]:
    if data[128:132] != b"DICM":
        raise _Unsupported("no Part-10 preamble")
    position, syntax = 132, ""
    while position + 8 <= len(data):
        group, element = _TAG.unpack_from(data, position)
        if group != 0x0002:
            break
        vr = data[position + 4:position + 6]
        if vr in LONG_VRS:
            length, header = _LONG.unpack_from(data, position + 8)[0], 12
        else:
            length, header = _SHORT.unpack_from(data, position + 6)[0], 8
        if element == 0x0010:
            syntax = data[position + header:position + header + length].decode("ascii").strip("\0 ")
        position += header + length
    if not syntax or syntax == BIG_ENDIAN or syntax in DEFLATED:
        raise _Unsupported(f"transfer syntax {syntax!r}")
    return syntax != IMPLICIT_LE, position


def _walk(data: bytes, position: int, explicit: bool, found: dict, *, top_level: bool) -> int:
    """Read elements from ``position``; returns the position after an item delimiter (nested) or at the stop."""
    end = len(data)
    while position + 8 <= end:
        group, element = _TAG.unpack_from(data, position)
        tag = (group, element)
        if tag == ITEM_END:
            return position + 8
        vr = b""
        if explicit and group != 0xFFFE:
            vr = data[position + 4:position + 6]
            if vr in LONG_VRS:
                length = _LONG.unpack_from(data, position + 8)[0]
                position += 12
            else:
                length = _SHORT.unpack_from(data, position + 6)[0]
                position += 8
        else:
            length = _LONG.unpack_from(data, position + 4)[0]
            position += 8
        if top_level and tag > LAST_WANTED:
            return position
        if length == UNDEFINED:
            if vr == b"UN":  # its content is implicit VR whatever the file's syntax: leave it to pydicom
                raise _Unsupported("UN of undefined length")
            position = _skip_undefined_sequence(data, position, explicit)
            continue
        if top_level and tag in WANTED:
            found[WANTED[tag]] = data[position:position + length].decode("ascii").strip("\0 ")
        position += length
    if not top_level:
        raise _Unsupported("truncated")
    return position


def _skip_undefined_sequence(data: bytes, position: int, explicit: bool) -> int:
    while True:
        group, element, length = _TAG_LENGTH.unpack_from(data, position)
        position += 8
        if (group, element) == SEQUENCE_END:
            return position
        if (group, element) != ITEM:
            raise _Unsupported("unexpected element in a sequence")
        if length == UNDEFINED:
            position = _walk(data, position, explicit, {}, top_level=False)
        else:
            position += length
