"""Accept-header negotiation for peer WADO-RS retrieval (docs/conformance.md, "Trusted space, peers and viewer").

Peers and the national validator send Accept in many shapes: comma-separated
``multipart/related; type="application/dicom";transfer-syntax=..;q=..;boundary=**`` items with a trailing
comma, one Accept header per transfer syntax, items carrying only ``transfer-syntax=..;q=..``, ``q`` written
``0``/``0.0``/``1``/``1.0``, quoted or unquoted ``type``, ``*/*`` and ``transfer-syntax=*``. This module turns
all of them into a flat list of :class:`AcceptedType` and picks the transfer syntax to send.

Policy: the stored syntax is sent whenever the caller accepts it (q > 0), because transcoding costs 20-40x
(docs/orthanc-notes.md point 15). Otherwise the highest q wins, ties broken by the national lossless
preference order. A ``multipart/related; type=application/dicom`` item without ``transfer-syntax`` means
Explicit VR Little Endian (DICOM PS3.18 since 2016c), as Orthanc DICOMweb >= 1.5 also reads it.

A ``q`` that is not an RFC 9110 qvalue (``0`` to ``1`` with at most three decimals: no sign, exponent, ``nan``,
``inf``, ``1.0001``) makes its item unusable: the item is dropped. A header whose items are all dropped offers
nothing (the policy answers 400), which is not the same as no Accept header at all (anything goes).

Frames: PS3.18 has no ``application/dicom`` frames, but the national client simulator asks ``/frames/1`` with
the instances' ``application/dicom`` list and expects frames as ``application/octet-stream``. Orthanc's
DICOMweb 1.7 sends octet-stream frames only uncompressed (a compressed ``transfer-syntax`` with octet-stream is
a 400 there), so for frames an ``application/dicom`` item stands for uncompressed frames when it names Explicit
VR LE (or no or any syntax); its compressed syntaxes are not producible that way and are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
ANY_TRANSFER_SYNTAX = "*"

# The national lossless preference (docs/conformance.md): JPEG lossless SV1 > JPEG-LS lossless > JPEG 2000 >
# lossy JPEG/MPEG > Explicit VR LE. Syntaxes not listed rank after all of these, in UID order.
PREFERENCE_ORDER: tuple[str, ...] = (
    JPEG_LOSSLESS_SV1,
    JPEG_LS_LOSSLESS,
    JPEG_2000_LOSSLESS,
    JPEG_2000,
    "1.2.840.10008.1.2.4.57",  # JPEG lossless, any predictor
    "1.2.840.10008.1.2.5",  # RLE lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.100",  # MPEG-2
    "1.2.840.10008.1.2.4.101",
    "1.2.840.10008.1.2.4.102",  # MPEG-4
    "1.2.840.10008.1.2.4.103",
    "1.2.840.10008.1.2.4.110",  # HEVC
    "1.2.840.10008.1.2.4.111",
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
)
_RANK = {uid: index for index, uid in enumerate(PREFERENCE_ORDER)}

# Lossless syntaxes Orthanc 1.10 + DICOMweb 1.7 produced here from a JPEG-LS and from an uncompressed
# 16-bit study without the GDCM plugin (which must never be loaded, docs/orthanc-notes.md point 11). RLE
# (1.2.5) and JPEG 2000 answer 500. Lossy targets are left out on purpose: never degrade images a peer may
# use for diagnosis unless the adapter opts in explicitly.
ORTHANC_LOSSLESS_TRANSCODABLE: frozenset[str] = frozenset(
    {EXPLICIT_VR_LE, IMPLICIT_VR_LE, JPEG_LOSSLESS_SV1, "1.2.840.10008.1.2.4.57", JPEG_LS_LOSSLESS}
)

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"
# Part media types that can carry whole DICOM instances.
_INSTANCE_MEDIA = {DICOM, "*/*", "application/*"}
# Part media types that can carry frames: raw bytes in any syntax, or one codec family's bitstream.
_FRAME_MEDIA = {OCTET_STREAM, "*/*", "application/*"}
_FRAME_IMAGE_FAMILIES: dict[str, frozenset[str]] = {
    "image/jls": frozenset({JPEG_LS_LOSSLESS, "1.2.840.10008.1.2.4.81"}),
    "image/jpeg": frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                             JPEG_LOSSLESS_SV1}),
    "image/jp2": frozenset({JPEG_2000_LOSSLESS, JPEG_2000}),
    "image/dicom-rle": frozenset({"1.2.840.10008.1.2.5"}),
    "image/x-dicom-rle": frozenset({"1.2.840.10008.1.2.5"}),
}
_METADATA_MEDIA = {DICOM_JSON, "application/json", "*/*", "application/*"}


@dataclass(frozen=True)
class AcceptedType:
    """One acceptable representation.

    ``media_type`` is the media type of the parts (``application/dicom`` for
    ``multipart/related; type="application/dicom"``), ``"*/*"`` when the item named no media type, lower-case.
    ``transfer_syntax`` is the UID, ``"*"`` for any, or None when the item did not say.
    """

    media_type: str
    transfer_syntax: str | None
    q: float = 1.0
    multipart: bool = False


def parse_accept(values: Iterable[str]) -> list[AcceptedType]:
    """Flatten one or several Accept header values into their items, in order of appearance.

    Malformed items (unparseable or out-of-range q) are skipped rather than failing the whole header;
    an empty result means nothing usable was offered.
    """
    accepted: list[AcceptedType] = []
    for value in values:
        for item in _split_outside_quotes(value or "", ","):
            parsed = _parse_item(item)
            if parsed is not None:
                accepted.append(parsed)
    return accepted


def _parse_item(item: str) -> AcceptedType | None:
    pieces = [p.strip() for p in _split_outside_quotes(item, ";")]
    pieces = [p for p in pieces if p]
    if not pieces:
        return None
    media_type = "*/*"
    if "=" not in pieces[0]:
        media_type = _unquote(pieces.pop(0)).lower()
        if "/" not in media_type:
            return None
    params: dict[str, str] = {}
    for piece in pieces:
        name, sep, raw = piece.partition("=")
        if not sep:
            continue  # a bare token such as a stray word: ignore it
        params.setdefault(name.strip().lower(), _unquote(raw.strip()))
    q = _parse_q(params.get("q", "1"))
    if q is None:
        return None
    multipart = media_type == "multipart/related"
    if multipart:
        # multipart/related without type says nothing about its parts: read it as any part type.
        media_type = params.get("type", "").strip().lower() or "*/*"
    transfer_syntax = params.get("transfer-syntax")
    if transfer_syntax is not None:
        transfer_syntax = transfer_syntax.strip() or None
    return AcceptedType(media_type=media_type, transfer_syntax=transfer_syntax, q=q, multipart=multipart)


# RFC 9110 section 12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)\Z")


def _parse_q(raw: str) -> float | None:
    text = _unquote(raw.strip())
    if not _QVALUE.match(text):
        return None
    return float(text)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"')
    return text


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def accepts_metadata(accepted: list[AcceptedType]) -> bool:
    """True when some item with q > 0 allows DICOM JSON (the /metadata resources)."""
    if not accepted:
        return True  # no Accept header at all means anything (RFC 9110)
    return any(a.q > 0 and a.media_type in _METADATA_MEDIA for a in accepted)


def usable_for(accepted: list[AcceptedType], *, frames: bool = False) -> bool:
    """True when some item with q > 0 names something DICOM instances (or frames) can be sent as."""
    return any(item.q > 0 and _syntaxes_of(item, frames) for item in accepted)


def transfer_syntax_quality(accepted: list[AcceptedType], transfer_syntax: str, *, frames: bool = False) -> float:
    """q given to ``transfer_syntax`` for DICOM instances (or frames); 0 when refused or not mentioned.

    An item naming the syntax exactly outranks a wildcard item (``transfer-syntax=*``, ``*/*`` without
    syntax, an image/* family), as in HTTP where the most specific range wins. Among equally specific items
    the highest q counts.
    """
    exact: float | None = None
    wildcard: float | None = None
    for item in accepted:
        syntaxes = _syntaxes_of(item, frames)
        if not syntaxes or (syntaxes != ANY_TRANSFER_SYNTAX and transfer_syntax not in syntaxes):
            continue
        if item.transfer_syntax == transfer_syntax:
            exact = item.q if exact is None else max(exact, item.q)
        else:
            wildcard = item.q if wildcard is None else max(wildcard, item.q)
    if exact is not None:
        return exact
    return wildcard or 0.0


def _syntaxes_of(item: AcceptedType, frames: bool) -> str | frozenset[str] | None:
    """The syntaxes an item covers: ``"*"``, a set, or None when its media type does not apply."""
    if frames and item.media_type == DICOM:
        if item.transfer_syntax in (None, ANY_TRANSFER_SYNTAX, EXPLICIT_VR_LE):
            return frozenset({EXPLICIT_VR_LE})
        return frozenset()
    family = _FRAME_IMAGE_FAMILIES.get(item.media_type) if frames else None
    if family is not None:
        if item.transfer_syntax in (None, ANY_TRANSFER_SYNTAX):
            return family
        return frozenset({item.transfer_syntax}) & family
    if item.media_type not in (_FRAME_MEDIA if frames else _INSTANCE_MEDIA):
        return None
    if item.transfer_syntax is not None:
        if item.transfer_syntax == ANY_TRANSFER_SYNTAX:
            return ANY_TRANSFER_SYNTAX
        return frozenset({item.transfer_syntax})
    # application/dicom or application/octet-stream without a syntax means Explicit VR LE (PS3.18);
    # */* without one means anything.
    if item.media_type in (DICOM, OCTET_STREAM):
        return frozenset({EXPLICIT_VR_LE})
    return ANY_TRANSFER_SYNTAX


def choose_transfer_syntax(
    accepted: list[AcceptedType],
    stored_ts: str,
    *,
    transcodable: set[str] | frozenset[str],
    frames: bool = False,
) -> str | None:
    """The transfer syntax to send, or None when nothing acceptable can be produced (answer 400).

    ``transcodable`` lists the syntaxes the server can produce from ``stored_ts``. An empty ``accepted``
    (no Accept header) is read as ``*/*``: the stored syntax.
    """
    if not accepted:
        return stored_ts
    if transfer_syntax_quality(accepted, stored_ts, frames=frames) > 0:
        return stored_ts
    candidates = set(transcodable)
    scored = [(transfer_syntax_quality(accepted, ts, frames=frames), ts) for ts in candidates]
    scored = [(q, ts) for q, ts in scored if q > 0]
    if not scored:
        return None
    scored.sort(key=lambda pair: (-pair[0], _RANK.get(pair[1], len(_RANK)), pair[1]))
    return scored[0][1]


def orthanc_accept_header(ts: str, stored_ts: str, *, frames: bool = False) -> str:
    """The single Accept nginx must forward to Orthanc DICOMweb 1.7 (always overwrite the caller's).

    Verified against Orthanc 1.10.1 + DICOMweb 1.7 on a JPEG-LS study:
    - ``transfer-syntax=*`` sends the stored bytes untouched (instances byte-identical to the stored files,
      frames identical to the stored fragments); naming the stored UID explicitly does the same for
      instances. We use ``*`` for the stored syntax.
    - Without Accept, with ``*/*`` or without ``transfer-syntax``, Orthanc transcodes to Explicit VR LE.
    - With several comma-separated items Orthanc ignores q and uses the LAST item, and an item without a
      media type is a 400: never forward a caller's Accept as is.
    - Frames: ``application/octet-stream`` only takes uncompressed syntaxes (else 400); a compressed target
      must be asked with its image media type (``image/jpeg`` for 1.2.840.10008.1.2.4.70, ``image/jls``...).
    """
    if ts == stored_ts:
        part_type = OCTET_STREAM if frames else DICOM
        return f'multipart/related; type="{part_type}"; transfer-syntax={ANY_TRANSFER_SYNTAX}'
    if not frames:
        return f'multipart/related; type="{DICOM}"; transfer-syntax={ts}'
    part_type = next((media for media, family in _FRAME_IMAGE_FAMILIES.items() if ts in family), OCTET_STREAM)
    return f'multipart/related; type="{part_type}"; transfer-syntax={ts}'
