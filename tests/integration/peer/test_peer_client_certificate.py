"""PeerAccess.RequireClientCertificate: the caller's TLS certificate must be verified by nginx and its DN be an
operator DN of the whitelist in force (checked before the token, so unknown callers never make us call PSC)."""

from __future__ import annotations

import pytest

from peer_helpers import NATIONAL_ACCEPT, raw_get, start_world

pytestmark = pytest.mark.integration

HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture(scope="module")
def mtls_world(tmp_path_factory, pki):
    world = start_world(tmp_path_factory.mktemp("peer-mtls"), pki, require_client_certificate=True,
                        series=(("CT", 2),), jpegls=False, listed_operators=("box-b",))
    yield world
    world.stop()


def test_a_whitelisted_operator_certificate_is_served(mtls_world):
    w = mtls_world
    response = w.session(cert="box-b").get(w.wado + w.series_path(), headers=w.headers(), timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["Strict-Transport-Security"] == HSTS
    rows = w.operator.get(f"/drimbox/audit?study_uid={w.study.study_uid}&outcome=allowed").json()
    assert any(r["caller_dn"] and "box-b" in r["caller_dn"] for r in rows), rows[:2]


@pytest.mark.parametrize("cert", [None, "box-a"], ids=["no-certificate", "not-whitelisted"])
def test_other_callers_are_403(mtls_world, cert):
    w = mtls_world
    response = w.session(cert=cert).get(w.wado + w.series_path(), headers=w.headers(), timeout=60)
    assert response.status_code == 403, response.text
    assert response.headers["Strict-Transport-Security"] == HSTS
    assert response.json()["status"] == 403
    # Headers a client sends cannot pretend to be nginx's verification.
    forged = dict(w.headers(), **{"X-Ssl-Client-Verify": "SUCCESS",
                                  "X-Ssl-Client-S-Dn": w.pki["boxes"]["box-b"]["auth"]["subject"]})
    assert w.session(cert=cert).get(w.wado + w.series_path(), headers=forged, timeout=60).status_code == 403


def test_certificate_is_checked_before_the_token(mtls_world):
    w = mtls_world
    answer = raw_get(w, w.series_path(), [("Authorization", "Bearer unknown"), ("KOS-SOPInstanceUID", w.kos_uid),
                                          ("Accept", NATIONAL_ACCEPT)])
    assert answer.status == 403
    answer = raw_get(w, w.series_path(), [("Authorization", "Bearer unknown"), ("KOS-SOPInstanceUID", w.kos_uid),
                                          ("Accept", NATIONAL_ACCEPT)], cert="box-b")
    assert answer.status == 401
    assert answer.header("WWW-Authenticate") == 'Bearer error="invalid_token"'


def test_health_check_needs_no_certificate(mtls_world):
    response = mtls_world.session().get(mtls_world.wado, timeout=30)
    assert response.status_code == 200 and response.json()["status"] in ("ok", "degraded")
    box = mtls_world.box  # the setting itself is shown to the operator only
    details = box.operator_session().get(box.admin_url + "/drimbox/status/health", timeout=30).json()
    assert details["require_client_certificate"] is True
