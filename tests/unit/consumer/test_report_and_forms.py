"""The exam's report PDF out of a CDA, the KOS upload form, and the source certificate check (pure parts)."""

from __future__ import annotations

import base64
import ssl

import pytest

from drimbox.consumer.history import ExamRow
from drimbox.consumer.report import REPORT_TYPE, newest, pdf_of, reference_ids
from drimbox.consumer.source_tls import UNREACHABLE, WRONG_DN, check_source
from drimbox.dmp.queries import DocumentEntrySummary
from drimbox.reports.model import Code
from drimbox.samples.reports import make_cda
from drimbox.trust.whitelist import Domain
from drimbox.web.multipart_form import parse_form_data
from drimbox.launcher.ports import free_port


def test_the_pdf_of_a_generated_report_is_found():
    pdf = pdf_of(make_cda())
    assert pdf.startswith(b"%PDF") and b"%%EOF" in pdf


@pytest.mark.parametrize("cda", [
    b"<not xml",
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"><component><structuredBody/></component></ClinicalDocument>',
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"><component><nonXMLBody><text mediaType="application/pdf" '
    b'representation="B64">' + base64.b64encode(b"<html>not a pdf</html>") + b"</text></nonXMLBody></component>"
    b"</ClinicalDocument>",
])
def test_a_report_without_a_readable_pdf_is_refused(cda):
    with pytest.raises(ValueError):
        pdf_of(cda)


def test_the_newest_cr_is_chosen_and_kos_entries_are_ignored():
    def entry(uid: str, created: str, code: Code) -> DocumentEntrySummary:
        return DocumentEntrySummary(entry_uuid="urn:uuid:" + uid, unique_id=uid, creation_time=created, type_code=code)

    kos = Code("IMG-KOS", "1.2.250.1.213.1.1.4.12", "KOS")
    entries = [entry("1.1", "20240101101010", REPORT_TYPE), entry("1.2", "20240202101010", REPORT_TYPE),
               entry("1.3", "20250101101010", kos)]
    assert newest(entries).unique_id == "1.2"
    assert newest([entries[2]]) is None
    row = ExamRow("1.9", "", "", "", (), (), "", "", study_uids=("1.2.3", "1.2.4"))
    assert reference_ids(row) == ["1.2.3^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
                                  "1.2.4^^^^urn:ihe:iti:xds:2016:studyInstanceUID"]


def test_the_kos_form_is_read_under_either_media_type():
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"kos\"; filename=\"k.dcm\"\r\n"
            b"Content-Type: application/dicom\r\n\r\n\x00\x01DICM\r\n\xff\r\n--XyZ--\r\n")
    for media_type in ("multipart/form-data", "application/x-drimbox-form-data"):
        fields = parse_form_data(body, f"{media_type}; boundary=XyZ", max_bytes=1000)
        assert fields == {"csrf": b"abc", "kos": b"\x00\x01DICM\r\n\xff"}
    with pytest.raises(ValueError):
        parse_form_data(body, "application/x-www-form-urlencoded", max_bytes=1000)
    with pytest.raises(ValueError):
        parse_form_data(body, "multipart/form-data; boundary=XyZ", max_bytes=10)


def test_a_source_host_without_a_listed_dn_or_not_answering_is_not_used():
    port = free_port()  # nothing listens there
    context = ssl.create_default_context()
    no_dn = [Domain(id="x", db=f"localhost:{port}", vi="", name="x", operator_dn="")]
    assert check_source(f"localhost:{port}", no_dn, context).outcome == WRONG_DN
    listed = [Domain(id="x", db=f"localhost:{port}", vi="", name="x", operator_dn="CN=db,O=X,C=FR")]
    assert check_source(f"localhost:{port}", listed, context, timeout=2).outcome == UNREACHABLE
    assert check_source("other.example:443", listed, context).outcome == WRONG_DN  # not this domain's host
