"""Found by the campaign: a viewer session opened from a report's link kept reaching the study for the rest of
its life (30 min) after the report was withdrawn, while peers got 404 at once. The viewer's DICOMweb decision
now asks, on each request, whether the session's manifest still stands."""

from __future__ import annotations

import pytest
import requests
from peer_helpers import start_world

from drimbox.samples.reports import make_oru

pytestmark = pytest.mark.integration

DICOM_JSON = {"Accept": "application/dicom+json"}


@pytest.fixture(scope="module")
def world(tmp_path_factory, pki):
    w = start_world(tmp_path_factory.mktemp("viewer-withdrawal"), pki, series=(("CT", 1),), jpegls=False)
    yield w
    w.stop()


def test_a_withdrawn_report_closes_its_open_viewer_sessions(world):
    study = world.study.study_uid
    issued = world.operator.post(f"/drimbox/studies/{study}/patient-link", json={"subject": "INS-279035121518989"})
    assert issued.status_code == 200, issued.text
    browser = requests.Session()
    browser.trust_env = False
    browser.verify = world.box.ca_bundle
    assert browser.get(issued.json()["url"], timeout=30, allow_redirects=False).status_code == 303
    series = world.box.vi_url + f"/dicom-web/studies/{study}/series"
    assert browser.get(series, headers=DICOM_JSON, timeout=30).status_code == 200

    report_id = world.operator.study(study)["kos"]["report_id"]
    withdrawal = make_oru(None, event="withdraw", report_id=report_id)
    answer = world.operator.post("/drimbox/reports", data=withdrawal, headers={"Content-Type": "application/hl7-v2"})
    assert answer.status_code < 300, answer.text
    world.operator.wait_study(study, lambda s: s["state"] == "withdrawn", what="the report withdrawn")

    refused = browser.get(series, headers=DICOM_JSON, timeout=30)
    assert refused.status_code == 403, refused.text[:300]
    assert "withdrawn" in refused.json()["error"]
    reopened = requests.Session()
    reopened.trust_env = False
    again = reopened.get(issued.json()["url"], verify=world.box.ca_bundle, timeout=30, allow_redirects=False)
    assert again.status_code >= 400 and not reopened.cookies, (again.status_code, again.text[:300])
    peer = world.session().get(world.wado + world.series_path(), headers=world.headers(), timeout=60)
    assert peer.status_code == 404  # what peers already got
