from __future__ import annotations

import os

import pytest

from drimbox.dmp import mtom

ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"


def test_round_trip_is_byte_exact():
    binary = bytes(range(256)) * 40 + b"\r\n--\r\n\n\r" + os.urandom(5000)
    soap = '<?xml version="1.0" encoding="UTF-8"?><e>é</e>'.encode()
    parts = [mtom.Attachment("a1@x", binary, "application/dicom"), mtom.Attachment("a2@x", b"", "text/xml")]
    message = mtom.build(soap, ACTION, parts, boundary="MIMEBoundary_test", root_id="root@x")
    parsed = mtom.parse(message.content_type, message.body)
    assert parsed.root == soap
    assert parsed.attachments["a1@x"].data == binary
    assert parsed.attachments["a2@x"].data == b""
    assert parsed.attachments["a1@x"].content_type == "application/dicom"
    assert parsed.by_href(mtom.cid_href("a1@x")) == binary


def test_layout_uses_crlf_and_exact_lengths():
    message = mtom.build(b"<e/>", ACTION, [mtom.Attachment("a@x", b"12345")], boundary="B", root_id="r@x")
    expected = (
        b"--B\r\n"
        b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"; '
        b'action="urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"\r\n'
        b"Content-Transfer-Encoding: binary\r\nContent-ID: <r@x>\r\n\r\n<e/>\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
        b"Content-ID: <a@x>\r\n\r\n12345\r\n--B--\r\n"
    )
    assert message.body == expected
    media, params = mtom.content_type_params(message.content_type)
    assert media == "multipart/related"
    assert params == {"boundary": "B", "type": "application/xop+xml", "start": "<r@x>",
                      "start-info": "application/soap+xml", "action": ACTION}


def test_parse_tolerates_lf_headers_unquoted_params_and_start_not_first():
    body = (b"preamble\r\n--b1\nContent-ID: <att>\nContent-Type: application/octet-stream\n\nDATA\r\n"
            b"--b1\r\nContent-ID: <main>\r\nContent-Type: application/xop+xml\r\n\r\n<root/>\r\n--b1--")
    parsed = mtom.parse("Multipart/Related; boundary=b1; start=<main>; type=application/xop+xml", body)
    assert parsed.root == b"<root/>"
    assert parsed.attachments["att"].data == b"DATA"


def test_parse_base64_part():
    body = (b"--b\r\nContent-ID: <r>\r\n\r\n<r/>\r\n"
            b"--b\r\nContent-ID: <a>\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8=\r\n--b--\r\n")
    assert mtom.parse('multipart/related; boundary="b"', body).attachments["a"].data == b"Hello"


@pytest.mark.parametrize("content_type, body", [
    ("text/xml", b"<a/>"),
    ("multipart/related", b"--x\r\n\r\n"),
    ('multipart/related; boundary="x"', b"no boundary here"),
    ('multipart/related; boundary="x"', b"--x\r\nContent-ID: <a>\r\n\r\nunterminated"),
])
def test_parse_errors(content_type, body):
    with pytest.raises(ValueError):
        mtom.parse(content_type, body)


def test_unknown_cid():
    parsed = mtom.MtomParts(root=b"<a/>")
    with pytest.raises(ValueError, match="no part"):
        parsed.by_href("cid:missing@x")
