"""The admin entry through nginx: login page and session cookie, CSRF refusals, method overrides, login locks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from drimbox.store import Store
from drimbox.testing import demo_study, start_box
from operator_helpers import (
    COOKIE_NAME,
    PAGE_LOAD,
    anonymous,
    browser_login,
    same_origin,
    submit_login,
)

pytestmark = pytest.mark.integration

EVIL = "https://evil.example"


def test_page_load_goes_to_login_then_the_session_opens_orthanc_explorer_until_logout(box):
    visitor = anonymous(box)
    first = visitor.get(box.admin_url + "/app/explorer.html", headers=PAGE_LOAD, allow_redirects=False, timeout=30)
    assert first.status_code == 303
    assert first.headers["Location"] == "/drimbox/operator/login?next=%2Fapp%2Fexplorer.html"

    page = visitor.get(box.admin_url + first.headers["Location"], headers=PAGE_LOAD, timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'lang="fr"' in page.text and "Log in" in page.text and "Se connecter" in page.text
    assert '<label for="user"' in page.text and '<label for="password"' in page.text  # keyboard and screen readers
    assert 'name="next" value="/app/explorer.html"' in page.text

    answer = submit_login(box, visitor, box.operator_password)
    assert answer.status_code == 303 and answer.headers["Location"] == "/app/explorer.html"
    cookie = answer.headers["Set-Cookie"]
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert cookie.startswith(COOKIE_NAME + "=")
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= set(attributes)
    token = visitor.cookies.get(COOKIE_NAME) or ""
    assert len(token) >= 40  # opaque random token

    explorer = visitor.get(box.admin_url + "/app/explorer.html", headers=PAGE_LOAD, timeout=30)
    assert explorer.status_code == 200 and "Orthanc Explorer" in explorer.text
    assert "../drimbox/ui" in visitor.get(box.admin_url + "/plugins/explorer.js", timeout=30).text
    system = visitor.get(box.admin_url + "/system", headers={"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"},
                         timeout=30)
    assert system.status_code == 200 and "DicomAet" in system.json()
    assert visitor.get(box.admin_url + "/drimbox/ui", headers=PAGE_LOAD, timeout=30).status_code == 200

    via_get = visitor.get(box.admin_url + "/drimbox/operator/logout", headers=PAGE_LOAD, allow_redirects=False,
                          timeout=30)
    assert via_get.status_code == 303 and via_get.headers["Location"] == "/drimbox/operator/login"
    assert visitor.get(box.admin_url + "/system", timeout=30).status_code == 200  # a GET logs nobody out

    logout = visitor.post(box.admin_url + "/drimbox/operator/logout", headers={**PAGE_LOAD, **same_origin(box)},
                          allow_redirects=False, timeout=30)
    assert logout.status_code == 303 and logout.headers["Location"] == "/drimbox/operator/login"
    assert "max-age=0" in logout.headers["Set-Cookie"].lower()
    # the old token is dead on the server, not only forgotten by the browser
    replay = anonymous(box).get(box.admin_url + "/system", cookies={COOKIE_NAME: token}, timeout=30)
    assert replay.status_code == 401
    entries = Store.open(f"sqlite:///{box.data_dir}/state/drimbox.db").search_audit(limit=50)
    assert {"operator-login", "operator-logout"} <= {e["action"] for e in entries}


def test_wrong_password_and_open_redirect_are_refused(box):
    visitor = anonymous(box)
    wrong = submit_login(box, visitor, "not-the-password")
    assert wrong.status_code == 401 and COOKIE_NAME not in wrong.headers.get("Set-Cookie", "")
    assert "Wrong user name or password" in wrong.text
    elsewhere = submit_login(box, visitor, box.operator_password, next_path="//evil.example/x")
    assert elsewhere.status_code == 303 and elsewhere.headers["Location"] == "/app/explorer.html"
    api = anonymous(box).get(box.admin_url + "/system", timeout=30)
    assert api.status_code == 401 and api.headers["WWW-Authenticate"].startswith("Basic")


def test_state_changing_requests_need_the_entrys_own_origin(box, tmp_path):
    study = demo_study(tmp_path / "study", series=(("CT", 1),))
    dicom = next(Path(tmp_path / "study").rglob("*.dcm")).read_bytes()
    browser, _ = browser_login(box)
    api = box.operator_session()  # HTTP Basic, as the CLI

    def upload(session, headers):
        return session.post(box.admin_url + "/instances", data=dicom, timeout=30,
                            headers={"Content-Type": "application/dicom", **headers})

    def stored() -> int:
        return len(api.get(box.admin_url + "/instances", timeout=30).json())

    refused = [
        upload(browser, {"Origin": EVIL}),
        upload(browser, {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}),
        upload(browser, {"Sec-Fetch-Site": "same-site", "Origin": "https://localhost:1"}),
        upload(browser, {}),  # the session cookie without Origin
        upload(api, {"Origin": EVIL}),  # Basic credentials a browser would replay do not help either
        upload(api, {"Origin": "null"}),
    ]
    for answer in refused:
        assert answer.status_code == 403, answer.text
        assert answer.json()["status"] == 403 and answer.json()["error"]
    assert stored() == 0

    assert upload(browser, same_origin(box)).status_code == 200
    assert stored() == 1
    assert upload(api, {}).status_code == 200  # an API client (no Origin) with Basic credentials
    reconcile = browser.post(f"{box.admin_url}/drimbox/studies/{study.study_uid}/reconcile",
                             headers=same_origin(box), timeout=30)
    assert reconcile.status_code == 202

    audit = api.get(box.admin_url + "/drimbox/audit", timeout=30).json()
    assert sum(1 for e in audit if e["action"] == "operator-request-refused" and e["outcome_status"] == 403) >= 6


def test_method_overrides_are_refused(box, tmp_path):
    demo_study(tmp_path / "study", series=(("CT", 1),))
    dicom = next(Path(tmp_path / "study").rglob("*.dcm")).read_bytes()
    api = box.operator_session()
    browser, _ = browser_login(box)
    instance = api.post(box.admin_url + "/instances", data=dicom, timeout=30).json()["ID"]
    url = f"{box.admin_url}/instances/{instance}"
    tricks = [
        api.get(url + "?_method=DELETE", timeout=30),
        api.get(url + "?_METHOD=delete", timeout=30),
        api.get(url + "?%5Fmethod=DELETE", timeout=30),
        api.get(url, headers={"X-HTTP-Method-Override": "DELETE"}, timeout=30),
        api.post(url, headers={"X-HTTP-Method-Override": "DELETE"}, timeout=30),
        api.get(url, headers={"X-HTTP-Method": "DELETE"}, timeout=30),
        api.get(url, headers={"X-Method-Override": "DELETE"}, timeout=30),
        browser.get(url + "?_method=DELETE", headers=same_origin(box), timeout=30),
    ]
    for answer in tricks:
        assert answer.status_code in (400, 405), (answer.request.url, answer.status_code, answer.text)
    assert api.get(url, timeout=30).status_code == 200  # still there


def test_sessions_expire_when_idle(tmp_path, pki):
    box = start_box(tmp_path / "box", pki=pki, settings={"Operator": {"SessionIdleMinutes": 0.05}})
    try:
        browser, _ = browser_login(box)
        assert browser.get(box.admin_url + "/system", timeout=30).status_code == 200
        time.sleep(3.5)
        expired = browser.get(box.admin_url + "/app/explorer.html", headers=PAGE_LOAD, allow_redirects=False,
                              timeout=30)
        assert expired.status_code == 303 and expired.headers["Location"].startswith("/drimbox/operator/login?")
        assert browser.get(box.admin_url + "/system", timeout=30).status_code == 401
    finally:
        box.stop()


def test_failed_logins_lock_the_address_and_the_user_across_a_restart(tmp_path, pki):
    box = start_box(tmp_path / "box", pki=pki, settings={"Operator": {"LoginMaxFailures": 5, "LoginLockSeconds": 120}})
    try:
        visitor = anonymous(box)
        for _ in range(4):
            assert submit_login(box, visitor, "guess").status_code == 401
        fifth = submit_login(box, visitor, "guess")
        assert fifth.status_code == 401
        locked = submit_login(box, visitor, box.operator_password)  # even the right password now
        assert locked.status_code == 429 and 60 < int(locked.headers["Retry-After"]) <= 120
        assert COOKIE_NAME not in locked.headers.get("Set-Cookie", "")
        basic = box.operator_session().get(box.admin_url + "/system", timeout=30)
        assert basic.status_code == 429 and int(basic.headers["Retry-After"]) > 60

        box.restart_orthanc()
        assert submit_login(box, anonymous(box), box.operator_password).status_code == 429

        audit = Store.open(f"sqlite:///{box.data_dir}/state/drimbox.db").search_audit(limit=100)
        failures = [e for e in audit if e["action"] == "operator-login" and e["outcome_status"] == 401]
        lockouts = [e for e in audit if e["outcome_status"] == 429]
        assert len(failures) == 5 and len(lockouts) >= 3
        assert "locked for 120 s" in failures[0]["reason"]  # the newest failure is the one that locked
    finally:
        box.stop()


def test_a_password_changed_with_the_cli_works_at_once(box, tmp_path):
    from drimbox.cli import main

    secret = tmp_path / "new-password"
    secret.write_text("another operator password\n")
    assert main(["operator", "passwd", "--users-file", str(box.operator_users_file), "--password-file",
                 str(secret)]) == 0
    assert submit_login(box, anonymous(box), box.operator_password).status_code == 401
    assert submit_login(box, anonymous(box), "another operator password").status_code == 303
