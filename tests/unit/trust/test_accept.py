"""Accept parsing and transfer-syntax choice for peer WADO-RS (spec-facts section 7)."""

from __future__ import annotations

import pytest

from drimbox.trust.accept import (
    EXPLICIT_VR_LE,
    JPEG_2000,
    JPEG_LOSSLESS_SV1,
    JPEG_LS_LOSSLESS,
    ORTHANC_LOSSLESS_TRANSCODABLE,
    AcceptedType,
    accepts_metadata,
    choose_transfer_syntax,
    orthanc_accept_header,
    parse_accept,
)

TS_LIST = [
    (JPEG_LOSSLESS_SV1, "1"),
    (JPEG_LS_LOSSLESS, "0.9"),
    (JPEG_2000, "0.8"),
    ("1.2.840.10008.1.2.4.50", "0.5"),
    (EXPLICIT_VR_LE, "0.1"),
]


def validator_header(items=TS_LIST) -> str:
    return "".join(
        f'multipart/related; type="application/dicom";transfer-syntax={ts};q={q};boundary=**,' for ts, q in items
    )


def test_validator_list_with_trailing_comma():
    accepted = parse_accept([validator_header()])
    assert [a.transfer_syntax for a in accepted] == [ts for ts, _ in TS_LIST]
    assert [a.q for a in accepted] == [1.0, 0.9, 0.8, 0.5, 0.1]
    assert all(a.media_type == "application/dicom" and a.multipart for a in accepted)


def test_one_header_per_transfer_syntax_equals_one_list():
    separate = [f'multipart/related; type="application/dicom"; transfer-syntax={ts}; q={q}' for ts, q in TS_LIST]
    assert parse_accept(separate) == parse_accept([validator_header()])


@pytest.mark.parametrize("written, value", [("0", 0.0), ("0.0", 0.0), ("1", 1.0), ("1.0", 1.0), ("0.75", 0.75)])
def test_q_forms(written, value):
    [item] = parse_accept([f"multipart/related; type=application/dicom; transfer-syntax={EXPLICIT_VR_LE}; q={written}"])
    assert item.q == value


def test_entry_without_media_type():
    [item] = parse_accept([f"transfer-syntax={JPEG_LS_LOSSLESS};q=0.5"])
    assert item == AcceptedType("*/*", JPEG_LS_LOSSLESS, 0.5, False)


def test_quoted_and_unquoted_type_are_equal():
    quoted = parse_accept(['multipart/related; type="application/dicom"; transfer-syntax=*'])
    unquoted = parse_accept(["multipart/related;type=application/dicom;transfer-syntax=*"])
    assert quoted == unquoted == [AcceptedType("application/dicom", "*", 1.0, True)]


def test_metadata_and_wildcards():
    assert parse_accept(["application/dicom+json"]) == [AcceptedType("application/dicom+json", None, 1.0)]
    assert parse_accept(["*/*"]) == [AcceptedType("*/*", None, 1.0)]
    assert accepts_metadata(parse_accept(["application/dicom+json, */*;q=0.1"]))
    assert accepts_metadata([])
    assert not accepts_metadata(parse_accept(['multipart/related; type="application/dicom"']))
    assert not accepts_metadata(parse_accept(["application/dicom+json;q=0"]))


def test_malformed_items_are_skipped_not_fatal():
    accepted = parse_accept([f", ;, garbage, transfer-syntax={EXPLICIT_VR_LE};q=2, transfer-syntax={JPEG_2000};q=x,*/*"])
    assert accepted == [AcceptedType("*/*", None, 1.0)]


def choose(header: str | list[str], stored: str, **kw) -> str | None:
    values = [header] if isinstance(header, str) else header
    return choose_transfer_syntax(parse_accept(values), stored, transcodable=ORTHANC_LOSSLESS_TRANSCODABLE, **kw)


def test_stored_syntax_sent_when_acceptable_even_if_not_first():
    assert choose(validator_header(), JPEG_LS_LOSSLESS) == JPEG_LS_LOSSLESS
    assert choose(validator_header(), EXPLICIT_VR_LE) == EXPLICIT_VR_LE


