"""Peer access by default (``PeerAccess.ClientCertificate`` "required"): nginx verifies the caller's TLS client
certificate against the configured CAs, and its subject DN must be an operator DN of the whitelist in force,
checked before the token (unknown callers never make us call PSC). The health check stays open."""

from __future__ import annotations

import time

import pytest
import requests

from drimbox.crypto.pki import create_test_pki, revoke
from drimbox.samples.whitelist import make_demo_whitelist
from drimbox.testing import wait_for
from peer_helpers import NATIONAL_ACCEPT, raw_get, start_world

pytestmark = pytest.mark.integration

HSTS = "max-age=31536000; includeSubDomains"
REFRESH_HOURS = 0.0005  # the box reads its whitelist source again every 1.8 s


@pytest.fixture(scope="module")
def mtls_world(tmp_path_factory, pki):
    world = start_world(tmp_path_factory.mktemp("peer-mtls"), pki, series=(("CT", 2),), jpegls=False,
                        listed_operators=("box-b",))
    yield world
    world.stop()


def _refused_403(response: requests.Response, words: str) -> None:
    assert response.status_code == 403, (response.status_code, response.text[:300])
    assert response.headers["Strict-Transport-Security"] == HSTS
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == 403
    assert words.lower() in body["error"].lower(), body


