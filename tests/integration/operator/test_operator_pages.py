"""The operator's pages and the Orthanc Explorer extension, on a real box through nginx."""

from __future__ import annotations

import pytest
import requests

from drimbox.samples.reports import DEMO_PATIENT, make_cda, make_oru
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
    assert kos_uid in page.text and "Manifeste prêt" in page.text and "manifest_ready" not in page.text
    assert f'/drimbox/studies/{study.study_uid}/kos' in page.text
    assert "?format=cda" in page.text and "?format=pdf" in page.text  # the report's files, as downloads
    assert 'action="/drimbox/operator/logout"' in page.text

    extension = operator.get("/plugins/explorer.js")
    assert "../drimbox/ui" in extension.text  # the button Orthanc Explorer shows

    anonymous = requests.get(box.admin_url + "/drimbox/ui", verify=box.ca_bundle, timeout=10)
    assert anonymous.status_code == 401


def test_dashboard_names_studies_as_people_do_searches_them_and_speaks_english(box, operator, tmp_path):
    study = demo_study(tmp_path / "study", accession="ACC4242")
    store_scu(box, tmp_path / "study")
    report = make_oru(make_cda(studies=[demo_order(study.study_uid, accession="ACC4242")]))
    assert operator.post("/drimbox/reports", data=report,
                         headers={"Content-Type": "application/hl7-v2"}).json()["ack"] == "AA"
    operator.wait_study(study.study_uid, lambda s: s["kos"], what="a manifest")

    home = operator.get("/drimbox/ui").text
    row = home[home.index(f'<tr data-study="{study.study_uid}">'):]
    row = row[:row.index("</tr>")]
    assert "ACC4242" in row and "Manifeste prêt" in row and "CT" in row
    assert (DEMO_PATIENT.used_family or DEMO_PATIENT.family).upper() in row
    born = DEMO_PATIENT.birth_date
    assert f"{born[:4]}-{born[4:6]}-{born[6:]}" in row
    assert 'id="queue"' in home and "Remplacée par une version plus récente" in home and 'id="reachability"' in home

    found = operator.get("/drimbox/ui", params={"q": "acc4242"}).text
    assert f'data-study="{study.study_uid}"' in found
    missing = operator.get("/drimbox/ui", params={"q": "nobody like this"}).text
    assert f'data-study="{study.study_uid}"' not in missing and "Aucune étude" in missing

    english = operator.get("/drimbox/ui", params={"lang": "en"}).text
    assert "Manifest ready" in english and "Waiting to be sent" in english and "Manifeste prêt" not in english
    assert "not configured — no peer is trusted" in english

    audit = operator.get("/drimbox/ui", params={"audit": "ACC4242-nothing", "entry": "operator"}).text
    assert 'id="audit"' in audit and "Rien trouvé" in audit
