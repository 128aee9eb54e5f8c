"""The admin entry's decision on a real store, with a clock the test moves."""

from __future__ import annotations

import base64

import pytest

from drimbox.store import Store
from drimbox.trust.gate import Gate, GateRequest
from drimbox.trust.operator_access import COOKIE_NAME, OperatorAccess, basic_credentials, safe_next
from drimbox.trust.operator_password import OperatorUsers, hash_password, verify_password
from drimbox.web.operator_settings import OperatorSettings
from drimbox.web.stored_files import report_pdf

PASSWORD = "correct horse"
HOST = "box.example:8440"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def access(tmp_path, clock) -> OperatorAccess:
    users = tmp_path / "users"
    users.write_text(f"operator:{hash_password(PASSWORD)}\n")
    store = Store.open(f"sqlite:///{tmp_path}/drimbox.db", clock=clock)
    settings = OperatorSettings(users_file=str(users), session_idle_minutes=10, session_max_hours=1,
                                login_max_failures=3, login_lock_seconds=10, login_lock_max_seconds=35,
                                login_failure_window_minutes=30)
    return OperatorAccess(store, settings, clock=clock)


def headers(**extra: str) -> dict[str, str]:
    return {"forwarded": f"host={HOST};proto=https", "x-drimbox-client-addr": "192.0.2.7", **extra}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def cookie_for(access: OperatorAccess) -> str:
    outcome, token = access.login("operator", PASSWORD, "192.0.2.7")
    assert outcome.ok and token
    return f"other=1; {COOKIE_NAME}={token}"


def test_passwords_are_scrypt_hashes_checked_in_constant_form():
    encoded = hash_password(PASSWORD)
    assert encoded.startswith("scrypt$") and PASSWORD not in encoded
    assert verify_password(PASSWORD, encoded) and not verify_password("wrong", encoded)
    assert not verify_password(PASSWORD, "plain") and not verify_password(PASSWORD, "scrypt$1$2$3$!!$??")


def test_the_users_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "users"
    path.write_text(f"operator:{hash_password('old')}\n")
    users = OperatorUsers(str(path))
    assert users.check("operator", "old")
    path.write_text(f"operator:{hash_password('new password')}\n")
    assert not users.check("operator", "old") and users.check("operator", "new password")
    assert not users.check("nobody", "new password")


def test_page_loads_go_to_login_and_api_calls_get_a_basic_challenge(access):
    page = access.decide("GET", "/app/explorer.html?x=1", headers(**{"sec-fetch-mode": "navigate"}))
    assert page.status == 303 and page.location == "/drimbox/operator/login?next=%2Fapp%2Fexplorer.html%3Fx%3D1"
    api = access.decide("GET", "/system", headers(accept="application/json"))
    assert api.status == 401 and api.www_authenticate.startswith("Basic")
    assert access.decide("GET", "/drimbox/operator/login", headers()).status == 200
    assert access.decide("GET", "/drimbox/operator/login/../../system", headers()).status == 401


def test_session_and_basic_credentials_allow(access):
    assert access.decide("GET", "/system", headers(cookie=cookie_for(access))).operator == "operator"
    assert access.decide("DELETE", "/studies/x", headers(authorization=basic("operator", PASSWORD))).status == 200
    wrong = access.decide("GET", "/system", headers(authorization=basic("operator", "nope")))
    assert wrong.status == 401 and not wrong.operator


