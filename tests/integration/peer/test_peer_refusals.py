"""What a peer (or anyone) is refused on the `db` host, with the status docs/conformance.md names, a JSON
body and HSTS on every answer; and what is not reachable at all."""

from __future__ import annotations

import pytest
import requests

from drimbox.samples.reports import new_uid
from peer_helpers import NATIONAL_ACCEPT, raw_get

pytestmark = pytest.mark.integration

HSTS = "max-age=31536000; includeSubDomains"


def _refused(response, status: int, words: str = "") -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers.get("Strict-Transport-Security") == HSTS
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    assert words.lower() in body["error"].lower(), body
    return body


def _get(world, path, headers, **kwargs):
    return world.session().get(world.wado + path, headers=headers, timeout=60, **kwargs)


@pytest.mark.parametrize("drop, words", [("Authorization", "Authorization"),
                                          ("KOS-SOPInstanceUID", "KOS-SOPInstanceUID")])
def test_missing_header_is_400(world, drop, words):
    headers = world.headers()
    del headers[drop]
    _refused(_get(world, world.series_path(), headers), 400, words)


def test_malformed_requests_are_400(world):
    _refused(_get(world, world.series_path(), world.headers(kos="not-a-uid")), 400, "KOS")
    headers = world.headers()
    headers["Authorization"] = "Basic dXNlcjpwYXNz"
    _refused(_get(world, world.series_path(), headers), 400, "Bearer")
    _refused(_get(world, world.series_path(), world.headers(accept="text/html")), 400, "Accept")
    _refused(_get(world, f"/studies/{world.study.study_uid}/series/1.2.x", world.headers()), 400, "UID")


@pytest.mark.parametrize("accept", [
    "transfer-syntax=1.2.840.10008.1.2.4.80;q=-0.5",
    'multipart/related; type="application/dicom";transfer-syntax=*;q=nan',
    'multipart/related; type="application/dicom";transfer-syntax=*;q=inf, */*;q=1e309',
    'multipart/related; type="application/dicom";transfer-syntax=*;q=1.0001,',
    'multipart/related; type="application/dicom";transfer-syntax=*;q=0.5000',
], ids=["negative", "nan", "inf-1e309", "above-1", "four-decimals"])
def test_an_accept_whose_every_q_is_invalid_is_400(world, accept):
    _refused(_get(world, world.series_path(), world.headers(accept=accept)), 400, "Accept")


def test_an_item_with_an_invalid_q_is_ignored(world):
    accept = ('multipart/related; type="application/dicom";transfer-syntax=1.2.840.10008.1.2.4.80;q=2,'
              'multipart/related; type="application/dicom";transfer-syntax=1.2.840.10008.1.2.1;q=0.5')
    response = _get(world, world.series_path(), world.headers(accept=accept))
    assert response.status_code == 200, response.text
    assert response.headers["X-Transfer-Syntax"] == "1.2.840.10008.1.2.1"  # the stored JPEG-LS item was dropped


@pytest.mark.parametrize("token", ["not-a-jwt", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "expired", "revoked"])
def test_bad_token_is_401_with_a_bearer_challenge(world, token):
    if token == "expired":
        token = world.token(lifetime=-60)
    elif token == "revoked":  # revoked before the box ever saw it (answers are cached briefly)
        token = world.token()
        world.psc.revoke(token)
    response = _get(world, world.series_path(), world.headers(token=token))
    _refused(response, 401, "token")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_unknown_kos_is_404(world):
    _refused(_get(world, world.series_path(), world.headers(kos=new_uid())), 404, "unknown KOS")


def test_study_series_or_instance_outside_the_kos_is_404(world):
    _refused(_get(world, f"/studies/{new_uid()}", world.headers()), 404, "study")
    _refused(_get(world, f"/studies/{world.study.study_uid}/series/{new_uid()}", world.headers()), 404, "series")
    _refused(_get(world, f"{world.series_path(0)}/instances/{new_uid()}", world.headers()), 404, "instance")
    # An instance of the study, but in another series than the path says.
    other = world.study.series[1].instances[0].sop_instance_uid
    _refused(_get(world, f"{world.series_path(0)}/instances/{other}", world.headers()), 404, "instance")


