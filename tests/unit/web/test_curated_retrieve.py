"""The curated retrieve's pure pieces (the route itself runs against real Orthanc in tests/integration/peer)."""

from __future__ import annotations

import pytest

from drimbox.web.curated_retrieve import split_multipart


def test_split_multipart_returns_the_part_bodies_in_order():
    body = (b"--abc\r\nContent-Type: application/dicom\r\n\r\nDICM-1\r\n"
            b"--abc\r\nContent-Type: application/dicom\r\n\r\n\r\nDICM\r\n2\r\n--abc--\r\n")
    parts = split_multipart(body, 'multipart/related; type="application/dicom"; boundary=abc')
    assert parts == [b"DICM-1", b"\r\nDICM\r\n2"]
    assert split_multipart(body, "multipart/related; boundary=\"abc\"") == parts


def test_split_multipart_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="boundary"):
        split_multipart(b"--abc\r\n\r\nx\r\n--abc--", "multipart/related")
    with pytest.raises(ValueError, match="header block"):
        split_multipart(b"--abc\r\nno header end--abc--", "multipart/related; boundary=abc")
