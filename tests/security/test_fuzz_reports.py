"""Fuzzing the report intake: HL7 v2 (ER7), MLLP framing, and the CDA parser (XXE, entity expansion, size,
depth). Each property: only the documented outcome (a ReportMessage with ``errors``, ReportError, MLLP events),
no hang, bounded time and memory."""

from __future__ import annotations

import base64

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sec_limits import FUZZ, FUZZ_SMALL, billion_laughs, measured, mutate, time_limit

from drimbox.reports.cda import parse_cda
from drimbox.reports.errors import ReportError
from drimbox.reports.hl7 import parse_message
from drimbox.reports.mllp import END_BLOCK, START_BLOCK, FrameReader, frame
from drimbox.reports.model import Report, ReportMessage
from drimbox.reports.v2 import parse_er7
from drimbox.samples.reports import make_cda, make_mdm, make_oru

CDA = make_cda()
ORU = make_oru(CDA)
MDM = make_mdm(CDA)
HL7_PIECES = [b"MSH|^~\\&|", b"\r", b"|", b"^", b"~", b"\\", b"&", b"PID|", b"OBX|", b"ORC|", b"TXA|",
              b"\\X0D\\", b"\\E\\", b"^TEXT^XML^Base64^", b"18748-4", b"\x0b", b"\x1c", b"\xff\xfe", b"\xc3\xa9"]
edits = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 64),
                           st.one_of(st.binary(max_size=40), st.sampled_from(HL7_PIECES))), min_size=1, max_size=8)


def check_message(raw: bytes) -> ReportMessage:
    outcome, elapsed, peak = measured(lambda: parse_message(raw))
    assert isinstance(outcome, ReportMessage), f"parse_message raised {outcome!r}"
    assert not any(e.startswith("internal error") for e in outcome.errors), outcome.errors
    assert elapsed < 2.0
    assert peak < 50 * len(raw) + (8 << 20)
    return outcome


@FUZZ
@given(st.binary(max_size=4000))
def test_hl7_random_bytes(raw):
    check_message(raw)


@FUZZ
@given(st.sampled_from([ORU, MDM]), edits)
def test_hl7_mutated_messages(message, changes):
    check_message(mutate(message, changes))


@FUZZ
@given(st.text(max_size=2000))
@example("A\u00df0")  # "ß".upper() is "SS": a segment name of 4 characters
def test_er7_random_text(text):
    with time_limit(2):
        parsed = parse_er7(text)
    assert all(len(segment.name) == 3 for segment in parsed.segments)


@settings(FUZZ_SMALL, deadline=None)
@given(st.sampled_from(["MSH|^~\\&", "MSH|^~\\&|"]), st.integers(1, 200_000),
       st.sampled_from(["|", "^", "~", "\\", "\r"]))
def test_hl7_many_fields_or_segments(head, count, piece):
    check_message((head + piece * count).encode())


@FUZZ_SMALL
@given(st.sampled_from(["!!!", "AAAA" * 1000, "=" * 5000, "\u00e9\u00e9"]))
def test_hl7_broken_base64_cda(payload):
    broken = ORU.replace(base64.b64encode(CDA), payload.encode())
    assert broken != ORU
    assert check_message(broken).errors


# --- MLLP ----------------------------------------------------------------------------------------------


@FUZZ
@given(st.lists(st.binary(min_size=1, max_size=300).filter(lambda m: START_BLOCK not in m and END_BLOCK not in m),
                max_size=6),
       st.lists(st.integers(1, 400), min_size=1, max_size=20))
def test_mllp_frames_split_anywhere_come_out_whole(messages, cuts):
    stream = b"".join(frame(m) for m in messages)
    reader, events, position = FrameReader(max_message_bytes=10_000), [], 0
    for size in cuts * (len(stream) // max(sum(cuts), 1) + 1):
        if position >= len(stream):
            break
        events += reader.feed(stream[position:position + size])
        position += size
    events += reader.feed(stream[position:])
    assert events == [("message", m) for m in messages]
    assert not reader.pending


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=500), st.sampled_from([START_BLOCK, END_BLOCK, b"\r", b"\x1c\r"])),
                max_size=40))