def test_stored_refused_with_q0_picks_best_q_then_preference():
    items = [(JPEG_LS_LOSSLESS, "0"), (EXPLICIT_VR_LE, "0.5"), (JPEG_LOSSLESS_SV1, "0.5")]
    assert choose(validator_header(items), JPEG_LS_LOSSLESS) == JPEG_LOSSLESS_SV1
    items = [(JPEG_LS_LOSSLESS, "0.0"), (EXPLICIT_VR_LE, "0.9"), (JPEG_LOSSLESS_SV1, "0.5")]
    assert choose(validator_header(items), JPEG_LS_LOSSLESS) == EXPLICIT_VR_LE


def test_untranscodable_choices_are_skipped():
    # JPEG 2000 is stored nowhere and Orthanc cannot write it: fall back to the next acceptable one.
    header = validator_header([(JPEG_2000, "1"), (EXPLICIT_VR_LE, "0.2")])
    assert choose(header, JPEG_LS_LOSSLESS) == EXPLICIT_VR_LE
    assert choose(validator_header([(JPEG_2000, "1")]), JPEG_LS_LOSSLESS) is None


def test_wildcards_and_defaults():
    assert choose("*/*", JPEG_LS_LOSSLESS) == JPEG_LS_LOSSLESS
    assert choose("multipart/related; type=application/dicom; transfer-syntax=*", JPEG_LS_LOSSLESS) == JPEG_LS_LOSSLESS
    assert choose([], JPEG_LS_LOSSLESS) == JPEG_LS_LOSSLESS  # no Accept at all
    # PS3.18: application/dicom without transfer-syntax means Explicit VR Little Endian.
    assert choose('multipart/related; type="application/dicom"', JPEG_LS_LOSSLESS) == EXPLICIT_VR_LE
    # An exact q=0 beats the wildcard that would allow it.
    header = f"transfer-syntax={JPEG_LS_LOSSLESS};q=0, transfer-syntax=*;q=0.3"
    assert choose(header, JPEG_LS_LOSSLESS) == JPEG_LOSSLESS_SV1


def test_unusable_accept():
    assert choose("application/dicom+json", JPEG_LS_LOSSLESS) is None
    assert choose("image/png", EXPLICIT_VR_LE) is None
    assert choose("*/*;q=0", EXPLICIT_VR_LE) is None


def test_frames_media_types():
    assert choose('multipart/related; type="application/octet-stream"; transfer-syntax=*', JPEG_LS_LOSSLESS,
                  frames=True) == JPEG_LS_LOSSLESS
    assert choose('multipart/related; type="image/jls"', JPEG_LS_LOSSLESS, frames=True) == JPEG_LS_LOSSLESS
    assert choose('multipart/related; type="image/jpeg"', JPEG_LS_LOSSLESS, frames=True) == JPEG_LOSSLESS_SV1
    assert choose('multipart/related; type="application/octet-stream"', JPEG_LS_LOSSLESS, frames=True) == EXPLICIT_VR_LE
    assert choose('multipart/related; type="application/dicom"; transfer-syntax=*', EXPLICIT_VR_LE, frames=True) is None


def test_orthanc_accept_header():
    assert orthanc_accept_header(JPEG_LS_LOSSLESS, JPEG_LS_LOSSLESS) == (
        'multipart/related; type="application/dicom"; transfer-syntax=*'
    )
    assert orthanc_accept_header(JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS) == (
        f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_LOSSLESS_SV1}'
    )
    assert orthanc_accept_header(JPEG_LS_LOSSLESS, JPEG_LS_LOSSLESS, frames=True) == (
        'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    )
    assert orthanc_accept_header(JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS, frames=True) == (
        f'multipart/related; type="image/jpeg"; transfer-syntax={JPEG_LOSSLESS_SV1}'
    )
    assert orthanc_accept_header(EXPLICIT_VR_LE, JPEG_LS_LOSSLESS, frames=True) == (
        f'multipart/related; type="application/octet-stream"; transfer-syntax={EXPLICIT_VR_LE}'
    )
