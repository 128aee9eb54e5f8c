"""Accept parsing and transfer-syntax choice for peer WADO-RS (docs/conformance.md, "Trusted space, peers and
viewer")."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    usable_for,
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


@pytest.mark.parametrize("written, value", [("0", 0.0), ("0.0", 0.0), ("1", 1.0), ("1.0", 1.0), ("0.75", 0.75),
                                            ("0.", 0.0), ("1.000", 1.0), ("0.001", 0.001), ('"0.5"', 0.5)])
def test_q_forms(written, value):
    [item] = parse_accept([f"multipart/related; type=application/dicom; transfer-syntax={EXPLICIT_VR_LE}; q={written}"])
    assert item.q == value


@pytest.mark.parametrize("written", ["-0", "-0.5", "-1", "nan", "NaN", "inf", "-inf", "Infinity", "1e309", "1e0",
                                     "1.0001", "1.001", "0.0001", "0.1234", "2", "01", ".5", "0.5.", "+1", " ",
                                     "0x1", "1_0", "١"])
def test_q_outside_rfc_9110_makes_the_item_unusable(written):
    header = f"multipart/related; type=application/dicom; transfer-syntax={EXPLICIT_VR_LE}; q={written}"
    assert parse_accept([header]) == []
    # the other items of the header still count
    assert parse_accept([header + ", */*;q=0.5"]) == [AcceptedType("*/*", None, 0.5)]


QVALUE_TEXT = st.one_of(
    st.from_regex(r"\A(0(\.[0-9]{0,3})?|1(\.0{0,3})?)\Z"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.text(alphabet="0123456789.-+eEinfaINFA_ ", max_size=8),
)


@given(QVALUE_TEXT)
def test_q_is_a_qvalue_or_the_item_is_dropped(written):
    header = f"transfer-syntax={EXPLICIT_VR_LE};q={written}"
    items = parse_accept([header])
    valid = re.fullmatch(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?", written.strip()) is not None
    if valid:
        [item] = items
        assert 0.0 <= item.q <= 1.0 and item.q == float(written)
    else:
        assert items == []


@given(st.lists(QVALUE_TEXT, min_size=1, max_size=6))
def test_choice_never_uses_an_item_with_a_bad_q(written_qs):
    syntaxes = [JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS, EXPLICIT_VR_LE] * 2
    items = list(zip(syntaxes[:len(written_qs)], written_qs, strict=True))
    accepted = parse_accept([validator_header(items)])
    assert all(0.0 <= item.q <= 1.0 for item in accepted)
    chosen = choose_transfer_syntax(accepted, JPEG_LS_LOSSLESS, transcodable=ORTHANC_LOSSLESS_TRANSCODABLE)
    if chosen is not None and accepted:
        assert any(item.transfer_syntax == chosen and item.q > 0 for item in accepted)


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
    accepted = parse_accept(
        [f", ;, garbage, transfer-syntax={EXPLICIT_VR_LE};q=2, transfer-syntax={JPEG_2000};q=x,*/*"])
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



def test_frames_asked_with_the_instances_dicom_list_are_uncompressed_octet_stream():
    """The national client simulator asks frames with its application/dicom list (docs/conformance.md)."""
    national = validator_header([(JPEG_LOSSLESS_SV1, "1"), (JPEG_LS_LOSSLESS, "0.8"), (EXPLICIT_VR_LE, "0.2")])
    assert choose(national, JPEG_LS_LOSSLESS, frames=True) == EXPLICIT_VR_LE
    assert choose(national, EXPLICIT_VR_LE, frames=True) == EXPLICIT_VR_LE
    assert usable_for(parse_accept([national]), frames=True)
    for header in ('multipart/related; type="application/dicom"; transfer-syntax=*',
                   'multipart/related; type="application/dicom"'):
        assert choose(header, JPEG_LS_LOSSLESS, frames=True) == EXPLICIT_VR_LE
    # Compressed syntaxes named for application/dicom cannot come as octet-stream from Orthanc: not usable.
    compressed_only = validator_header([(JPEG_LOSSLESS_SV1, "1"), (JPEG_LS_LOSSLESS, "0.8")])
    assert choose(compressed_only, JPEG_LS_LOSSLESS, frames=True) is None
    assert not usable_for(parse_accept([compressed_only]), frames=True)
    assert usable_for(parse_accept([compressed_only]))
    # Explicit VR LE refused with q=0: nothing left.
    assert choose(validator_header([(JPEG_LS_LOSSLESS, "1"), (EXPLICIT_VR_LE, "0")]), EXPLICIT_VR_LE,
                  frames=True) is None


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
