"""Pure parsing pieces of the DMP simulator: stored-query values, MTOM splitting, DN comparison."""

from __future__ import annotations

import pytest

from drimbox.sim.dmp.errors import SoapFaultError, XdsRefusal
from drimbox.sim.dmp.mtom import build_mtom, parse_soap_request
from drimbox.sim.dmp.queries import parse_value
from drimbox.sim.dmp.vihf import _dn_set, normalize_structure_id


@pytest.mark.parametrize("raw,expected", [
    ("('a','b')", ["a", "b"]),
    ("'x^^^&1.2&ISO^NH'", ["x^^^&1.2&ISO^NH"]),
    ("( 'it''s' , 'b')", ["it's", "b"]),
    ("20240101", ["20240101"]),
])
def test_parse_value(raw, expected):
    assert parse_value(raw, "$p") == expected


def test_parse_value_unterminated():
    with pytest.raises(XdsRefusal) as caught:
        parse_value("('a", "$p")
    assert caught.value.errors[0].code == "XDSRegistryError"


def test_mtom_round_trip_keeps_bytes_exact():
    payload = b"\r\n--not-a-boundary\r\n\x00\xff" * 3
    ctype, body = build_mtom(b"<e/>", [("doc1@x", "application/dicom", payload)], "urn:a")
    message = parse_soap_request(ctype, body)
    assert message.is_mtom and message.envelope == b"<e/>"
    assert message.attachments == {"doc1@x": payload}


def test_mtom_requires_crlf_and_xop_type():
    with pytest.raises(SoapFaultError, match="xop"):
        parse_soap_request("multipart/related; boundary=b", b"--b\r\n\r\nx\r\n--b--")
    with pytest.raises(SoapFaultError, match="CRLF"):
        parse_soap_request('multipart/related; type="application/xop+xml"; boundary=b', b"--b\nX: y\n\nx\n--b--")


def test_dn_comparison_ignores_order_spacing_and_st_alias():
    assert _dn_set("CN=DRIMbox, OU=4997, O=CAB, ST=Paris, C=FR") == _dn_set("C=FR,S=Paris,O=CAB,OU=4997,CN=DRIMbox")
    assert _dn_set("CN=a\\,b,C=FR") != _dn_set("CN=a,C=FR")


def test_structure_id_normalization():
    assert normalize_structure_id("1.2.250.1.71.4.2.2.10B0156832") == "10B0156832"
    assert normalize_structure_id(" 499700367909006 ") == "499700367909006"
