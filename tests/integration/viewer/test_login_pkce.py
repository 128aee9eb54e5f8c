"""PKCE (S256) on the box's PSC login, against the simulator: an injected authorization code is refused."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from .conftest import RADIOLOGIST, browser, query_of

pytestmark = pytest.mark.integration


def start(session, box) -> str:
    """The box's redirect to PSC for a new login (its Location)."""
    answer = session.get(box.vi_url + f"/drimbox/psc/login?return=/viewer&login_hint={RADIOLOGIST}&prompt=none",
                         allow_redirects=False, timeout=30)
    assert answer.status_code == 303
    return answer.headers["Location"]


def code_for(session, authorization_url: str) -> dict[str, str]:
    """Log in at PSC (prompt=none) and stop before the box's callback: its code and state."""
    answer = session.get(authorization_url, allow_redirects=False, timeout=30)
    assert answer.status_code == 302 and "/drimbox/psc/callback?" in answer.headers["Location"]
    return query_of(answer.headers["Location"])


def test_login_sends_an_s256_challenge_and_never_the_verifier(viewer_box):
    authorization = query_of(start(browser(viewer_box), viewer_box))
    assert authorization["code_challenge_method"] == "S256" and len(authorization["code_challenge"]) == 43
    assert "code_verifier" not in authorization


def test_a_code_from_another_login_is_refused_with_a_clear_error(viewer_box):
    victim, attacker = browser(viewer_box), browser(viewer_box)
    victim_state = query_of(start(victim, viewer_box))["state"]
    stolen = code_for(attacker, start(attacker, viewer_box))
    # the attacker's code, in the victim's browser, with the victim's state: the verifiers differ
    injected = victim.get(viewer_box.vi_url + "/drimbox/psc/callback?" + urlencode(
        {"code": stolen["code"], "state": victim_state}), allow_redirects=False, timeout=30)
    assert injected.status_code == 403
    assert "text/html" in injected.headers["Content-Type"]
    assert "La connexion Pro Santé Connect a échoué" in injected.text and "code_refused" in injected.text
    assert "drimbox_psc=" not in injected.headers.get("Set-Cookie", "")
    # a login completed in the browser that started it goes through (the refused code was spent: a new one)
    honest = browser(viewer_box)
    callback = urlencode(code_for(honest, start(honest, viewer_box)))
    own = honest.get(viewer_box.vi_url + "/drimbox/psc/callback?" + callback, allow_redirects=False, timeout=30)
    assert own.status_code == 303 and own.headers["Location"] == "/viewer"
