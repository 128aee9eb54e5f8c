import dataclasses

import pytest

from drimbox.psc.access_reason import AccessReason
from drimbox.psc.model import Activity, Exercice, Professional
from drimbox.psc.session import (
    SessionError,
    UserSession,
    begin_login,
    is_safe_return_url,
    load_or_create_secret,
    open_login_state,
    open_user_session,
    seal,
    seal_login_state,
    seal_user_session,
    unseal,
)

SECRET = b"s" * 32
OTHER_SECRET = b"o" * 32


def professional() -> Professional:
    return Professional(
        id_nat="810002000023",
        given_name="Paul",
        family_name="DURAND",
        exercices=(Exercice("10", specialty_code="SM54", activities=(
            Activity("CABINET DU DOCTEUR DURAND", "SA07", "410002000023001"),
            Activity("CENTRE HOSPITALIER", "SA01", "1690000001"),
        )),),
    )


def test_seal_round_trip_and_expiry():
    value = seal({"a": 1}, SECRET, purpose="x", max_age=10, now=1000)
    assert unseal(value, SECRET, purpose="x", now=1009) == {"a": 1}
    with pytest.raises(SessionError) as error:
        unseal(value, SECRET, purpose="x", now=1010)
    assert error.value.reason == "expired"


@pytest.mark.parametrize("mutate", [
    lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),
    lambda v: v.split(".")[0] + "." + v.split(".")[1][:-1] + "x." + v.split(".")[2],
])
def test_tampered_value_is_refused(mutate):
    value = seal({"a": 1}, SECRET, purpose="x", max_age=10, now=1000)
    with pytest.raises(SessionError) as error:
        unseal(mutate(value), SECRET, purpose="x", now=1001)
    assert error.value.reason in ("bad_signature", "malformed")


def test_other_secret_or_purpose_is_refused():
    value = seal({"a": 1}, SECRET, purpose="x", max_age=10, now=1000)
    for secret, purpose in ((OTHER_SECRET, "x"), (SECRET, "y")):
        with pytest.raises(SessionError) as error:
            unseal(value, secret, purpose=purpose, now=1001)
        assert error.value.reason == "bad_signature"


def test_short_secret_is_refused():
    with pytest.raises(ValueError, match="32"):
        seal({}, b"short", purpose="x", max_age=1)


def test_login_state_round_trip_and_state_mismatch():
    login = begin_login("/consumer/exams?x=1")
    assert login.state != login.nonce and len(login.state) >= 24
    cookie = seal_login_state(login, SECRET, now=1000)
    assert open_login_state(cookie, SECRET, state=login.state, now=1001) == login
    with pytest.raises(SessionError) as error:
        open_login_state(cookie, SECRET, state="forged", now=1001)
    assert error.value.reason == "state_mismatch"


def test_login_state_is_not_a_user_session():
    cookie = seal_login_state(begin_login("/"), SECRET, now=1000)
    with pytest.raises(SessionError):
        open_user_session(cookie, SECRET, now=1001)


@pytest.mark.parametrize("url,safe", [
    ("/viewer?study=1", True), ("/", True),
    ("/drimbox/open?study=1.2.3&accession=A1&report=urn%3Aoid%3A1.2.3", True),
    ("/drimbox/psc/activity?return=%2Fdrimbox%2Fopen%3Fstudy%3D1.2", True),
    ("/viewer?next=//not-a-host-here", True),
    ("//evil.example/", False), ("https://evil.example/", False), ("https:evil.example", False),
    ("http://localhost/", False), ("javascript:alert(1)", False), ("evil.example/", False),
    ("/\\evil", False), ("\\\\evil.example", False), ("/\\/evil.example", False), ("\\/evil.example", False),
    ("/\t/evil.example", False), ("\t//evil.example", False), ("/\r\n/evil.example", False),
    ("/%09/evil.example", False), ("/%0d%0aLocation:%20https://evil.example", False), ("/%0a/evil.example", False),
    ("/%5cevil.example", False), ("/%5C%5Cevil.example", False), ("/%2fevil.example", False),
    ("/%2F%2Fevil.example", False), ("%2F%2Fevil.example", False), ("///evil.example", False),
    ("/\x00/evil", False), ("/\x85/evil", False), ("", False), (" /viewer", False),
    ("https%3A%2F%2Fevil.example", False),
])
def test_return_url_safety(url, safe):
    assert is_safe_return_url(url) is safe
    if not safe:
        assert begin_login(url).return_url == "/"


def test_user_session_round_trip_with_activity_and_reason():
    session = UserSession(professional(), expires_at=2000, access_token="at", id_token="it")
    session = session.with_activity("0.1").with_access_reason(AccessReason.EMERGENCY, "patient inconscient")
    restored = open_user_session(seal_user_session(session, SECRET, now=1000), SECRET, now=1500)
    assert (restored.access_token, restored.id_token) == ("", "")  # tokens stay server-side by default
    assert restored == dataclasses.replace(session, access_token="", id_token="")
    assert restored.session_id == session.session_id and len(session.session_id) >= 24
    with_tokens = open_user_session(seal_user_session(session, SECRET, include_tokens=True, now=1000), SECRET,
                                    now=1500)
    assert with_tokens == session
    assert restored.activity.activity.structure_id == "1690000001"
    assert restored.reason is AccessReason.EMERGENCY
    assert restored.reason.purpose_of_use == "bris_de_glace"
    assert restored.access_reason_text == "patient inconscient"
    with pytest.raises(SessionError):
        open_user_session(seal_user_session(session, SECRET, now=1000), SECRET, now=2000)


def test_user_session_refuses_unknown_activity_and_reason():
    session = UserSession(professional(), expires_at=2000)
    with pytest.raises(KeyError):
        session.with_activity("3.0")
    with pytest.raises(ValueError, match="unknown access reason"):
        session.with_access_reason("curiosity")


def test_access_reasons_map_to_vihf_purpose_of_use():
    assert {r.value: r.purpose_of_use for r in AccessReason} == {
        "consent": "normal", "emergency": "bris_de_glace", "regulation": "centre_15"}


def test_secret_file_is_created_once_with_private_mode(tmp_path):
    path = tmp_path / "keys" / "session.key"
    first = load_or_create_secret(path)
    assert load_or_create_secret(path) == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_sessions_get_distinct_ids():
    assert UserSession(professional(), 1).session_id != UserSession(professional(), 1).session_id