def test_state_changing_requests_need_the_entrys_own_origin(access):
    cookie = cookie_for(access)
    own = f"https://{HOST}"
    assert access.decide("POST", "/instances", headers(cookie=cookie, origin=own)).status == 200
    assert access.decide("POST", "/instances", headers(cookie=cookie, origin="https://evil.example")).status == 403
    assert access.decide("POST", "/instances", headers(cookie=cookie)).status == 403  # cookie without Origin
    same_site = headers(cookie=cookie, origin=own, **{"sec-fetch-site": "same-site"})
    assert access.decide("PUT", "/x", same_site).status == 403
    with_basic = headers(authorization=basic("operator", PASSWORD))
    assert access.decide("POST", "/instances", with_basic).status == 200  # an API client sends no Origin
    assert access.decide("POST", "/instances", {**with_basic, "origin": "null"}).status == 403
    # a cross-origin GET is harmless (SameSite keeps the cookie away from other sites' navigations)
    assert access.decide("GET", "/system", headers(cookie=cookie, origin="https://evil.example")).status == 200
    # the login form itself is protected from cross-site posts
    assert access.decide("POST", "/drimbox/operator/login", headers(origin="https://evil.example")).status == 403


@pytest.mark.parametrize("uri, extra", [
    ("/instances/x?_method=DELETE", {}),
    ("/instances/x?a=1&_Method=delete", {}),
    ("/instances/x?%5Fmethod=DELETE", {}),
    ("/instances/x", {"x-http-method-override": "DELETE"}),
    ("/instances/x", {"x-drimbox-method-override": "DELETE"}),
    ("/instances/x", {"x-method-override": "DELETE"}),
])
def test_method_overrides_are_refused_even_with_a_session(access, uri, extra):
    decision = access.decide("GET", uri, headers(cookie=cookie_for(access), **extra))
    assert decision.status == 400 and "override" in decision.reason


def test_failures_lock_then_double_then_are_forgotten(access, clock):
    for _ in range(2):
        assert access.login("operator", "guess", "192.0.2.7")[0].status == 401
    assert access.login("operator", PASSWORD, "192.0.2.7")[0].ok  # success clears the count
    for _ in range(3):
        assert access.login("operator", "guess", "192.0.2.7")[0].status == 401
    locked, _ = access.login("operator", PASSWORD, "192.0.2.7")
    assert locked.status == 429 and locked.retry_after == 10
    # another address is locked too: the user name is
    assert access.login("operator", PASSWORD, "198.51.100.1")[0].status == 429
    clock.now += 10
    assert access.login("operator", "guess", "192.0.2.7")[0].status == 401  # 4th failure: 20 s
    assert access.login("operator", PASSWORD, "192.0.2.7")[0].retry_after == 20
    clock.now += 20
    access.login("operator", "guess", "192.0.2.7")  # 5th: 40 s, capped at 35
    assert access.login("operator", PASSWORD, "192.0.2.7")[0].retry_after == 35
    clock.now += 31 * 60  # past the window: forgotten
    assert access.login("operator", "guess", "192.0.2.7")[0].status == 401
    assert access.login("operator", PASSWORD, "192.0.2.7")[0].ok


def test_an_address_guessing_user_names_is_locked(access):
    for name in ("alice", "bob", "carol"):
        assert access.login(name, "guess", "203.0.113.9")[0].status == 401
    assert access.login("operator", PASSWORD, "203.0.113.9")[0].status == 429
    assert access.login("operator", PASSWORD, "192.0.2.7")[0].ok
    basic_locked = access.decide("GET", "/system", {**headers(authorization=basic("operator", PASSWORD)),
                                                    "x-drimbox-client-addr": "203.0.113.9"})
    assert basic_locked.status == 429 and basic_locked.retry_after > 0


def test_sessions_end_when_idle_at_their_maximum_age_and_at_logout(access, clock):
    cookie = cookie_for(access)
    clock.now += 9 * 60
    assert access.decide("GET", "/system", headers(cookie=cookie)).status == 200
    clock.now += 9 * 60  # used 9 minutes ago: still alive
    assert access.decide("GET", "/system", headers(cookie=cookie)).status == 200
    clock.now += 10 * 60 + 1
    assert access.decide("GET", "/system", headers(cookie=cookie)).status == 401
    cookie = cookie_for(access)
    for _ in range(7):
        clock.now += 9 * 60
        access.decide("GET", "/system", headers(cookie=cookie))
    assert access.decide("GET", "/system", headers(cookie=cookie)).status == 401  # past one hour
    cookie = cookie_for(access)
    access.logout(headers(cookie=cookie), "192.0.2.7")
    assert access.decide("GET", "/system", headers(cookie=cookie)).status == 401


