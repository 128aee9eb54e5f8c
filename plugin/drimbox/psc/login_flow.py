"""The two halves of a PSC login as the web layer uses them: send the browser away, take it back.

``start_login`` gives the URL to redirect to and the signed login-state cookie to set; ``finish_login``
checks PSC's callback against that cookie and returns the logged-in :class:`UserSession`. Every failure is
a :class:`PscError` whose ``reason`` says what went wrong (``access_denied``, ``state_mismatch``,
``nonce_mismatch``, ``expired``...).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Mapping

from drimbox.psc.client import PscClient
from drimbox.psc.errors import PscError
from drimbox.psc.token_store import SessionTokens
from drimbox.psc.session import (
    SessionError,
    UserSession,
    begin_login,
    open_login_state,
    seal_login_state,
)

LOGIN_COOKIE_MAX_AGE = 600


@dataclass(frozen=True)
class LoginStart:
    redirect_url: str  # send the browser here (302/303)
    login_cookie: str  # set as an HttpOnly, Secure, SameSite=Lax cookie until the callback


@dataclass(frozen=True)
class LoginResult:
    session: UserSession  # carries the tokens in memory; its cookie form does not
    tokens: SessionTokens  # to keep server-side under session.session_id
    return_url: str
    id_token_claims: dict


def start_login(client: PscClient, secret: bytes, return_url: str = "/", *, login_hint: str | None = None,
                prompt: str | None = None, now: float | None = None) -> LoginStart:
    login = begin_login(return_url)
    pkce = {"code_challenge": code_challenge(pkce_verifier(secret, login.state)), "code_challenge_method": "S256"}
    url = client.authorization_url(login.state, login.nonce, login_hint=login_hint, prompt=prompt, extra_params=pkce)
    return LoginStart(url, seal_login_state(login, secret, max_age=LOGIN_COOKIE_MAX_AGE, now=now))


def pkce_verifier(secret: bytes, state: str) -> str:
    """The PKCE code verifier of the login ``state`` (RFC 7636, 43 characters). Derived from the server secret,
    it exists only on the server: never in a URL, never in the browser's login-state cookie."""
    digest = hmac.new(secret, f"pkce|{state}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def code_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def finish_login(client: PscClient, secret: bytes, login_cookie: str, callback: Mapping[str, str], *,
                 session_seconds: float | None = None, now: float | None = None) -> LoginResult:
    """Handle PSC's redirect (``callback`` = its query parameters).

    The session lasts ``session_seconds``, by default the access token's lifetime. A professional with a
    single activity gets it preselected; otherwise the web layer asks (``UserSession.with_activity``).
    """
    now = time.time() if now is None else now
    if callback.get("error"):
        description = callback.get("error_description") or ""
        raise PscError(f"PSC refused the login: {callback['error']} {description}".strip(), reason=callback["error"])
    try:
        login = open_login_state(login_cookie, secret, state=callback.get("state", ""), now=now)
    except SessionError as exc:
        raise PscError(f"login state refused: {exc}", reason=exc.reason) from exc
    tokens = client.exchange_code(callback.get("code", ""), pkce_verifier(secret, login.state))
    claims = client.validate_id_token(tokens.id_token, login.nonce, access_token=tokens.access_token)
    professional = client.userinfo(tokens.access_token)
    if professional.sub and claims.get("sub") and professional.sub != claims["sub"]:
        raise PscError("PSC userinfo describes another subject than the ID token", reason="subject_mismatch")
    lifetime = session_seconds if session_seconds is not None else (tokens.expires_in or 300)
    session = UserSession(professional=professional, expires_at=now + lifetime,
                          access_token=tokens.access_token, id_token=tokens.id_token)
    choices = professional.activity_choices()
    if len(choices) == 1:
        session = session.with_activity(choices[0].key)
    stored = SessionTokens(tokens.access_token, tokens.id_token, tokens.refresh_token, session.expires_at)
    return LoginResult(session=session, tokens=stored, return_url=login.return_url, id_token_claims=claims)
