"""The report's viewer link against a real box: link generation, PSC login (simulator over loopback),
patient tokens, the one-study viewer session and nginx's DICOMweb decision."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from drimbox.psc.session import seal
from drimbox.samples.studies import make_rejection_note
from drimbox.testing import store_scu
from drimbox.web.viewer_session import VIEWER_PURPOSE, cookie_name
from support.logs import logged

from .conftest import GENERAL_PRACTITIONER, RADIOLOGIST, browser, publish, query_of, viewer_secret

pytestmark = pytest.mark.integration


def viewer_link(operator, study) -> str:
    response = operator.get(f"/drimbox/studies/{study.content.study_uid}/viewer-link")
    assert response.status_code == 200, response.text
    return response.json()["url"]


def login_as(session, link: str, id_nat: str):
    """Open the link and log in with PSC's prompt=none shortcut; requests follows every redirect."""
    return session.get(link + f"&login_hint={id_nat}&prompt=none", timeout=30)


def dicomweb(session, box, path: str):
    return session.get(box.vi_url + path, timeout=30, headers={"Accept": "application/dicom+json"})


def test_viewer_link_names_study_accession_and_report(viewer_box, viewer_operator, studies):
    a = studies["a"]
    body = viewer_operator.get(f"/drimbox/studies/{a.content.study_uid}/viewer-link").json()
    assert body["url"] == (f"{viewer_box.vi_url}/drimbox/open?study={a.content.study_uid}"
                           f"&accession={a.accession}&report={quote(a.report_id, safe='')}")
    assert body["kos_uid"] == a.kos_uid
    unknown = viewer_operator.get("/drimbox/studies/1.2.3.999/viewer-link")
    assert unknown.status_code == 404
    # operator resources are not reachable from the viewer host
    assert browser(viewer_box).get(viewer_box.vi_url + f"/drimbox/studies/{a.content.study_uid}/viewer-link",
                                   timeout=10).status_code == 403