@pytest.mark.parametrize("path", [
    "/studies", "/studies?PatientID=X", "/series", "/instances",
    "/studies/{study}/series", "/studies/{study}/instances", "/studies/{study}/series/{series}/instances",
    "/studies/{study}/rendered", "/studies/{study}/series/{series}/thumbnail", "/studies/{study}/bulkdata/x",
])
def test_qido_and_other_resources_are_refused(world, path):
    path = path.format(study=world.study.study_uid, series=world.study.series[0].series_uid)
    response = _get(world, path, world.headers())
    _refused(response, 404, "")


def test_only_get(world):
    for method in ("POST", "PUT", "DELETE"):
        response = world.session().request(method, world.wado + world.series_path(), headers=world.headers(),
                                           data=b"x", timeout=30)
        assert response.status_code == 405, (method, response.status_code)
        assert response.headers["Allow"] == "GET"
        assert response.headers["Strict-Transport-Security"] == HSTS
        assert response.json()["status"] == 405
    answer = raw_get(world, world.series_path(), list(world.headers().items()), method="HEAD")
    assert answer.status == 405


def test_repeated_authorization_is_refused(world):
    lines = [("Authorization", f"Bearer {world.token()}"), ("Authorization", "Bearer other"),
             ("KOS-SOPInstanceUID", world.kos_uid), ("Accept", NATIONAL_ACCEPT)]
    answer = raw_get(world, world.series_path(), lines)
    assert answer.status == 400
    assert answer.header("Strict-Transport-Security") == HSTS


def test_nothing_else_is_reachable_on_the_db_host(world):
    session = world.session()
    base = world.box.db_url
    for path in ("/", "/system", "/app/explorer.html", "/dicom-web/studies",
                 f"/dicom-web/studies/{world.study.study_uid}", "/drimbox/status", "/drimbox/audit",
                 "/drimbox/peer/authz", "/drimbox/peer/denied", "/drimbox/peer/bad-certificate",
                 "/_drimbox_peer_authz", "/_drimbox_peer_denied", "/instances", "/tools/find", "/wado"):
        response = session.get(base + path, headers=world.headers(), timeout=30)
        assert response.status_code == 404, (path, response.status_code, response.text[:200])
        assert response.headers.get("Strict-Transport-Security") == HSTS, path
    # Forged trusted headers change nothing.
    forged = dict(world.headers(kos=new_uid()), **{"X-Drimbox-Grant": "peer.9999999999.x./dicom-web/studies",
                                                   "X-Drimbox-Internal": "guess", "X-Ssl-Client-Verify": "SUCCESS"})
    _refused(session.get(world.wado + world.series_path(), headers=forged, timeout=30), 404, "unknown KOS")


def test_orthanc_port_without_nginx_is_refused(world):
    orthanc = world.box.orthanc_url
    session = requests.Session()
    session.trust_env = False
    series = world.study.series[0]
    paths = ["/system", "/patients", "/dicom-web/studies", f"/dicom-web/studies/{world.study.study_uid}",
             f"/dicom-web/studies/{world.study.study_uid}/series/{series.series_uid}", "/drimbox/status",
             "/app/explorer.html"]
    for path in paths:
        assert session.get(orthanc + path, timeout=30).status_code == 403, path
    # Even pretending to be nginx's db entry, a DICOMweb request needs a grant signed by the box.
    grant = f"peer.9999999999.{'0' * 40}./dicom-web/studies/{world.study.study_uid}"
    response = session.get(orthanc + f"/dicom-web/studies/{world.study.study_uid}", timeout=30,
                           headers={"X-Drimbox-Entry": "db", "X-Drimbox-Grant": grant})
    assert response.status_code == 403


def test_denials_are_audited(world):
    _get(world, world.series_path(), world.headers(kos=new_uid()))
    rows = world.operator.get("/drimbox/audit?outcome=denied&limit=200").json()
    assert any(r["outcome_status"] == 404 and r["reason"] == "unknown KOS" for r in rows)
    assert any(r["outcome_status"] == 400 for r in rows)
