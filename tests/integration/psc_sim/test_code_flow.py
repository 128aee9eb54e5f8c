"""The whole authorization code flow, client against the real simulator, over loopback HTTP and HTTPS."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from drimbox.psc import PscError
from drimbox.psc.session import SessionError, begin_login, open_login_state, seal_login_state
from drimbox.sim.psc import PscSimulator

from .conftest import GENERAL_PRACTITIONER, RADIOLOGIST, REDIRECT_URI, LoginForm

pytestmark = pytest.mark.integration
SECRET = b"k" * 32


def callback_params(location: str) -> dict[str, str]:
    assert location.startswith(REDIRECT_URI + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_browser_style_login_page_flow(sim, make_client):
    client = make_client()
    login = begin_login("/consumer/exams")
    cookie = seal_login_state(login, SECRET)

    page = requests.get(client.authorization_url(login.state, login.nonce), timeout=5)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    form = LoginForm(page.text)
    assert {f"login-{RADIOLOGIST}", f"login-{GENERAL_PRACTITIONER}", "cancel-login"} <= set(form.buttons)
    assert len([b for b in form.buttons if b.startswith("login-")]) == 4

    name, value = form.buttons[f"login-{RADIOLOGIST}"]
    answer = requests.post(form.action, data={**form.hidden, name: value}, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    params = callback_params(answer.headers["Location"])

    restored = open_login_state(cookie, SECRET, state=params["state"])
    tokens = client.exchange_code(params["code"])
    claims = client.validate_id_token(tokens.id_token, restored.nonce, access_token=tokens.access_token)
    assert claims["acr"] == "eidas1" and claims["aud"] == "drimbox-test"
    assert claims["SubjectNameID"] == RADIOLOGIST

    professional = client.userinfo(tokens.access_token)
    assert professional.id_nat == RADIOLOGIST
    assert professional.exercices[0].specialty_code == "SM44"
    assert professional.raw["SubjectRefPro"]["exercices"][0]["codeProfession"] == "10"

    introspection = client.introspect(tokens.access_token)
    assert introspection.active and introspection.subject_name_id == RADIOLOGIST
    assert introspection.client_id == "drimbox-test" and introspection.exp > introspection.iat


def test_code_is_single_use(sim, make_client):
    client = make_client()
    location = requests.get(client.authorization_url("s", "n", login_hint=RADIOLOGIST, prompt="none"),
                            allow_redirects=False, timeout=5).headers["Location"]
    code = callback_params(location)["code"]
    client.exchange_code(code)
    with pytest.raises(PscError) as error:
        client.exchange_code(code)
    assert error.value.reason == "code_refused" and "invalid_grant" in str(error.value)


def test_cancel_returns_access_denied(sim, make_client):
    form = LoginForm(requests.get(make_client().authorization_url("st", "n"), timeout=5).text)
    name, value = form.buttons["cancel-login"]
    answer = requests.post(form.action, data={**form.hidden, name: value}, allow_redirects=False, timeout=5)
    assert callback_params(answer.headers["Location"]) == {"error": "access_denied", "state": "st"}


def test_https_flow_with_ca_bundle_and_wallet_host(tls_files, make_client):
    cert, key = tls_files
    # The authorization endpoint is announced on another host name, like PSC's wallet host.
    with PscSimulator(tls_cert=cert, tls_key=key, wallet_url="https://localhost:{port}") as tls_sim:
        assert tls_sim.issuer.startswith("https://127.0.0.1:")
        client = make_client(tls_sim, ca_bundle=cert)
        url = client.authorization_url("st", "nonce-1", login_hint=GENERAL_PRACTITIONER, prompt="none")
        assert url.startswith(f"https://localhost:{tls_sim.port}/auth?")
        answer = requests.get(url, allow_redirects=False, verify=cert, timeout=5)
        params = callback_params(answer.headers["Location"])
        tokens = client.exchange_code(params["code"])
        assert client.validate_id_token(tokens.id_token, "nonce-1")["SubjectNameID"] == GENERAL_PRACTITIONER
        assert client.introspect(tokens.access_token).active

        untrusting = make_client(tls_sim)  # no ca_bundle: the self-signed certificate must be refused
        with pytest.raises(PscError) as error:
            untrusting.discovery()
        assert error.value.reason == "unreachable"


def test_nonce_mismatch_is_refused(sim, make_client):
    client = make_client()
    tokens = client.exchange_code(callback_params(requests.get(
        client.authorization_url("st", "the-nonce", login_hint=RADIOLOGIST, prompt="none"),
        allow_redirects=False, timeout=5).headers["Location"])["code"])
    with pytest.raises(PscError) as error:
        client.validate_id_token(tokens.id_token, "another-nonce")
    assert error.value.reason == "nonce_mismatch"


def test_state_mismatch_is_refused(sim, make_client):
    client = make_client()
    login = begin_login("/")
    cookie = seal_login_state(login, SECRET)
    location = requests.get(client.authorization_url("attacker-state", login.nonce, login_hint=RADIOLOGIST,
                                                     prompt="none"), allow_redirects=False, timeout=5)
    params = callback_params(location.headers["Location"])
    with pytest.raises(SessionError) as error:
        open_login_state(cookie, SECRET, state=params["state"])
    assert error.value.reason == "state_mismatch"


def test_redirect_uri_mismatch_at_token_endpoint(sim, make_client):
    client = make_client()
    code = callback_params(requests.get(client.authorization_url("s", "n", login_hint=RADIOLOGIST, prompt="none"),
                                        allow_redirects=False, timeout=5).headers["Location"])["code"]
    other = make_client()
    other.redirect_uri = "http://127.0.0.1:1/elsewhere"
    with pytest.raises(PscError, match="invalid_grant"):
        other.exchange_code(code)


def test_prompt_none_without_known_hint_returns_login_required(sim, make_client):
    url = make_client().authorization_url("st", "n", login_hint="899999999999", prompt="none")
    params = callback_params(requests.get(url, allow_redirects=False, timeout=5).headers["Location"])
    assert params["error"] == "login_required" and params["state"] == "st"


def test_foreign_redirect_uri_is_refused_without_redirect(sim):
    answer = requests.get(sim.authorization_endpoint, params={
        "response_type": "code", "client_id": "x", "redirect_uri": "https://evil.example/cb", "scope": "openid",
        "state": "s", "nonce": "n"}, allow_redirects=False, timeout=5)
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert 'id="error"' in answer.text


def test_refresh_grant(sim, make_client):
    client = make_client()
    tokens = client.exchange_code(callback_params(requests.get(
        client.authorization_url("s", "n", login_hint=RADIOLOGIST, prompt="none"),
        allow_redirects=False, timeout=5).headers["Location"])["code"])
    renewed = client.refresh(tokens.refresh_token)
    assert renewed.access_token != tokens.access_token
    assert client.userinfo(renewed.access_token).id_nat == RADIOLOGIST


def pkce_code(client, verifier: str, **extra) -> str:
    from drimbox.psc.login_flow import code_challenge

    params = {"code_challenge": code_challenge(verifier), "code_challenge_method": "S256", **extra}
    location = requests.get(client.authorization_url("st", "n", login_hint=RADIOLOGIST, prompt="none",
                                                     extra_params=params), allow_redirects=False, timeout=5)
    return callback_params(location.headers["Location"])["code"]


def test_pkce_verifier_must_match_the_challenge(sim, make_client):
    client = make_client()
    verifier = "v" * 43
    assert client.exchange_code(pkce_code(client, verifier), verifier).access_token
    for wrong in ("w" * 43, None):
        with pytest.raises(PscError) as error:
            client.exchange_code(pkce_code(client, verifier), wrong)
        assert error.value.reason == "code_refused" and "code_verifier" in str(error.value)


def test_pkce_plain_method_is_refused_and_can_be_required(make_client):
    with PscSimulator(require_pkce=True) as strict:
        client = make_client(strict)
        refused = requests.get(client.authorization_url("st", "n", login_hint=RADIOLOGIST, prompt="none"),
                               allow_redirects=False, timeout=5)
        assert callback_params(refused.headers["Location"])["error"] == "invalid_request"
        plain = requests.get(client.authorization_url("st", "n", login_hint=RADIOLOGIST, prompt="none", extra_params={
            "code_challenge": "v" * 43, "code_challenge_method": "plain"}), allow_redirects=False, timeout=5)
        assert callback_params(plain.headers["Location"])["error"] == "invalid_request"
        assert client.exchange_code(pkce_code(client, "x" * 43), "x" * 43).access_token
