"""Issue 9, must hold: an operator in a real browser fixes a failed DMP publication from Orthanc Explorer."""

from __future__ import annotations

import json
import shutil

import pytest
from support.chromium import Chromium

from drimbox.samples.reports import make_cda, make_oru
from drimbox.sim.dmp.server import DmpSimulator
from drimbox.testing import BoxClient, demo_order, demo_study, start_box, store_scu, wait_for
from operator_helpers import Watcher

pytestmark = [pytest.mark.integration, pytest.mark.browser,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")]

APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"


@pytest.fixture
def sim(tmp_path, pki):
    server = pki["servers"]["dmp-sim"]
    simulator = DmpSimulator(str(tmp_path / "dmp-sim"), tls_cert=server["fullchain"], tls_key=server["key"],
                             client_ca=pki["ca_bundle"], signing_ca=pki["ca_bundle"])
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def publishing_box(tmp_path, pki, sim):
    # a failed attempt waits ten minutes before the next one: only the operator's "retry now" can make it pass
    instance = start_box(tmp_path / "box", pki=pki, dmp_url=sim.url,
                         settings={"Dmp": {"RetryInitialSeconds": 600, "RetryMaxSeconds": 600, "TimeoutSeconds": 3}})
    yield instance
    instance.stop()


def login(browser: Chromium, box) -> None:
    browser.navigate(box.admin_url + "/app/explorer.html")
    browser.wait("document.querySelector('#user') !== null", what="the login page")
    browser.evaluate(f"document.querySelector('#user').value = 'operator';"
                     f"document.querySelector('#password').value = {box.operator_password!r};"
                     "document.querySelector('button[type=submit]').click()")
    browser.wait("document.querySelector('#lookup') !== null", what="Orthanc Explorer after the login")


@pytest.mark.timeout(240)
def test_retry_now_from_orthanc_explorer_gets_a_failed_publication_approved(publishing_box, sim, tmp_path):
    box = publishing_box
    operator = BoxClient(box)
    study = demo_study(tmp_path / "study", series=(("CT", 2),))
    sim.faults.configure("http500")  # the DMP fails every request
    store_scu(box, tmp_path / "study")
    report = make_oru(make_cda(studies=[demo_order(study.study_uid)]))
    assert operator.post("/drimbox/reports", data=report,
                         headers={"Content-Type": "application/hl7-v2"}).json()["ack"] == "AA"

    def failed_job():
        jobs = operator.get(f"/drimbox/publications?study={study.study_uid}").json()
        return next((j for j in jobs if j["action"] == "register" and j["attempts"] >= 1 and j["last_error"]), None)

    job = wait_for(failed_job, timeout=60, what="a failed publication attempt")
    assert job["state"] == "queued" and "HTTP 500" in job["last_error"]
    orthanc_id = operator.study(study.study_uid)["orthanc_id"]
    sim.faults.configure("none")  # healed; the box would only try again in ten minutes

    browser = Chromium(tmp_path / "chromium")
    watcher = Watcher()
    try:
        login(browser, box)
        # another site's page in the same logged-in browser tries to cancel the publication: refused
        cancel = f"{box.admin_url}/drimbox/ui/studies/{study.study_uid}/actions/cancel"
        body = json.dumps({"publication": job["id"]})
        watcher.page = (
            f'<form id="f" method="post" enctype="text/plain" action="{cancel}">'
            f"<input type=\"hidden\" name='{body[:-1]}, \"x\": \"' value='\"}}'></form>"
            f"<script>fetch({json.dumps(cancel)}, {{method: 'POST', mode: 'no-cors', credentials: 'include',"
            f" body: {json.dumps(body)}}}).finally(() => document.getElementById('f').submit());</script>").encode()
        browser.navigate(watcher.url + "/attack.html")
        attacker = watcher.url.split("//")[1]
        refusals = wait_for(lambda: (lambda rows: rows if len(rows) >= 2 else None)(
            operator.get(f"/drimbox/audit?entry=operator&q={attacker}").json()), timeout=20,
            what="the cross-site requests refused")
        assert all(e["action"] == "operator-request-refused" and e["outcome_status"] == 403 for e in refusals)
        assert "/attack.html" in watcher.hits
        assert operator.get(f"/drimbox/publications/{job['id']}").json()["state"] == "queued"

        browser.navigate(f"{box.admin_url}/app/explorer.html#study?uuid={orthanc_id}")
        browser.wait("document.querySelector('#drimbox-panel .drimbox-state') !== null", what="the DRIMbox panel")
        row = f"#drimbox-panel tr[data-publication='{job['id']}']"
        text = browser.evaluate(f"document.querySelector({row!r}).textContent")
        # headless chromium asks for English: the panel follows the browser's language
        assert "Failing, next attempt in" in text and "The DMP is failing" in text  # in plain words
        assert "queued" not in browser.evaluate("document.querySelector('#drimbox-panel').textContent")

        browser.evaluate(f"document.querySelector({row!r} + ' button[data-drimbox-action=retry]').click()")
        confirm = browser.wait("(document.querySelector('#drimbox-panel .drimbox-confirm') || {}).textContent",
                               what="the confirmation")
        assert f"Retry publication #{job['id']} now?" in confirm
        assert operator.get(f"/drimbox/publications/{job['id']}").json()["attempts"] == 1  # nothing before confirming
        browser.evaluate("document.querySelector('#drimbox-panel .drimbox-yes').click()")

        dmp = browser.wait("(t => t && t.includes('Approved') && t)"
                           "((document.querySelector('#drimbox-panel .drimbox-dmp') || {}).textContent)",
                           timeout=30, what="the panel showing the manifest Approved")
        assert "Published" in dmp
        entry = browser.evaluate("document.querySelector('#drimbox-panel .drimbox-entry').textContent")
        history = browser.evaluate("[...document.querySelectorAll('#drimbox-panel .drimbox-history tr')]"
                                   ".slice(1).map(r => r.textContent)")
        assert len(history) == 2  # newest first: the retried attempt passed, the first one had failed
        assert "Succeeded" in history[0] and "Failed, will be tried again" in history[1]
        assert "The DMP is failing" in history[1] and "HTTP 500" in history[1]

        # the viewer link of the report, then a patient link (confirmed first)
        browser.evaluate("document.querySelector('#drimbox-panel [data-drimbox-action=\"viewer-link\"]').click()")
        link = browser.wait("document.querySelector('#drimbox-link').value", what="the viewer link")
        assert link.startswith(box.vi_url) and study.study_uid in link and "token=" not in link
        browser.evaluate("document.querySelector('#drimbox-panel [data-drimbox-action=\"patient-link\"]').click()")
        browser.wait("document.querySelector('#drimbox-panel .drimbox-confirm')", what="the confirmation")
        browser.evaluate("document.querySelector('#drimbox-panel .drimbox-yes').click()")
        patient = browser.wait("(v => v.includes('token=') && v)(document.querySelector('#drimbox-link').value)",
                               what="the patient link")
        assert study.study_uid in patient
    finally:
        browser.close()
        watcher.close()

    documents = [d for d in (x.summary() for x in sim.store.all_documents())
                 if d["kind"] == "KOS" and any(study.study_uid in r for r in d["referenceIds"])]
    assert [(d["status"], d["entryUUID"]) for d in documents] == [(APPROVED, entry)]
    done = operator.get(f"/drimbox/publications/{job['id']}").json()
    assert done["state"] == "done" and done["attempts"] == 2
    audit = [e for e in operator.get(f"/drimbox/audit?study={study.study_uid}").json()
             if e["action"] == "operator-retry"]
    assert len(audit) == 1 and audit[0]["operator"] == "operator" and audit[0]["outcome_status"] == 202
    issued = [e for e in operator.get(f"/drimbox/audit?study={study.study_uid}").json()
              if e["action"] == "issue-patient-link"]
    assert len(issued) == 1 and issued[0]["operator"] == "operator"
