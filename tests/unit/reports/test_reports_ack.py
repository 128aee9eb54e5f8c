import pytest

from drimbox.reports.ack import build_ack, read_ack
from drimbox.reports.v2 import parse_er7
from drimbox.samples.reports import make_mdm, make_oru


def segments(ack: bytes):
    message = parse_er7(ack.decode("utf-8"))
    return {seg.name: seg for seg in message.segments}, message


def test_aa_swaps_sender_and_receiver_and_echoes_control_id():
    inbound = make_oru(control_id="MSG123")
    ack = build_ack(inbound, "AA")
    assert ack.endswith(b"\r") and b"\n" not in ack
    segs, message = segments(ack)
    assert [s.name for s in message.segments] == ["MSH", "MSA"]
    msh = segs["MSH"]
    assert (msh.field(3), msh.field(4), msh.field(5), msh.field(6)) == (
        "DRIMBOX", "DRIMBOX", "RIS_DEMO", "CABINET_DEMO")
    assert msh.component(9, 1) == "ACK" and msh.component(9, 2) == "R01"
    assert msh.field(10) and msh.field(10) != "MSG123"
    assert msh.field(12) == "2.5"
    assert (segs["MSA"].field(1), segs["MSA"].field(2)) == ("AA", "MSG123")


def test_error_ack_has_err_segment():
    inbound = make_mdm(control_id="M7")
    ack = build_ack(inbound, "AE", "INS mismatch: a|b^c", error_code="204", severity="E")
    segs, _ = segments(ack)
    assert segs["MSH"].field(12) == "2.6" and segs["MSH"].component(9, 2) == "T02"
    assert segs["MSA"].field(1) == "AE" and segs["MSA"].field(2) == "M7"
    err = segs["ERR"]
    assert err.component(3, 1) == "204" and err.component(3, 3) == "HL70357"
    assert err.field(4) == "E"
    assert err.component(8, 1) == "INS mismatch: a|b^c"
    assert read_ack(ack) == ("AE", "M7", "INS mismatch: a|b^c")


def test_default_error_code_and_warning_severity():
    segs, _ = segments(build_ack(make_oru(), "AR", "rejected", severity="W"))
    assert segs["ERR"].component(3, 1) == "207" and segs["ERR"].field(4) == "W"


@pytest.mark.parametrize("garbage", [b"", b"not hl7 at all", b"\x00\xff\x0b\x1c", b"MSH|"])
def test_ack_for_garbage(garbage):
    ack = build_ack(garbage, "AR", "not an HL7 v2 message")
    segs, _ = segments(ack)
    assert segs["MSH"].field(3) == "DRIMBOX"
    assert segs["MSA"].field(1) == "AR" and segs["MSA"].field(2) == ""
    assert segs["ERR"].field(4) == "E"


def test_inbound_with_other_delimiters():
    inbound = b"MSH#$%*!#RIS#FAC#BOX#BOXFAC#20240101##ORU$R01#C9#P#2.5\rPID###1"
    segs, _ = segments(build_ack(inbound, "AA"))
    assert segs["MSH"].field(5) == "RIS" and segs["MSA"].field(2) == "C9"


def test_bad_codes_are_refused():
    with pytest.raises(ValueError):
        build_ack(b"", "OK")
    with pytest.raises(ValueError):
        build_ack(b"", "AE", severity="X")


def test_ack_for_parsed_messages():
    from drimbox.reports.ack import ack_for
    from drimbox.reports.hl7 import parse_message

    good = make_oru(control_id="G1")
    assert read_ack(ack_for(good, parse_message(good)))[:2] == ("AA", "G1")
    unvalidated = make_oru(control_id="W1", ins_validated=False)
    segs, _ = segments(ack_for(unvalidated, parse_message(unvalidated)))
    assert segs["MSA"].field(1) == "AA" and segs["ERR"].field(4) == "W" and "VALI" in segs["ERR"].component(8)
    mismatch = make_oru(control_id="E1", sending_structure="1999999999")
    segs, _ = segments(ack_for(mismatch, parse_message(mismatch)))
    assert segs["MSA"].field(1) == "AE" and "PRT-8" in segs["ERR"].component(8)
    other = make_oru(control_id="T1").replace(b"ORU^R01^ORU_R01", b"ADT^A08^ADT_A01")
    segs, _ = segments(ack_for(other, parse_message(other)))
    assert (segs["MSA"].field(1), segs["ERR"].component(3, 1)) == ("AR", "200")
    segs, _ = segments(ack_for(b"junk", parse_message(b"junk")))
    assert (segs["MSA"].field(1), segs["ERR"].component(3, 1)) == ("AR", "100")
