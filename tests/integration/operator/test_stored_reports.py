"""Reports and HL7 messages received from outside are downloads on the admin entry, never pages that run script."""

from __future__ import annotations

import base64
import re
import shutil
import time

import pytest
from support.chromium import Chromium

from drimbox.reports.mllp import send_message
from drimbox.samples.reports import make_cda, make_oru, new_uid
from drimbox.testing import demo_order
from operator_helpers import Watcher

pytestmark = pytest.mark.integration

DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff"}
SANDBOX = "sandbox; default-src 'none'"


def policies(answer) -> list[str]:
    """Every Content-Security-Policy the browser gets (the entry's and the box's own; it enforces them all)."""
    return [policy.strip() for policy in answer.headers.get("Content-Security-Policy", "").split(",")]


def hostile_cda(watcher_url: str, report_id: str, study_uid: str) -> bytes:
    """A valid CR-IMG carrying an XHTML script that calls the watcher and marks the page when it runs."""
    script = (f'<html:script xmlns:html="http://www.w3.org/1999/xhtml">document.title = "pwned";'
              f'document.cookie = "xss=1; path=/"; new Image().src = "{watcher_url}/xss-img";'
              f'fetch("{watcher_url}/xss-fetch", {{mode: "no-cors"}});</html:script>')
    cda = make_cda(report_id=report_id, studies=[demo_order(study_uid)])
    return cda.replace(b"</ClinicalDocument>", script.encode() + b"</ClinicalDocument>")


def test_stored_reports_and_messages_are_sandboxed_downloads(box):
    watcher = Watcher()
    try:
        report_id = new_uid()
        cda = hostile_cda(watcher.url, report_id, new_uid())
        ack = send_message("127.0.0.1", box.ports.hl7, make_oru(cda))
        assert b"|AA|" in ack or b"MSA|AA" in ack
        api = box.operator_session()

        answer = api.get(f"{box.admin_url}/drimbox/reports/{report_id}?format=cda", timeout=30)
        assert answer.status_code == 200 and answer.content == cda
        assert answer.headers["Content-Disposition"].startswith("attachment;")
        for name, value in DOWNLOAD_HEADERS.items():
            assert answer.headers[name] == value
        assert SANDBOX in policies(answer)

        pdf = api.get(f"{box.admin_url}/drimbox/reports/{report_id}?format=pdf", timeout=30)
        assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-") and pdf.headers["Content-Disposition"].startswith("attachment;")
        assert all(pdf.headers[name] == value for name, value in DOWNLOAD_HEADERS.items())
        assert SANDBOX in policies(pdf)

        messages = api.get(f"{box.admin_url}/drimbox/messages?limit=5", timeout=30).json()
        message_id = next(m["id"] for m in messages if m["report_id"] == report_id)
        raw = api.get(f"{box.admin_url}/drimbox/messages/{message_id}?format=raw", timeout=30)
        assert raw.status_code == 200 and raw.headers["Content-Disposition"].startswith("attachment;")
        assert all(raw.headers[name] == value for name, value in DOWNLOAD_HEADERS.items())
        assert SANDBOX in policies(raw)
        assert not watcher.hits  # nothing so far ran the script
    finally:
        watcher.close()


def test_a_pdf_body_that_is_not_a_pdf_is_not_served(box):
    report_id = new_uid()
    cda = make_cda(report_id=report_id, studies=[demo_order(new_uid())])
    page = base64.b64encode(b"<html><script>alert(1)</script></html>")
    cda = re.sub(rb'(representation="B64">)[^<]+', rb"\1" + page, cda)
    posted = box.operator_session().post(box.admin_url + "/drimbox/reports", data=cda,
                                         headers={"Content-Type": "application/xml"}, timeout=30)
    assert posted.status_code < 300, posted.text
    answer = box.operator_session().get(f"{box.admin_url}/drimbox/reports/{report_id}?format=pdf", timeout=30)
    assert answer.status_code == 404 and b"<script>" not in answer.content


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
@pytest.mark.timeout(180)
def test_the_operators_browser_never_runs_a_reports_script(box, tmp_path):
    watcher = Watcher()
    browser = Chromium(tmp_path / "chromium")
    try:
        report_id = new_uid()
        cda = hostile_cda(watcher.url, report_id, new_uid())
        assert b"AA" in send_message("127.0.0.1", box.ports.hl7, make_oru(cda))
        browser.call("Browser.setDownloadBehavior", {"behavior": "deny"})

        # the operator opens the report's link: the login page first, then the report
        report_url = f"{box.admin_url}/drimbox/reports/{report_id}?format=cda"
        browser.navigate(report_url)
        browser.wait("document.querySelector('#user') !== null", what="the login page")
        browser.evaluate(f"document.querySelector('#user').value = 'operator';"
                         f"document.querySelector('#password').value = {box.operator_password!r};"
                         "document.querySelector('button[type=submit]').click()")
        time.sleep(3)
        browser.navigate(report_url)  # once more, logged in
        time.sleep(3)
        assert watcher.script_hits() == []
        assert browser.evaluate("document.title") != "pwned"
        cookies = browser.call("Storage.getCookies")["cookies"]
        assert not [c for c in cookies if c["name"] == "xss"]
        assert any(c["name"] == "__Host-drimbox-operator" for c in cookies)  # the login did happen

        # Orthanc Explorer loads in the logged-in browser
        browser.navigate(box.admin_url + "/app/explorer.html")
        browser.wait("document.querySelector('#lookup') !== null", what="Orthanc Explorer")

        # control: the same document served as plain XML elsewhere does run its script in this browser
        watcher.document = cda
        browser.navigate(watcher.url + "/control.xml")
        deadline = time.monotonic() + 20
        while not watcher.script_hits() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert watcher.script_hits(), "the hostile CDA's script did not run even when served as plain XML"
    finally:
        browser.close()
        watcher.close()
