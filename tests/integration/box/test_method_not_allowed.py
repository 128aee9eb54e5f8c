"""A wrong method on the box's routes is a 405 with Allow and a JSON body, through nginx, on every entry."""

from __future__ import annotations

import pytest
import requests

from drimbox.testing import start_box

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(tmp_path_factory, pki):
    instance = start_box(tmp_path_factory.mktemp("methods") / "box", pki=pki)
    yield instance
    instance.stop()


def call(box, base: str, method: str, path: str, **kwargs):
    session = requests.Session()
    session.verify = box.ca_bundle
    session.trust_env = False
    return session.request(method, base + path, timeout=30, **kwargs)


@pytest.mark.parametrize("entry, method, path, allow", [
    ("vi", "POST", "/drimbox/psc/callback", "GET"),
    ("vi", "DELETE", "/drimbox/open", "GET"),
    ("vi", "PUT", "/drimbox/psc/activity", "GET, POST"),
    ("vi", "POST", "/drimbox/viewer/authz", "GET"),
    ("admin", "DELETE", "/drimbox/studies", "GET"),
    ("admin", "PUT", "/drimbox/reports", None),
    ("db", "POST", "", "GET"),
    ("db", "DELETE", "/", "GET"),
])
def test_wrong_method_is_405_with_allow_and_json(box, entry, method, path, allow):
    base = {"vi": box.vi_url, "admin": box.admin_url, "db": box.wado_rs_base}[entry]
    auth = box.operator_auth if entry == "admin" else None
    answer = call(box, base, method, path, auth=auth)
    assert answer.status_code == 405, (answer.status_code, answer.text[:200])
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert body["status"] == 405 and (method in body["error"] or "only GET" in body["error"])
    assert answer.headers["Allow"]
    if allow:
        assert answer.headers["Allow"] == allow
    assert answer.headers["Strict-Transport-Security"]
