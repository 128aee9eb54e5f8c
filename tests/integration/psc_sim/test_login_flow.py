"""start_login / finish_login, the web layer's two calls, against the real simulator."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from drimbox.psc import PscError
from drimbox.psc.login_flow import finish_login, start_login
from drimbox.psc.session import open_user_session, seal_user_session

from .conftest import GENERAL_PRACTITIONER, RADIOLOGIST, LoginForm

pytestmark = pytest.mark.integration
SECRET = b"w" * 32


def callback_of(url: str) -> dict[str, str]:
    location = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_login_with_one_activity_preselects_it(make_client):
    client = make_client()
    start = start_login(client, SECRET, "/consumer/exams?id=1", login_hint=RADIOLOGIST, prompt="none")
    result = finish_login(client, SECRET, start.login_cookie, callback_of(start.redirect_url))
    assert result.return_url == "/consumer/exams?id=1"
    assert result.session.professional.id_nat == RADIOLOGIST
    assert result.session.activity.activity.sector_code == "SA08"
    assert result.tokens.access_token == result.session.access_token
    assert client.introspect(result.tokens.access_token).active
    cookie = seal_user_session(result.session, SECRET)
    assert len(cookie) < 3000
    assert open_user_session(cookie, SECRET).professional == result.session.professional


def test_login_with_two_activities_leaves_the_choice(make_client):
    client = make_client()
    start = start_login(client, SECRET, "/", login_hint=GENERAL_PRACTITIONER, prompt="none")
    result = finish_login(client, SECRET, start.login_cookie, callback_of(start.redirect_url), session_seconds=3600)
    assert result.session.activity is None and len(result.session.professional.activity_choices()) == 2
    assert result.tokens.expires_at == result.session.expires_at


def test_callback_of_another_login_is_refused(make_client):
    client = make_client()
    mine = start_login(client, SECRET, "/", login_hint=RADIOLOGIST, prompt="none")
    theirs = start_login(client, SECRET, "/", login_hint=RADIOLOGIST, prompt="none")
    with pytest.raises(PscError) as error:
        finish_login(client, SECRET, mine.login_cookie, callback_of(theirs.redirect_url))
    assert error.value.reason == "state_mismatch"


def test_cancelled_login_reports_access_denied(make_client):
    client = make_client()
    start = start_login(client, SECRET, "/")
    form = LoginForm(requests.get(start.redirect_url, timeout=5).text)
    name, value = form.buttons["cancel-login"]
    location = requests.post(form.action, data={**form.hidden, name: value}, allow_redirects=False,
                             timeout=5).headers["Location"]
    callback = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    with pytest.raises(PscError) as error:
        finish_login(client, SECRET, start.login_cookie, callback)
    assert error.value.reason == "access_denied"