def test_professional_logs_in_and_sees_only_that_study(viewer_box, viewer_operator, studies):
    a, b = studies["a"], studies["b"]
    session = browser(viewer_box)
    answer = login_as(session, viewer_link(viewer_operator, a), RADIOLOGIST)
    first = answer.history[0]
    assert first.status_code == 303 and "/protocol/openid-connect/auth" in first.headers["Location"]
    auth = query_of(first.headers["Location"])
    assert auth["scope"] == "openid scope_all" and auth["acr_values"] == "eidas1" and auth["state"] and auth["nonce"]
    assert auth["redirect_uri"] == viewer_box.vi_url + "/drimbox/psc/callback"
    # landed on OHIF, on the study, first on the key image
    final = query_of(answer.url)
    assert answer.url.startswith(viewer_box.vi_url + "/viewer?")
    assert final["StudyInstanceUIDs"] == a.content.study_uid
    assert (final["initialSeriesInstanceUID"], final["initialSOPInstanceUID"]) == a.key_image
    # the callback sets the PSC session and clears the login state: two Set-Cookie headers
    callback = next(r for r in answer.history if "/drimbox/psc/callback" in r.url)
    set_cookies = callback.raw.headers.getlist("Set-Cookie")
    assert any(c.startswith("drimbox_psc_login=;") and "Max-Age=0" in c for c in set_cookies), set_cookies
    assert len(set_cookies) == 2
    assert "drimbox_psc_login" not in [cookie.name for cookie in session.cookies]

    uid = a.content.study_uid
    qido = dicomweb(session, viewer_box, f"/dicom-web/studies?StudyInstanceUID={uid}&includefield=00081030"
                                         "&includefield=00080060&limit=101&offset=0&fuzzymatching=false")
    assert qido.status_code == 200 and qido.json()[0]["0020000D"]["Value"] == [uid]
    series = dicomweb(session, viewer_box, f"/dicom-web/studies/{uid}/series?includefield=0008103E")
    assert series.status_code == 200 and len(series.json()) == 3
    s = a.content.series[0]
    metadata = dicomweb(session, viewer_box, f"/dicom-web/studies/{uid}/series/{s.series_uid}/metadata")
    assert metadata.status_code == 200
    frame = session.get(viewer_box.vi_url + f"/dicom-web/studies/{uid}/series/{s.series_uid}/instances/"
                        f"{s.instances[0].sop_instance_uid}/frames/1", timeout=30,
                        headers={"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'})
    assert frame.status_code == 200 and len(frame.content) > 1000

    # another study: refused, whatever the form
    other = b.content.study_uid
    for path in (f"/dicom-web/studies?StudyInstanceUID={other}", f"/dicom-web/studies/{other}/series",
                 f"/dicom-web/studies/{other}/metadata", "/dicom-web/studies",
                 f"/dicom-web/studies?PatientID={a.content.patient_id}",
                 f"/dicom-web/studies?StudyInstanceUID={uid}&StudyInstanceUID={other}",
                 f"/dicom-web/studies?StudyInstanceUID={uid}&0020000D={other}",
                 f"/dicom-web/studies?StudyInstanceUID={uid}%5C{other}",
                 f"/dicom-web/series?StudyInstanceUID={other}", f"/dicom-web/studies/{uid}/../{other}/series"):
        assert dicomweb(session, viewer_box, path).status_code == 403, path
    # no session at all: 401
    assert dicomweb(browser(viewer_box), viewer_box, f"/dicom-web/studies/{uid}/series").status_code == 401
    # a forged grant header does not help
    forged = browser(viewer_box).get(viewer_box.vi_url + f"/dicom-web/studies/{other}/series", timeout=10,
                                     headers={"X-Drimbox-Grant": "viewer.9999999999.00.*"})
    assert forged.status_code == 401

    audit = viewer_operator.get(f"/drimbox/audit?study={uid}").json()
    opened = [e for e in audit if e["action"] == "open-viewer" and e["outcome_status"] == 303]
    assert opened and opened[0]["professional_id"] == RADIOLOGIST and opened[0]["kos_uid"] == a.kos_uid
    assert opened[0]["structure_id"] == "334422928290001"
    refused = viewer_operator.get(f"/drimbox/audit?study={other}&outcome=denied").json()
    assert any(e["action"] == "viewer-dicomweb" and e["outcome_status"] == 403 for e in refused)


def test_second_link_opens_a_second_study_without_a_new_login(viewer_box, viewer_operator, studies):
    a, b = studies["a"], studies["b"]
    session = browser(viewer_box)
    login_as(session, viewer_link(viewer_operator, a), RADIOLOGIST)
    answer = session.get(viewer_link(viewer_operator, b), timeout=30)
    assert [r.status_code for r in answer.history] == [303]  # the PSC session cookie is reused
    assert query_of(answer.url)["StudyInstanceUIDs"] == b.content.study_uid
    assert "initialSeriesInstanceUID" not in query_of(answer.url)  # b has no key image note
    for study in (a, b):
        assert dicomweb(session, viewer_box, f"/dicom-web/studies/{study.content.study_uid}/series").status_code == 200


def test_professional_with_two_activities_picks_one(viewer_box, viewer_operator, studies):
    a = studies["a"]
    session = browser(viewer_box)
    page = login_as(session, viewer_link(viewer_operator, a), GENERAL_PRACTITIONER)
    assert page.url.startswith(viewer_box.vi_url + "/drimbox/psc/activity?")
    assert "CABINET DU DOCTEUR DURAND" in page.text and "CENTRE HOSPITALIER DE DEMONSTRATION" in page.text
    import re

    form = dict(re.findall(r"name='(return|csrf)' value='([^']*)'", page.text))
    import html

    form = {k: html.unescape(v) for k, v in form.items()}
    # a forged form token is refused
    bad = session.post(viewer_box.vi_url + "/drimbox/psc/activity", data={**form, "csrf": "x", "activity": "0.1"},
                       timeout=30)
    assert bad.status_code == 403
    answer = session.post(viewer_box.vi_url + "/drimbox/psc/activity", data={**form, "activity": "0.1"}, timeout=30)
    assert answer.url.startswith(viewer_box.vi_url + "/viewer?"), answer.url
    audit = viewer_operator.get(f"/drimbox/audit?professional={GENERAL_PRACTITIONER}").json()
    assert any(e["action"] == "open-viewer" and e["structure_id"] == "1690000001" for e in audit)


def test_cancelled_login_shows_a_bilingual_error(viewer_box, viewer_operator, studies):
    session = browser(viewer_box)
    start = session.get(viewer_link(viewer_operator, studies["a"]), allow_redirects=False, timeout=30)
    login_page = session.get(start.headers["Location"], timeout=30)
    import re

    hidden = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', login_page.text))
    action = re.search(r'action="([^"]+)"', login_page.text).group(1)
    answer = session.post(action, data={**hidden, "cancel": "1"}, timeout=30)
    assert answer.status_code == 403
    assert "La connexion Pro Santé Connect a été annulée" in answer.text and "login was cancelled" in answer.text
    assert "text/html" in answer.headers["Content-Type"]


@pytest.mark.parametrize("change, reason, status", [
    ({"accession": "WRONG"}, "accession_mismatch", 404),
    ({"report": "NOT-THE-REPORT"}, "report_mismatch", 404),
    ({"study": "1.2.3.4.5.6"}, "unknown_study", 404),
])
def test_links_that_do_not_match_the_publication_are_refused(viewer_box, studies, change, reason, status):
    a = studies["a"]
    params = {"study": a.content.study_uid, "accession": a.accession, "report": a.report_id, **change}
    url = viewer_box.vi_url + "/drimbox/open?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    answer = browser(viewer_box).get(url, allow_redirects=False, timeout=30)
    assert answer.status_code == status
    assert reason in answer.text and "Accès refusé" in answer.text and "Access refused" in answer.text


def test_patient_link_opens_the_study(viewer_box, viewer_operator, studies):
    a, b = studies["a"], studies["b"]
    issued = viewer_operator.post(f"/drimbox/studies/{a.content.study_uid}/patient-link",
                                  json={"subject": "INS-279035121518989"})
    assert issued.status_code == 200, issued.text
    session = browser(viewer_box)
    answer = session.get(issued.json()["url"], timeout=30)
    assert answer.url.startswith(viewer_box.vi_url + "/viewer?")
    assert query_of(answer.url)["StudyInstanceUIDs"] == a.content.study_uid
    assert "token" not in answer.url
    token = query_of(issued.json()["url"])["token"]
    log = logged(viewer_box.log_dir / "nginx-access.log", "/drimbox/open")
    assert "/drimbox/open" in log and token not in log  # the patient's token is not written to disk
    assert dicomweb(session, viewer_box, f"/dicom-web/studies/{a.content.study_uid}/series").status_code == 200
    assert dicomweb(session, viewer_box, f"/dicom-web/studies/{b.content.study_uid}/series").status_code == 403
    audit = viewer_operator.get(f"/drimbox/audit?study={a.content.study_uid}").json()
    assert any(e["action"] == "open-viewer" and "INS-279035121518989" in e["reason"] for e in audit)


def test_expired_forged_and_misplaced_patient_tokens_are_refused(viewer_box, viewer_operator, studies):
    a, b = studies["a"], studies["b"]
    expired = viewer_operator.post(f"/drimbox/studies/{a.content.study_uid}/patient-link", json={"hours": -1}).json()
    answer = browser(viewer_box).get(expired["url"], allow_redirects=False, timeout=30)
    assert answer.status_code == 403 and "expired" in answer.text

    good = viewer_operator.post(f"/drimbox/studies/{a.content.study_uid}/patient-link", json={}).json()
    header, payload, signature = good["token"].split(".")
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["study_uid"] = b.content.study_uid
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged_url = good["url"].replace(good["token"], f"{header}.{tampered}.{signature}")
    answer = browser(viewer_box).get(forged_url, allow_redirects=False, timeout=30)
    assert answer.status_code == 403 and "bad_signature" in answer.text

    # a genuine token of study a, pasted into the link of study b
    link_b = viewer_operator.get(f"/drimbox/studies/{b.content.study_uid}/viewer-link").json()["url"]
    answer = browser(viewer_box).get(link_b + "&token=" + good["token"], allow_redirects=False, timeout=30)
    assert answer.status_code == 403 and "other_study" in answer.text

    # a token signed with another key (HS256 with a guessable secret, or alg none) is refused
    from joserfc import jwt
    from joserfc.jwk import OctKey

    hs = jwt.encode({"alg": "HS256"}, {**claims, "study_uid": a.content.study_uid}, OctKey.import_key("secret" * 6))
    answer = browser(viewer_box).get(good["url"].replace(good["token"], hs), allow_redirects=False, timeout=30)
    assert answer.status_code == 403 and "bad_signature" in answer.text
    denied = viewer_operator.get(f"/drimbox/audit?study={a.content.study_uid}&outcome=denied").json()
    assert any("patient token refused" in e["reason"] for e in denied)


def test_expired_or_forged_viewer_session_is_401(viewer_box, studies):
    uid = studies["a"].content.study_uid
    secret = viewer_secret(viewer_box)
    body = {"study": uid, "kos": studies["a"].kos_uid, "who": "patient", "sub": "x", "structure": ""}
    expired = seal(body, secret, purpose=VIEWER_PURPOSE, max_age=60, now=time.time() - 3600)
    forged = seal(body, b"f" * 32, purpose=VIEWER_PURPOSE, max_age=600)
    for value in (expired, forged):
        session = browser(viewer_box)
        answer = session.get(viewer_box.vi_url + f"/dicom-web/studies/{uid}/series", timeout=10,
                             cookies={cookie_name(uid): value})
        assert answer.status_code == 401
    good = seal(body, secret, purpose=VIEWER_PURPOSE, max_age=600)
    answer = browser(viewer_box).get(viewer_box.vi_url + f"/dicom-web/studies/{uid}/series", timeout=10,
                                     cookies={cookie_name(uid): good})
    assert answer.status_code == 200


def test_iocm_rejected_instances_stay_out_of_the_viewer(viewer_box, viewer_operator, tmp_path):
    published = publish(viewer_box, viewer_operator, tmp_path / "c", "ACCVC1")
    study, (first, second) = published.content.study_uid, published.content.series
    session = browser(viewer_box)  # opened before the rejection: its session names the first manifest
    assert login_as(session, viewer_link(viewer_operator, published), RADIOLOGIST).url.startswith(
        viewer_box.vi_url + "/viewer?")
    frames = {"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}

    def frame(series, instance):
        return session.get(viewer_box.vi_url + f"/dicom-web/studies/{study}/series/{series.series_uid}/instances/"
                           f"{instance.sop_instance_uid}/frames/1", headers=frames, timeout=30)

    assert frame(first, first.instances[0]).status_code == 200
    # Orthanc keeps what an IOCM note rejects: one image of the first series, the whole second series
    rejected = [first.instances[0], *second.instances]
    make_rejection_note(tmp_path / "note", published.content, [i.sop_instance_uid for i in rejected])
    store_scu(viewer_box, tmp_path / "note")
    viewer_operator.wait_study(study, lambda s: s["kos"] and s["kos"]["kos_uid"] != published.kos_uid,
                               what="the manifest after the rejection")

    metadata = dicomweb(session, viewer_box, f"/dicom-web/studies/{study}/series/{first.series_uid}/metadata")
    assert metadata.status_code == 200, metadata.text
    assert sorted(item["00080018"]["Value"][0] for item in metadata.json()) == \
        sorted(i.sop_instance_uid for i in first.instances[1:])
    emptied = dicomweb(session, viewer_box, f"/dicom-web/studies/{study}/series/{second.series_uid}/metadata")
    assert (emptied.status_code, emptied.json()) == (200, [])
    assert frame(first, first.instances[0]).status_code == 403
    assert frame(second, second.instances[0]).status_code == 403
    assert frame(first, first.instances[1]).status_code == 200
    audit = viewer_operator.get(f"/drimbox/audit?study={study}").json()
    assert any(e["reason"] == "instance rejected (IOCM)" for e in audit)
