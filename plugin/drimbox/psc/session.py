"""Signed, expiring cookie values for the web layer: the login in progress, then the logged-in user.

Values are signed (HMAC-SHA256 with a server secret), not encrypted: the browser can read them, nobody can
change them. ``purpose`` separates kinds of values so a login-state cookie never passes for a session.
Pure functions, no web framework.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from drimbox.psc.access_reason import AccessReason
from drimbox.psc.model import ActivityChoice, Professional

FORMAT_VERSION = "v1"
LOGIN_PURPOSE = "psc-login"
SESSION_PURPOSE = "psc-session"
MIN_SECRET_BYTES = 32


class SessionError(Exception):
    """A cookie value is missing, tampered with, expired or for another purpose."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# ---------------------------------------------------------------- generic sign / verify
def seal(payload: dict[str, Any], secret: bytes, *, purpose: str, max_age: float, now: float | None = None) -> str:
    """``payload`` + expiry, signed. The result is cookie-safe (base64url and dots)."""
    _check_secret(secret)
    now = time.time() if now is None else now
    body = dict(payload, _exp=now + max_age)
    encoded = FORMAT_VERSION + "." + _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return encoded + "." + _b64(_mac(secret, purpose, encoded))


def unseal(value: str, secret: bytes, *, purpose: str, now: float | None = None) -> dict[str, Any]:
    _check_secret(secret)
    if not value:
        raise SessionError("no cookie value", reason="missing")
    try:
        version, body, signature = value.split(".")
    except ValueError:
        raise SessionError("malformed cookie value", reason="malformed") from None
    if version != FORMAT_VERSION:
        raise SessionError(f"unknown cookie format {version!r}", reason="malformed")
    expected = _mac(secret, purpose, f"{version}.{body}")
    try:
        given = _unb64(signature)
    except ValueError:
        raise SessionError("malformed cookie value", reason="malformed") from None
    if not hmac.compare_digest(expected, given):
        raise SessionError("cookie signature does not match", reason="bad_signature")
    # Parsed only once authenticated: JSON from a client could be nested deep enough to exhaust the stack.
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        raise SessionError("malformed cookie value", reason="malformed") from None
    now = time.time() if now is None else now
    if not isinstance(payload, dict) or now >= float(payload.pop("_exp", 0)):
        raise SessionError("cookie expired", reason="expired")
    return payload


def new_secret() -> bytes:
    return secrets.token_bytes(MIN_SECRET_BYTES)


def load_or_create_secret(path: str | Path) -> bytes:
    """Read the server secret from ``path``, creating it (mode 0600) on first use."""
    path = Path(path)
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = new_secret()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
    _check_secret(secret)
    return secret


def is_safe_return_url(url: str) -> bool:
    """Only a path on this host may be returned to after login (no open redirect).

    Browsers strip tabs and newlines from a URL, read a backslash as a slash and ``///host`` as ``//host``; so
    the value, and its percent-decoded form, must parse as a bare path starting with a single ``/`` and hold no
    control character and no backslash.
    """
    for form in (url, unquote(url)):
        if not form.startswith("/") or form.startswith("//") or "\\" in form:
            return False
        if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in form):
            return False
        parts = urlsplit(form)
        if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
            return False
    return True


# ---------------------------------------------------------------- the login in progress
@dataclass(frozen=True)
class LoginState:
    state: str
    nonce: str
    return_url: str = "/"


def begin_login(return_url: str = "/") -> LoginState:
    """Fresh random state and nonce; an unsafe return URL falls back to ``/``."""
    return LoginState(
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        return_url=return_url if is_safe_return_url(return_url) else "/",
    )


def seal_login_state(login: LoginState, secret: bytes, *, max_age: float = 600, now: float | None = None) -> str:
    return seal(dataclasses.asdict(login), secret, purpose=LOGIN_PURPOSE, max_age=max_age, now=now)


def open_login_state(value: str, secret: bytes, *, state: str, now: float | None = None) -> LoginState:
    """The login started by this browser, provided ``state`` (from PSC's redirect) matches it."""
    payload = unseal(value, secret, purpose=LOGIN_PURPOSE, now=now)
    login = LoginState(**{k: str(payload.get(k, "")) for k in ("state", "nonce", "return_url")})
    if not state or not hmac.compare_digest(login.state, state):
        raise SessionError("the state returned by PSC does not match this browser's login", reason="state_mismatch")
    return login


# ---------------------------------------------------------------- the logged-in user
@dataclass(frozen=True)
class UserSession:
    """The logged-in professional. PSC tokens are 1-2 kB each, so by default the cookie does not carry them:
    keep them server-side under ``session_id`` (see :mod:`drimbox.psc.token_store`)."""

    professional: Professional
    expires_at: float
    activity_key: str = ""
    access_reason: str = ""  # an AccessReason value
    access_reason_text: str = ""  # free text, for the audit trail
    access_token: str = ""
    id_token: str = ""  # kept for the end-session id_token_hint
    session_id: str = dataclasses.field(default_factory=lambda: secrets.token_urlsafe(18))

    @property
    def activity(self) -> ActivityChoice | None:
        if not self.activity_key:
            return None
        try:
            return self.professional.activity_choice(self.activity_key)
        except KeyError:
            return None

    @property
    def reason(self) -> AccessReason | None:
        return AccessReason(self.access_reason) if self.access_reason else None

    def with_activity(self, key: str) -> "UserSession":
        self.professional.activity_choice(key)  # KeyError for an activity the professional does not have
        return dataclasses.replace(self, activity_key=key)

    def with_access_reason(self, reason: AccessReason | str, text: str = "") -> "UserSession":
        return dataclasses.replace(self, access_reason=AccessReason.parse(str(getattr(reason, "value", reason))).value,
                                   access_reason_text=text)


def seal_user_session(session: UserSession, secret: bytes, *, include_tokens: bool = False,
                      now: float | None = None) -> str:
    """The cookie value (about 1-2 kB without tokens; browsers refuse cookies over 4 kB)."""
    now = time.time() if now is None else now
    payload = {
        "professional": session.professional.to_dict(),
        "expires_at": session.expires_at,
        "activity_key": session.activity_key,
        "access_reason": session.access_reason,
        "access_reason_text": session.access_reason_text,
        "session_id": session.session_id,
    }
    if include_tokens:
        payload.update(access_token=session.access_token, id_token=session.id_token)
    return seal(payload, secret, purpose=SESSION_PURPOSE, max_age=max(session.expires_at - now, 0), now=now)


def open_user_session(value: str, secret: bytes, *, now: float | None = None) -> UserSession:
    payload = unseal(value, secret, purpose=SESSION_PURPOSE, now=now)
    try:
        return UserSession(
            professional=Professional.from_dict(payload["professional"]),
            expires_at=float(payload["expires_at"]),
            activity_key=str(payload.get("activity_key", "")),
            access_reason=str(payload.get("access_reason", "")),
            access_reason_text=str(payload.get("access_reason_text", "")),
            access_token=str(payload.get("access_token", "")),
            id_token=str(payload.get("id_token", "")),
            session_id=str(payload["session_id"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SessionError(f"session cookie content is incomplete: {exc}", reason="malformed") from exc


def _mac(secret: bytes, purpose: str, data: str) -> bytes:
    return hmac.new(secret, f"{purpose}|{data}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the session secret must be at least {MIN_SECRET_BYTES} random bytes")