def test_mllp_random_stream(chunks):
    reader = FrameReader(max_message_bytes=1000)
    with time_limit(2):
        for chunk in chunks:
            for kind, payload in reader.feed(chunk):
                assert kind in ("message", "garbage", "oversize")
                if kind == "message":
                    assert START_BLOCK not in payload and END_BLOCK not in payload and len(payload) <= 1000
                else:
                    assert len(payload) <= 2048
            assert len(reader._buffer) <= 1000 + len(chunk) + 1


@FUZZ_SMALL
@given(st.integers(1001, 200_000), st.integers(1, 65536))
def test_mllp_oversize_frame_never_buffered_whole(size, chunk):
    reader, events = FrameReader(max_message_bytes=1000), []
    data = START_BLOCK + b"A" * size + END_BLOCK + b"\r" + frame(b"MSH|next")
    for at in range(0, len(data), chunk):
        events += reader.feed(data[at:at + chunk])
        assert len(reader._buffer) <= 1000 + chunk + 1
    assert [kind for kind, _ in events] == ["oversize", "message"]
    assert events[-1] == ("message", b"MSH|next")


# --- CDA -----------------------------------------------------------------------------------------------

CDA_PIECES = [b"<", b">", b"</", b"/>", b'"', b"&amp;", b"&#0;", b"&#x110000;", b"<!--", b"]]>", b"<![CDATA[",
              b'<?xml version="1.0" encoding="ISO-8859-1"?>', b"\xc3\x83\xc2\xa9", b"\xff",
              b"root=\"1.2.250.1.213.1.4.10\"", b"<id root=\"", b"xmlns:x=\"urn:x\"", b"\x00"]
cda_edits = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 200),
                               st.one_of(st.binary(max_size=30), st.sampled_from(CDA_PIECES))), min_size=1, max_size=6)


def check_cda(xml: bytes, *, seconds: float = 2.0) -> Report | ReportError:
    outcome, elapsed, peak = measured(lambda: parse_cda(xml), seconds=seconds)
    assert isinstance(outcome, (Report, ReportError)), f"parse_cda raised {outcome!r}"
    assert elapsed < seconds
    assert peak < 20 * len(xml) + (16 << 20)
    return outcome


@FUZZ
@given(cda_edits)
def test_cda_mutations(changes):
    check_cda(mutate(CDA, changes))


@FUZZ
@given(st.binary(max_size=3000))
def test_cda_random_bytes(raw):
    check_cda(raw)


def test_cda_external_entity_is_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    text = CDA.decode()
    head, _, rest = text.partition("<ClinicalDocument")
    doctype = f'<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    title = rest.replace("CR d'imagerie médicale - Scanner", "&xxe;", 1)
    outcome = check_cda((head + doctype + "<ClinicalDocument" + title).encode())
    assert "TOP-SECRET-MARKER" not in repr(outcome)


def test_cda_entity_expansion_is_refused_at_once():
    outcome = check_cda(billion_laughs(b"ClinicalDocument"), seconds=1.0)
    assert isinstance(outcome, ReportError)


@pytest.mark.parametrize("depth", [300, 5000, 100_000])
def test_cda_deep_nesting(depth):
    nested = b"<title>" * depth + b"x" + b"</title>" * depth
    check_cda(CDA.replace(b"<title>", nested + b"<title>", 1), seconds=5.0)


def test_cda_huge_document_bounded():
    padding = b"<!-- " + b"x" * (40 << 20) + b" -->"  # comments are dropped by the parser
    outcome = check_cda(CDA.replace(b"<title>", padding + b"<title>", 1), seconds=10.0)
    assert isinstance(outcome, Report)


@settings(FUZZ_SMALL, deadline=None)  # the size drives the time: measured() bounds it
@given(st.integers(1, 50_000))
def test_cda_many_ids(count):
    ids = b'<id root="1.2.3"/>' * count
    check_cda(CDA.replace(b"<title>", ids + b"<title>", 1), seconds=5.0)
