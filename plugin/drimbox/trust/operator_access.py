"""Who may use the operator (admin) entry, and which of their requests are refused. The one place that decides.

nginx asks :meth:`OperatorAccess.decide` (through ``/drimbox/operator/authz``, ``auth_request``) before every
request of the admin entry reaches Orthanc, and copies the operator's name it answers into
``X-Drimbox-Operator`` (which the gate requires). A request is refused when:

- it asks Orthanc to change its method (``?_method=``, ``X-HTTP-Method-Override`` and kin): 400;
- it changes state (any method but GET/HEAD) and its ``Origin`` is not the admin entry's own, or its
  ``Sec-Fetch-Site`` says another site, or it rides on the session cookie without an ``Origin``: 403;
- it has neither a live session (cookie ``__Host-drimbox-operator``) nor valid HTTP Basic credentials (for API
  clients: the CLI, scripts): a browser's page load is sent to the login page (303), anything else gets 401;
- its source address or user name is locked after too many failed logins: 429 with ``Retry-After``.

Sessions and failed-login counts live in the store, so a restart keeps both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from drimbox.audit.event import ENTRY_OPERATOR, AuditEvent
from drimbox.store import Store
from drimbox.trust.operator_password import OperatorUsers
from drimbox.web.operator_settings import OperatorSettings

COOKIE_NAME = "__Host-drimbox-operator"
LOGIN_PATH = "/drimbox/operator/login"
LOGOUT_PATH = "/drimbox/operator/logout"
PUBLIC_PATHS = (LOGIN_PATH, LOGOUT_PATH)
DEFAULT_LANDING = "/app/explorer.html"
SAFE_METHODS = ("GET", "HEAD")
# nginx hands X-HTTP-Method-Override to the decision as X-Drimbox-Method-Override (Orthanc would obey it)
OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override", "x-drimbox-method-override")
CLIENT_ADDR_HEADER = "x-drimbox-client-addr"
TOUCH_EVERY_SECONDS = 15.0


@dataclass(frozen=True)
class Decision:
    status: int  # 200 allowed; 303 to the login page; 400, 401, 403, 429 refused
    reason: str = ""
    operator: str = ""
    location: str = ""
    retry_after: int = 0
    www_authenticate: str = ""


@dataclass(frozen=True)
class PasswordOutcome:
    ok: bool
    status: int  # 200, 401 or 429
    retry_after: int = 0


class LoginLimiter:
    """Failed logins per source address and per user name; the lock doubles at every failure past the limit."""

    def __init__(self, store: Store, settings: OperatorSettings, clock: Callable[[], float]):
        self.store = store
        self.settings = settings
        self.clock = clock

    @staticmethod
    def keys(client_addr: str, user: str) -> list[str]:
        return [f"ip:{client_addr or '?'}", f"user:{user}"]

    def retry_after(self, client_addr: str, user: str) -> tuple[float, bool]:
        """Seconds until a login may be tried again (0: now), and whether any failure is on record."""
        now = self.clock()
        rows = self.store.login_failures(self.keys(client_addr, user)).values()
        return max([row["locked_until"] - now for row in rows] + [0.0]), bool(rows)

    def failure(self, client_addr: str, user: str) -> float:
        now = self.clock()
        forget_before = now - self.settings.login_failure_window_minutes * 60
        rows = [self.store.record_login_failure(key, now=now, forget_before=forget_before, lock_for=self._lock_for)
                for key in self.keys(client_addr, user)]
        return max(row["locked_until"] - now for row in rows)

    def success(self, client_addr: str, user: str) -> None:
        self.store.clear_login_failures(self.keys(client_addr, user))

    def _lock_for(self, failures: int) -> float:
        beyond = failures - self.settings.login_max_failures
        if beyond < 0:
            return 0.0
        return min(self.settings.login_lock_seconds * 2 ** min(beyond, 30), self.settings.login_lock_max_seconds)


class OperatorSessions:
    """Opaque session tokens: the cookie holds the token, the store its SHA-256, the user and the expiry."""

    def __init__(self, store: Store, settings: OperatorSettings, clock: Callable[[], float]):
        self.store = store
        self.settings = settings
        self.clock = clock

    def open(self, user: str) -> str:
        now = self.clock()
        self.store.purge_operator_sessions(expired_before=now, idle_before=now - self._idle())
        token = secrets.token_urlsafe(32)
        self.store.add_operator_session(_digest(token), user, now=now,
                                        expires_at=now + self.settings.session_max_hours * 3600)
        return token

    def user_for(self, token: str) -> str:
        if not token:
            return ""
        row = self.store.get_operator_session(_digest(token))
        now = self.clock()
        if row is None or now >= row["expires_at"] or now - row["last_seen"] >= self._idle():
            return ""
        if now - row["last_seen"] >= TOUCH_EVERY_SECONDS:
            self.store.touch_operator_session(row["token_hash"], now)
        return str(row["user"])

    def close(self, token: str) -> None:
        if token:
            self.store.delete_operator_session(_digest(token))

    def cookie(self, token: str) -> str:
        return f"{COOKIE_NAME}={token}; Path=/; Secure; HttpOnly; SameSite=Strict"

    @staticmethod
    def clearing_cookie() -> str:
        return f"{COOKIE_NAME}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Strict"

    def _idle(self) -> float:
        return self.settings.session_idle_minutes * 60


class OperatorAccess:
    def __init__(self, store: Store, settings: OperatorSettings, *, clock: Callable[[], float] = time.time):
        self.store = store
        self.users = OperatorUsers(settings.users_file)
        self.limiter = LoginLimiter(store, settings, clock)
        self.sessions = OperatorSessions(store, settings, clock)
        self.clock = clock

    # --- passwords (the login form and HTTP Basic) -----------------------------------------------
    def check_password(self, user: str, password: str, client_addr: str, *, action: str) -> PasswordOutcome:
        locked, failed_before = self.limiter.retry_after(client_addr, user)
        if locked > 0:
            self._audit(action, 429, f"user {user!r} from {client_addr}: locked after failed logins")
            return PasswordOutcome(False, 429, _seconds(locked))
        if self.users.check(user, password):
            if failed_before:
                self.limiter.success(client_addr, user)
            return PasswordOutcome(True, 200)
        lock = self.limiter.failure(client_addr, user)
        self._audit(action, 401, f"user {user!r} from {client_addr}: wrong user name or password"
                    + (f"; locked for {_seconds(lock)} s" if lock > 0 else ""))
        return PasswordOutcome(False, 401)

    def login(self, user: str, password: str, client_addr: str) -> tuple[PasswordOutcome, str]:
        """The login form: the outcome and, when it succeeded, the new session's token."""
        outcome = self.check_password(user, password, client_addr, action="operator-login")
        if not outcome.ok:
            return outcome, ""
        self._audit("operator-login", 200, f"user {user!r} from {client_addr}: logged in")
        return outcome, self.sessions.open(user)

    def logout(self, headers: dict[str, str], client_addr: str) -> None:
        token = session_token(headers)
        user = self.sessions.user_for(token)
        self.sessions.close(token)
        if user:
            self._audit("operator-logout", 200, f"user {user!r} from {client_addr}: logged out")

    # --- the decision --------------------------------------------------------------------------
    def decide(self, method: str, uri: str, headers: dict[str, str]) -> Decision:
        method = method.upper() or "GET"
        client_addr = headers.get(CLIENT_ADDR_HEADER, "")
        parts = urlsplit(uri)
        path = unquote(parts.path)
        if any(name in headers for name in OVERRIDE_HEADERS) or any(
                key.strip().lower() == "_method" for key, _ in parse_qsl(parts.query, keep_blank_values=True)):
            return self._refuse(400, "method override (_method, X-HTTP-Method-Override) is not accepted",
                                method, path, client_addr)
        state_changing = method not in SAFE_METHODS
        origin = headers.get("origin", "")
        if state_changing:
            own = own_origin(headers)
            if origin and origin != own:
                return self._refuse(403, f"cross-origin request refused: Origin {origin!r} is not {own!r}",
                                    method, path, client_addr)
            fetch_site = headers.get("sec-fetch-site", "")
            if fetch_site and fetch_site not in ("same-origin", "none"):
                return self._refuse(403, f"cross-site request refused (Sec-Fetch-Site: {fetch_site})",
                                    method, path, client_addr)
        user = self.sessions.user_for(session_token(headers))
        if user:
            if state_changing and not origin:
                return self._refuse(403, "a state-changing request with the session cookie must carry Origin",
                                    method, path, client_addr)
            return Decision(200, operator=user)
        if path in PUBLIC_PATHS:
            return Decision(200)
        basic = basic_credentials(headers.get("authorization", ""))
        if basic is not None:
            outcome = self.check_password(*basic, client_addr, action="operator-basic-auth")
            if outcome.ok:
                return Decision(200, operator=basic[0])
            if outcome.status == 429:
                return Decision(429, "too many failed logins: try again later", retry_after=outcome.retry_after)
            return Decision(401, "wrong user name or password", www_authenticate=BASIC_CHALLENGE)
        if method in SAFE_METHODS and _is_page_load(headers):
            return Decision(303, "not logged in", location=login_location(uri))
        challenge = "" if "sec-fetch-mode" in headers else BASIC_CHALLENGE
        return Decision(401, "not logged in: log in at " + LOGIN_PATH, www_authenticate=challenge)

    def _refuse(self, status: int, reason: str, method: str, path: str, client_addr: str) -> Decision:
        self._audit("operator-request-refused", status, f"{method} {path[:200]} from {client_addr}: {reason}")
        return Decision(status, reason)

    def _audit(self, action: str, status: int, reason: str) -> None:
        event = AuditEvent(when=datetime.fromtimestamp(self.clock(), timezone.utc), entry_point=ENTRY_OPERATOR,
                           action=action, outcome_status=status, reason=reason)
        self.store.add_audit(event.to_row())


BASIC_CHALLENGE = 'Basic realm="DRIMbox operator", charset="UTF-8"'


def own_origin(headers: dict[str, str]) -> str:
    """The admin entry's origin, from the host nginx received the request on (``Forwarded: host=..``)."""
    for element in headers.get("forwarded", "").split(";"):
        name, _, value = element.strip().partition("=")
        if name.lower() == "host" and value:
            return "https://" + value.strip('"').lower()
    return ""


def session_token(headers: dict[str, str]) -> str:
    for item in headers.get("cookie", "").split(";"):
        name, sep, value = item.strip().partition("=")
        if sep and name == COOKIE_NAME:
            return value.strip()
    return ""


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep and user else None


def login_location(uri: str) -> str:
    return f"{LOGIN_PATH}?next={quote(uri, safe='')}"


def safe_next(target: str) -> str:
    """Where to go after logging in: a path of this entry only (never another site)."""
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target) or target.startswith(LOGIN_PATH)):
        return DEFAULT_LANDING
    return target


def _is_page_load(headers: dict[str, str]) -> bool:
    mode = headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in headers.get("accept", "")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _seconds(value: float) -> int:
    return max(1, int(value + 0.999))
