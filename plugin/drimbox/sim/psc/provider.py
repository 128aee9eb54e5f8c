"""The PSC simulator's protocol logic, without HTTP: clients, logins, codes, tokens, sessions.

Tokens are signed JWTs and also recorded here, so that revocation (end-session) and introspection of
unknown tokens behave like the real service. Thread-safe: the HTTP server calls it from many threads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

from drimbox.sim.psc.keys import SigningKey
from drimbox.sim.psc.professionals import normalize_professionals, subject_of, userinfo_of

CODE_LIFETIME_SECONDS = 60
REFRESH_LIFETIME_SECONDS = 1800
LOGIN_REQUEST_LIFETIME_SECONDS = 600
ACR = "eidas1"
DEFAULT_MINT_CLIENT = "drimbox-sim"
PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256 digest


class OAuthError(Exception):
    """An OAuth/OIDC error answer (``error`` code, description, HTTP status)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def as_json(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class LoginRequest:
    request_id: str
    client_id: str
    redirect_uri: str
    state: str
    nonce: str
    scope: str
    created_at: float
    code_challenge: str = ""


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    id_nat: str
    nonce: str
    scope: str
    sid: str
    auth_time: float
    expires_at: float
    code_challenge: str = ""  # PKCE S256 challenge of the login; the token request must prove it


@dataclass
class IssuedToken:
    jti: str
    kind: str  # "access" | "refresh" | "id"
    id_nat: str
    client_id: str
    sid: str
    scope: str
    expires_at: float
    revoked: bool = False
    claims: dict[str, Any] = field(default_factory=dict)


class PscProvider:
    def __init__(
        self,
        *,
        issuer: str,
        professionals: list[dict[str, Any]],
        clients: dict[str, dict[str, Any]] | None,
        token_lifetime: int,
        clock: Callable[[], float] = time.time,
        key: SigningKey | None = None,
        require_pkce: bool = False,
    ) -> None:
        self.issuer = issuer
        self.require_pkce = require_pkce
        self.professionals = normalize_professionals(professionals)
        self.clients = clients
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.key = key or SigningKey()
        self._lock = threading.Lock()
        self._login_requests: dict[str, LoginRequest] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._tokens: dict[str, IssuedToken] = {}

    # ------------------------------------------------------------ clients
    def check_redirect(self, client_id: str, redirect_uri: str) -> None:
        """Refuse an unknown client or a redirect URI it did not register (never redirect on these)."""
        if not client_id:
            raise OAuthError("invalid_request", "client_id is missing")
        if not redirect_uri:
            raise OAuthError("invalid_request", "redirect_uri is missing")
        if self.clients is None:
            if not is_loopback_url(redirect_uri):
                raise OAuthError("invalid_request",
                                 "without configured clients the simulator only accepts loopback redirect URIs")
            return
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("unauthorized_client", f"unknown client_id {client_id!r}")
        if redirect_uri not in (client.get("redirect_uris") or []):
            raise OAuthError("invalid_request", f"redirect_uri {redirect_uri!r} is not registered for {client_id!r}")

    def authenticate_client(self, client_id: str | None, secret: str | None) -> str:
        """The authenticated client id, or OAuthError invalid_client (401)."""
        if not client_id:
            raise OAuthError("invalid_client", "client authentication is required", 401)
        if self.clients is None:
            return client_id  # demo mode: any client, any secret
        client = self.clients.get(client_id)
        if client is None or not hmac.compare_digest(str(client.get("secret", "")), secret or ""):
            raise OAuthError("invalid_client", "bad client credentials", 401)
        return client_id

    def post_logout_allowed(self, client_id: str, uri: str) -> bool:
        if self.clients is None:
            return is_loopback_url(uri)
        client = self.clients.get(client_id) or {}
        allowed = list(client.get("post_logout_redirect_uris") or []) + list(client.get("redirect_uris") or [])
        return uri in allowed or any(_origin(uri) == _origin(u) for u in allowed)

    # ------------------------------------------------------------ authorization
    def start_login(self, params: dict[str, str]) -> LoginRequest:
        """Validate an authorization request. Errors after the redirect check carry the redirect target."""
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        self.check_redirect(client_id, redirect_uri)
        if params.get("response_type") != "code":
            raise RedirectError(redirect_uri, params.get("state", ""), "unsupported_response_type",
                                "only response_type=code is supported")
        if "openid" not in params.get("scope", "").split():
            raise RedirectError(redirect_uri, params.get("state", ""), "invalid_scope", "scope must contain openid")
        challenge = params.get("code_challenge", "")
        if challenge and params.get("code_challenge_method") != "S256":
            raise RedirectError(redirect_uri, params.get("state", ""), "invalid_request",
                                "code_challenge_method must be S256")
        if challenge and not PKCE_CHALLENGE.match(challenge):
            raise RedirectError(redirect_uri, params.get("state", ""), "invalid_request", "malformed code_challenge")
        if self.require_pkce and not challenge:
            raise RedirectError(redirect_uri, params.get("state", ""), "invalid_request",
                                "PKCE is required: send code_challenge and code_challenge_method=S256")
        request = LoginRequest(
            code_challenge=challenge,
            request_id=secrets.token_urlsafe(16),
            client_id=client_id,
            redirect_uri=redirect_uri,
            state=params.get("state", ""),
            nonce=params.get("nonce", ""),
            scope=params.get("scope", ""),
            created_at=self.clock(),
        )
        with self._lock:
            self._forget_old_login_requests()
            self._login_requests[request.request_id] = request
        return request

    def complete_login(self, request_id: str, id_nat: str) -> str:
        """The professional was picked: the URL to send the browser back to, with code and state."""
        with self._lock:
            request = self._login_requests.pop(request_id, None)
        if request is None:
            raise OAuthError("invalid_request", "this login page has expired; start again from the application")
        if id_nat not in self.professionals:
            raise RedirectError(request.redirect_uri, request.state, "login_required", f"unknown professional {id_nat}")
        code = secrets.token_urlsafe(24)
        now = self.clock()
        with self._lock:
            self._codes[code] = AuthorizationCode(
                client_id=request.client_id, redirect_uri=request.redirect_uri, id_nat=id_nat, nonce=request.nonce,
                scope=request.scope, sid=secrets.token_hex(16), auth_time=now, expires_at=now + CODE_LIFETIME_SECONDS,
                code_challenge=request.code_challenge,
            )
        return with_query(request.redirect_uri, {"code": code, "state": request.state})

    def cancel_login(self, request_id: str) -> str:
        with self._lock:
            request = self._login_requests.pop(request_id, None)
        if request is None:
            raise OAuthError("invalid_request", "this login page has expired; start again from the application")
        return with_query(request.redirect_uri, {"error": "access_denied", "state": request.state})

    # ------------------------------------------------------------ token endpoint
    def exchange_code(self, client_id: str, code: str, redirect_uri: str, code_verifier: str = "") -> dict[str, Any]:
        with self._lock:
            grant = self._codes.pop(code, None)
        if grant is None or grant.expires_at <= self.clock():
            raise OAuthError("invalid_grant", "unknown, used or expired authorization code")
        if grant.client_id != client_id:
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if grant.redirect_uri != redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
        if grant.code_challenge and not hmac.compare_digest(_s256(code_verifier), grant.code_challenge):
            raise OAuthError("invalid_grant", "PKCE code_verifier does not match the code_challenge")
        return self._issue(grant.id_nat, client_id, scope=grant.scope, nonce=grant.nonce, sid=grant.sid,
                           auth_time=grant.auth_time, lifetime=self.token_lifetime)

    def refresh(self, client_id: str, refresh_token: str) -> dict[str, Any]:
        record = self._live_record(refresh_token, kind="refresh")
        if record is None or record.client_id != client_id:
            raise OAuthError("invalid_grant", "unknown, revoked or expired refresh token")
        return self._issue(record.id_nat, client_id, scope=record.scope, nonce=record.claims.get("nonce", ""),
                           sid=record.sid, auth_time=record.claims.get("auth_time", self.clock()),
                           lifetime=self.token_lifetime)

    def mint(self, id_nat: str, *, client_id: str = DEFAULT_MINT_CLIENT, lifetime: int | None = None,
             nonce: str = "", scope: str = "openid scope_all") -> dict[str, Any]:
        """Tokens for a professional without any browser (peer-to-peer tests). A negative lifetime gives
        tokens that are already expired."""
        if id_nat not in self.professionals:
            raise OAuthError("invalid_request", f"unknown professional {id_nat!r}", 404)
        return self._issue(id_nat, client_id, scope=scope, nonce=nonce, sid=secrets.token_hex(16),
                           auth_time=self.clock(), lifetime=self.token_lifetime if lifetime is None else lifetime)

    def _issue(self, id_nat: str, client_id: str, *, scope: str, nonce: str, sid: str, auth_time: float,
               lifetime: int) -> dict[str, Any]:
        now = int(self.clock())
        common: dict[str, Any] = {
                  "iss": self.issuer, "sub": subject_of(id_nat), "iat": now, "auth_time": int(auth_time),
                  "sid": sid, "session_state": sid, "acr": ACR, "azp": client_id,
                  "SubjectNameID": id_nat, "preferred_username": id_nat}
        if nonce:
            common["nonce"] = nonce
        access_claims = dict(common, jti=secrets.token_hex(16), typ="Bearer", aud=client_id,
                             exp=now + lifetime, scope=scope)
        access_token = self.key.sign(access_claims)
        prof = self.professionals[id_nat]
        id_claims = dict(common, jti=secrets.token_hex(16), typ="ID", aud=client_id, exp=now + lifetime,
                         at_hash=_at_hash(access_token), given_name=prof["given_name"],
                         family_name=prof["family_name"])
        refresh_claims = dict(common, jti=secrets.token_hex(16), typ="Refresh", aud=self.issuer,
                              exp=now + REFRESH_LIFETIME_SECONDS, scope=scope)
        id_token = self.key.sign(id_claims)
        refresh_token = self.key.sign(refresh_claims)
        with self._lock:
            for kind, claims in (("access", access_claims), ("id", id_claims), ("refresh", refresh_claims)):
                self._tokens[claims["jti"]] = IssuedToken(
                    jti=claims["jti"], kind=kind, id_nat=id_nat, client_id=client_id, sid=sid, scope=scope,
                    expires_at=claims["exp"], claims=claims)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "refresh_token": refresh_token,
            "refresh_expires_in": REFRESH_LIFETIME_SECONDS,
            "id_token": id_token,
            "scope": scope,
            "session_state": sid,
            "not-before-policy": 0,
        }

    # ------------------------------------------------------------ resource side
    def userinfo(self, access_token: str) -> dict[str, Any]:
        record = self._live_record(access_token, kind="access")
        if record is None:
            raise OAuthError("invalid_token", "the access token is unknown, revoked or expired", 401)
        return userinfo_of(self.professionals[record.id_nat])

    def signed_userinfo(self, access_token: str) -> str:
        record = self._live_record(access_token, kind="access")
        if record is None:
            raise OAuthError("invalid_token", "the access token is unknown, revoked or expired", 401)
        claims = dict(userinfo_of(self.professionals[record.id_nat]), iss=self.issuer, aud=record.client_id)
        return self.key.sign(claims)

    def introspect(self, token: str) -> dict[str, Any]:
        record = self._live_record(token, kind=None)
        if record is None or record.kind == "id":
            return {"active": False}
        claims = record.claims
        answer: dict[str, Any] = {key: claims[key] for key in (
                                               "exp", "iat", "auth_time", "jti", "iss", "aud", "sub", "typ", "azp",
                                               "sid", "session_state", "acr", "scope", "SubjectNameID",
                                               "preferred_username", "nonce") if key in claims}
        answer.update(active=True, client_id=record.client_id, token_type="Bearer")
        return answer

    def end_session(self, id_token_hint: str) -> str:
        """Revoke every token of the session named by the ID token (an expired hint is fine).
        Returns the client id the hint was issued to."""
        claims = self.key.verify(id_token_hint) if id_token_hint else None
        if claims is None or claims.get("typ") != "ID":
            raise OAuthError("invalid_request", "id_token_hint is missing or not issued by this server")
        self.revoke_session(claims.get("sid", ""))
        return str(claims.get("azp") or claims.get("aud") or "")

    def revoke_session(self, sid: str) -> int:
        with self._lock:
            records = [r for r in self._tokens.values() if r.sid == sid and not r.revoked]
            for record in records:
                record.revoked = True
        return len(records)

    def revoke(self, token: str) -> bool:
        claims = self.key.verify(token)
        with self._lock:
            record = self._tokens.get(str((claims or {}).get("jti", "")))
            if record is None:
                return False
            record.revoked = True
            return True

    def _live_record(self, token: str, *, kind: str | None) -> IssuedToken | None:
        claims = self.key.verify(token) if token else None
        if claims is None:
            return None
        with self._lock:
            record = self._tokens.get(str(claims.get("jti", "")))
        if record is None or record.revoked or record.expires_at <= self.clock():
            return None
        if kind is not None and record.kind != kind:
            return None
        return record

    def _forget_old_login_requests(self) -> None:
        limit = self.clock() - LOGIN_REQUEST_LIFETIME_SECONDS
        for request_id in [k for k, r in self._login_requests.items() if r.created_at < limit]:
            del self._login_requests[request_id]

    # ------------------------------------------------------------ metadata
    def discovery(self, authorization_endpoint: str) -> dict[str, Any]:
        oidc = self.issuer + "/protocol/openid-connect"
        return {
            "issuer": self.issuer,
            "authorization_endpoint": authorization_endpoint,
            "token_endpoint": oidc + "/token",
            "introspection_endpoint": oidc + "/token/introspect",
            "userinfo_endpoint": oidc + "/userinfo",
            "end_session_endpoint": oidc + "/logout",
            "jwks_uri": oidc + "/certs",
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.key.algorithm],
            "userinfo_signing_alg_values_supported": [self.key.algorithm],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "scope_all"],
            "acr_values_supported": [ACR],
            "claims_supported": ["sub", "iss", "acr", "nonce", "SubjectNameID", "SubjectRefPro", "given_name",
                                 "family_name", "preferred_username"],
        }


class RedirectError(OAuthError):
    """An authorization error reported to the client by redirecting the browser back to it."""

    def __init__(self, redirect_uri: str, state: str, error: str, description: str) -> None:
        super().__init__(error, description, 302)
        self.location = with_query(redirect_uri, {"error": error, "error_description": description, "state": state})


def with_query(url: str, params: dict[str, str]) -> str:
    params = {k: v for k, v in params.items() if v}
    parts = urlsplit(url)
    query = urlencode(params)
    return urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))


def is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or ""), parts.port


def _at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
