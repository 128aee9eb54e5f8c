"""The operator's pages and the Orthanc Explorer extension, on a real box through nginx."""

from __future__ import annotations

import pytest
import requests

from drimbox.samples.reports import make_cda, make_oru
from drimbox.testing import demo_order, demo_study, store_scu

pytestmark = pytest.mark.integration


def test_dashboard_shows_studies_refused_messages_and_explorer_button(box, operator, tmp_path):
    study = demo_study(tmp_path / "study")
    store_scu(box, tmp_path / "study")
    report = make_oru(make_cda(studies=[demo_order(study.study_uid)]))
    hl7 = {"Content-Type": "application/hl7-v2"}
    assert operator.post("/drimbox/reports", data=report, headers=hl7).json()["ack"] == "AA"
    refused = operator.post("/drimbox/reports", data=b"MSH|^~\\&|garbage", headers=hl7)
    assert refused.status_code == 400
    operator.wait_study(study.study_uid, lambda s: s["kos"], what="a manifest")

    home = operator.get("/drimbox/ui")
    assert home.status_code == 200 and home.headers["Content-Type"].startswith("text/html")
    assert study.study_uid in home.text
    assert "non configurée" in home.text  # this box has no whitelist: the operator is told no peer is trusted
    assert f'/drimbox/messages/{refused.json()["message_id"]}' in home.text  # the refused message is listed

    page = operator.get(f"/drimbox/ui/studies/{study.study_uid}")
    kos_uid = operator.study(study.study_uid)["kos"]["kos_uid"]
    assert kos_uid in page.text and "manifest_ready" in page.text
    assert f'/drimbox/studies/{study.study_uid}/kos' in page.text
    assert "?format=cda" in page.text and "?format=pdf" in page.text  # the report's files, as downloads
    assert 'action="/drimbox/operator/logout"' in page.text

    extension = operator.get("/plugins/explorer.js")
    assert "../drimbox/ui" in extension.text  # the button Orthanc Explorer shows

    anonymous = requests.get(box.admin_url + "/drimbox/ui", verify=box.ca_bundle, timeout=10)
    assert anonymous.status_code == 401