def test_where_a_login_may_lead():
    assert safe_next("/app/explorer.html#x") == "/app/explorer.html#x"
    assert safe_next("/drimbox/ui?a=1") == "/drimbox/ui?a=1"
    for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "",
                    "/a\r\nSet-Cookie: x=1", "/drimbox/operator/login?next=//evil"):
        assert safe_next(hostile) == "/app/explorer.html"


def test_basic_credentials_parsing():
    assert basic_credentials(basic("operator", "a:b")) == ("operator", "a:b")
    assert basic_credentials("Bearer abc") is None
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials("Basic " + base64.b64encode(b"nocolon").decode()) is None


def test_the_gate_lets_the_admin_entry_reach_only_login_and_decision_without_an_operator():
    gate = Gate(b"k" * 32, "internal", "proxy-secret")

    def allowed(uri: str, **extra: str) -> bool:
        headers = {"x-drimbox-entry": "admin", "x-drimbox-proxy": "proxy-secret", **extra}
        return gate.allows(GateRequest(uri, "GET", headers))

    assert allowed("/drimbox/operator/login") and allowed("/drimbox/operator/authz")
    assert not allowed("/system") and not allowed("/drimbox/operator/login/x") and not allowed("/app/explorer.html")
    assert allowed("/system", **{"x-drimbox-operator": "operator"})
    assert not gate.allows(GateRequest("/drimbox/operator/login", "GET", {}))  # not through nginx


def test_report_pdf_only_when_the_bytes_are_a_pdf():
    def cda(payload: bytes, media: str = "application/pdf") -> bytes:
        return (b'<ClinicalDocument xmlns="urn:hl7-org:v3"><component><nonXMLBody><text mediaType="' + media.encode()
                + b'" representation="B64">' + base64.b64encode(payload) + b"</text></nonXMLBody></component>"
                b"</ClinicalDocument>")

    assert report_pdf(cda(b"%PDF-1.4 body")) == b"%PDF-1.4 body"
    assert report_pdf(cda(b"<html><script>alert(1)</script></html>")) is None
    assert report_pdf(cda(b"%PDF-1.4", media="text/html")) is None
    assert report_pdf(b"<not xml") is None
    assert report_pdf(b'<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>') is None


def test_drimbox_operator_passwd_replaces_one_users_hash(tmp_path):
    from drimbox.cli import main

    users = tmp_path / "users"
    users.write_text(f"operator:{hash_password('old password 1')}\nother:{hash_password('other password')}\n")
    secret = tmp_path / "secret"
    secret.write_text("a brand new password\n")
    assert main(["operator", "passwd", "--users-file", str(users), "--password-file", str(secret)]) == 0
    assert (users.stat().st_mode & 0o777) == 0o600 and "a brand new password" not in users.read_text()
    check = OperatorUsers(str(users))
    assert check.check("operator", "a brand new password") and not check.check("operator", "old password 1")
    assert check.check("other", "other password")
    secret.write_text("short\n")
    assert main(["operator", "passwd", "--users-file", str(users), "--password-file", str(secret)]) == 2


def test_operator_settings_are_validated():
    from drimbox.config import SettingsError, load_settings

    assert load_settings({"DRIMbox": {"Operator": {"SessionIdleMinutes": 5}}}).operator.session_idle_minutes == 5
    with pytest.raises(SettingsError, match="Operator.LoginMaxFailures"):
        load_settings({"DRIMbox": {"Operator": {"LoginMaxFailures": 0}}})
    with pytest.raises(SettingsError, match="Operator: unknown key"):
        load_settings({"DRIMbox": {"Operator": {"Password": "x"}}})