def test_a_whitelisted_operator_certificate_is_served(mtls_world):
    w = mtls_world
    response = w.session(cert="box-b").get(w.wado + w.series_path(), headers=w.headers(), timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["Strict-Transport-Security"] == HSTS
    rows = w.operator.get(f"/drimbox/audit?study_uid={w.study.study_uid}&outcome=allowed").json()
    assert any(r["caller_dn"] and "box-b" in r["caller_dn"] for r in rows), rows[:2]


@pytest.mark.parametrize("cert, words", [(None, "client certificate"), ("box-a", "not an operator DN")],
                         ids=["no-certificate", "not-whitelisted"])
def test_other_callers_are_403(mtls_world, cert, words):
    w = mtls_world
    for path in (w.series_path(), w.instance_path(), w.instance_path() + "/frames/1", w.series_path() + "/metadata",
                 f"/studies/{w.study.study_uid}"):
        _refused_403(w.session(cert=cert).get(w.wado + path, headers=w.headers(), timeout=60), words)
    # Headers a client sends cannot pretend to be nginx's verification.
    forged = dict(w.headers(), **{"X-Ssl-Client-Verify": "SUCCESS",
                                  "X-Ssl-Client-S-Dn": w.pki["boxes"]["box-b"]["auth"]["subject"]})
    _refused_403(w.session(cert=cert).get(w.wado + w.series_path(), headers=forged, timeout=60), words)


def test_a_certificate_from_an_untrusted_ca_is_refused(mtls_world, tmp_path):
    """Same subject DN as the whitelisted peer, issued by another CA: nginx cannot verify it; 403, audited."""
    w = mtls_world
    other = create_test_pki(tmp_path / "other-pki", boxes=("box-a", "box-b"))["boxes"]["box-b"]["auth"]
    assert other["subject"] == w.pki["boxes"]["box-b"]["auth"]["subject"]
    session = w.session(cert=None)
    session.cert = (other["cert"], other["key"])
    # nginx completes the handshake ("optional") and answers 403 with a reason instead of its HTML 400.
    _refused_403(session.get(w.wado + w.series_path(), headers=w.headers(), timeout=60), "not verified")
    rows = w.operator.get("/drimbox/audit?outcome=denied&limit=50").json()
    assert any(r["outcome_status"] == 403 and "not verified" in r["reason"] for r in rows), rows[:3]


def test_a_revoked_certificate_is_refused(tmp_path_factory):
    """box-b's DN is in the whitelist, but its certificate is on the CA's CRL, which nginx is given."""
    tmp = tmp_path_factory.mktemp("peer-mtls-crl")
    pki = create_test_pki(tmp / "pki")
    pki = revoke(pki, pki["boxes"]["box-b"]["auth"]["cert"])
    (tmp / "world").mkdir()
    world = start_world(tmp / "world", pki, series=(("CT", 1),), jpegls=False)
    try:
        _refused_403(world.session(cert="box-b").get(world.wado + world.series_path(), headers=world.headers(),
                                                     timeout=60), "revoked")
        response = world.session(cert="box-a").get(world.wado + world.series_path(), headers=world.headers(),
                                                   timeout=60)
        assert response.status_code == 200, response.text
    finally:
        world.stop()


def test_certificate_is_checked_before_the_token(mtls_world):
    w = mtls_world
    answer = raw_get(w, w.series_path(), [("Authorization", "Bearer unknown"), ("KOS-SOPInstanceUID", w.kos_uid),
                                          ("Accept", NATIONAL_ACCEPT)], cert=None)
    assert answer.status == 403
    answer = raw_get(w, w.series_path(), [("Authorization", "Bearer unknown"), ("KOS-SOPInstanceUID", w.kos_uid),
                                          ("Accept", NATIONAL_ACCEPT)], cert="box-b")
    assert answer.status == 401
    assert answer.header("WWW-Authenticate") == 'Bearer error="invalid_token"'


def test_health_check_needs_no_certificate_and_says_what_is_checked(mtls_world):
    response = mtls_world.session(cert=None).get(mtls_world.wado, timeout=30)
    assert response.status_code == 200
    assert response.json()["client_certificate"] == "required"
    status = mtls_world.operator.get("/drimbox/status").json()
    assert status["peer_access"]["client_certificate"] == "required"
    assert any("DNCertificatOperateur" in check for check in status["peer_access"]["checks"])


def test_a_whitelist_without_the_peer_refuses_its_next_request(tmp_path_factory, pki):
    world = start_world(tmp_path_factory.mktemp("peer-mtls-list"), pki, series=(("CT", 1),), jpegls=False,
                        whitelist_refresh_hours=REFRESH_HOURS)
    try:
        session = world.session(cert="box-b")
        assert session.get(world.wado + world.series_path(), headers=world.headers(), timeout=60).status_code == 200
        before = _generated_at(world)
        time.sleep(1.1)  # the new list must be generated after the one in force (DateDeGeneration, seconds)
        domains = {"box-a": {"db": "localhost:1", "vi": "localhost:2"},
                   "box-b": {"db": "box-b.example:443", "vi": "box-b-vi.example:443",
                             "operator_dn": "CN=AUTH_CLI someone-else,O=ELSEWHERE,C=FR"}}
        (world.tmp / "whitelist.xml").write_bytes(make_demo_whitelist(pki, domains))
        wait_for(lambda: _generated_at(world) != before, timeout=30, what="the new whitelist in force")
        _refused_403(session.get(world.wado + world.series_path(), headers=world.headers(), timeout=60),
                     "not an operator DN")
    finally:
        world.stop()


def _generated_at(world) -> str:
    details = world.box.operator_session().get(world.box.admin_url + "/drimbox/status/health", timeout=10).json()
    return details["checks"]["whitelist"]["generated_at"]


def test_client_certificate_off_serves_callers_without_one(tmp_path_factory, pki):
    world = start_world(tmp_path_factory.mktemp("peer-no-mtls"), pki, series=(("CT", 1),), jpegls=False,
                        peer_access={"ClientCertificate": "off"})
    try:
        response = world.session(cert=None).get(world.wado + world.series_path(), headers=world.headers(),
                                                timeout=60)
        assert response.status_code == 200, response.text
        assert world.session(cert=None).get(world.wado, timeout=10).json()["client_certificate"] == "off"
        log = (world.box.log_dir / "orthanc.log").read_text(errors="replace")
        assert "PeerAccess.ClientCertificate is off" in log
        # The token is still checked.
        refused = world.session(cert=None).get(world.wado + world.series_path(),
                                               headers=world.headers(token="forged"), timeout=60)
        assert refused.status_code == 401
    finally:
        world.stop()
