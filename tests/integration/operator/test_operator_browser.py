"""A real browser logged in on the admin entry: its own pages can write, another site's pages cannot."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from support.chromium import Chromium

from drimbox.testing import demo_study
from operator_helpers import Watcher

pytestmark = [pytest.mark.integration, pytest.mark.browser,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")]

# An anonymization request as a cross-site HTML form can send it (enctype text/plain: name=value is the body).
FORM_NAME = '{"Keep":[],"x":"'
FORM_VALUE = '"}'


@pytest.mark.timeout(180)
def test_a_logged_in_browser_writes_from_the_entry_but_not_from_another_site(box, tmp_path):
    demo_study(tmp_path / "study", series=(("CT", 1),))
    api = box.operator_session()
    for path in Path(tmp_path / "study").rglob("*.dcm"):
        assert api.post(box.admin_url + "/instances", data=path.read_bytes(), timeout=30).status_code == 200
    study = api.get(box.admin_url + "/studies", timeout=30).json()[0]
    anonymize = f"{box.admin_url}/studies/{study}/anonymize"

    def studies() -> int:
        return len(api.get(box.admin_url + "/studies", timeout=30).json())

    # control: the body the attacking form sends does change the PACS when it gets through
    assert api.post(anonymize, data=(FORM_NAME + "=" + FORM_VALUE + "\r\n").encode(), timeout=60).status_code == 200
    assert studies() == 2

    watcher = Watcher()
    browser = Chromium(tmp_path / "chromium")
    try:
        browser.navigate(box.admin_url + "/")
        browser.wait("document.querySelector('#user') !== null", what="the login page")
        browser.evaluate(f"document.querySelector('#user').value = 'operator';"
                         f"document.querySelector('#password').value = {box.operator_password!r};"
                         "document.querySelector('button[type=submit]').click()")
        browser.wait("document.querySelector('#lookup') !== null", what="Orthanc Explorer after the login")

        # the entry's own page writes (the browser sends its Origin)
        status = browser.evaluate(f"fetch({anonymize!r}, {{method: 'POST', body: '{{}}'}}).then(r => r.status)",
                                  await_promise=True)
        assert status == 200 and studies() == 3

        # another site's page, in the same logged-in browser: an auto-submitted form and a fetch
        watcher.page = (
            f'<form id="f" method="post" enctype="text/plain" action="{anonymize}">'
            f"<input type=\"hidden\" name='{FORM_NAME}' value='{FORM_VALUE}'></form>"
            f"<script>fetch({json.dumps(anonymize)}, {{method: 'POST', mode: 'no-cors', credentials: 'include',"
            " body: '{}'}).finally(() => document.getElementById('f').submit());</script>").encode()
        browser.navigate(watcher.url + "/attack.html")
        time.sleep(4)
        assert "/attack.html" in watcher.hits
        assert studies() == 3
        refused = api.get(box.admin_url + "/drimbox/audit", timeout=30).json()
        assert any(e["action"] == "operator-request-refused" and watcher.url in e["reason"] for e in refused)
    finally:
        browser.close()
        watcher.close()
