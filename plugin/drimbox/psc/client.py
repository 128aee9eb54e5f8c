"""OpenID Connect client for Pro Santé Connect (authorization code flow, userinfo, RFC 7662 introspection).

Discovery uses PSC's ``.well-known/wallet-openid-configuration`` (the standard ``openid-configuration`` is a
fallback). Every network error, refusal or invalid token becomes a :class:`PscError`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote_plus, urlencode, urlsplit, urlunsplit

import requests
import urllib3
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import import_key

from drimbox.psc.errors import PscError
from drimbox.psc.introspection_cache import IntrospectionCache
from drimbox.psc.model import Introspection, Professional, Tokens
from drimbox.psc.settings import PscSettings
from drimbox.psc.userinfo import parse_userinfo
from drimbox.util.bounded_read import AnswerTooLarge, AnswerTooSlow, read_bounded
from drimbox.util.json_depth import loads_untrusted

WALLET_DISCOVERY_PATH = "/.well-known/wallet-openid-configuration"
STANDARD_DISCOVERY_PATH = "/.well-known/openid-configuration"
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
# Fetch the JWKS again at most this often when a token names an unknown key (key rotation).
JWKS_REFRESH_MIN_SECONDS = 10.0
# discovery, JWKS, tokens, userinfo, introspection: a few kB each; more is a broken or hostile server
MAX_ANSWER_BYTES = 1 << 20


class PscClient:
    """One relying party (client_id) talking to one PSC issuer. Safe to share between threads."""

    def __init__(
        self,
        settings: PscSettings,
        *,
        redirect_uri: str,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        client_secret: str | None = None,
    ) -> None:
        self.settings = settings
        self.issuer = settings.issuer_url.rstrip("/")
        self.redirect_uri = redirect_uri
        self._http = session or requests.Session()
        self._clock = clock
        self._client_secret = client_secret
        self._verify: str | bool = settings.ca_bundle or True
        # RFC 8705 hook: with a client certificate every call to PSC is made over mutual TLS.
        self._cert = (settings.client_cert_file, settings.client_key_file) if settings.client_cert_file else None
        self._lock = threading.Lock()
        self._discovery: dict[str, Any] | None = None
        self._discovery_until = 0.0
        self._jwks: dict[str, Any] | None = None
        self._jwks_fetched_at = 0.0
        self._introspections = IntrospectionCache(settings.introspection_cache_seconds, clock=clock)

    # ----------------------------------------------------------------- discovery
    @property
    def discovery_url(self) -> str:
        return self.issuer + WALLET_DISCOVERY_PATH

    def discovery(self) -> dict[str, Any]:
        """The provider metadata, cached for ``discovery_cache_seconds``."""
        now = self._clock()
        with self._lock:
            if self._discovery is not None and now < self._discovery_until:
                return self._discovery
        document = self._fetch_discovery()
        with self._lock:
            self._discovery = document
            self._discovery_until = now + self.settings.discovery_cache_seconds
        return document

    def _fetch_discovery(self) -> dict[str, Any]:
        try:
            document = self._get_json(self.discovery_url)
        except PscError as wallet_error:
            if wallet_error.reason != "http_404":
                raise
            document = self._get_json(self.issuer + STANDARD_DISCOVERY_PATH)
        issuer = str(document.get("issuer", "")).rstrip("/")
        if issuer != self.issuer:
            raise PscError(
                f"PSC discovery at {self.discovery_url} names issuer {issuer!r}, expected {self.issuer!r}: "
                "check DRIMbox.Psc.Issuer",
                reason="bad_discovery",
            )
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not document.get(key):
                raise PscError(f"PSC discovery at {self.discovery_url} has no {key}", reason="bad_discovery")
        return document

    def _endpoint(self, name: str) -> str:
        url = self.discovery().get(name)
        if not url:
            raise PscError(f"PSC discovery at {self.discovery_url} has no {name}", reason="bad_discovery")
        return str(url)

    # ----------------------------------------------------------------- login
    def authorization_url(
        self,
        state: str,
        nonce: str,
        *,
        login_hint: str | None = None,
        prompt: str | None = None,
        extra_params: dict[str, str] | None = None,
    ) -> str:
        """Where to send the browser to log in (the endpoint may live on PSC's ``wallet`` host)."""
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.settings.scope,
            "state": state,
            "nonce": nonce,
        }
        if self.settings.acr_values:
            params["acr_values"] = self.settings.acr_values
        if login_hint:
            params["login_hint"] = login_hint
        if prompt:
            params["prompt"] = prompt
        params.update(extra_params or {})
        return _with_query(self._endpoint("authorization_endpoint"), params)

    def exchange_code(self, code: str, code_verifier: str | None = None) -> Tokens:
        """Trade the authorization code for tokens (the ID token is NOT validated here); ``code_verifier`` is
        the PKCE secret (RFC 7636) of the login that sent ``code_challenge``."""
        if not code:
            raise PscError("no authorization code in PSC's answer", reason="missing_code")
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        if code_verifier:
            data["code_verifier"] = code_verifier
        try:
            return self._token_request(data)
        except PscError as error:
            if error.reason == "http_400":
                raise PscError(f"PSC refused the authorization code: {error}", reason="code_refused") from error
            raise

    def refresh(self, refresh_token: str) -> Tokens:
        return self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _token_request(self, data: dict[str, str]) -> Tokens:
        body = self._post_form(self._endpoint("token_endpoint"), data)
        access_token = str(body.get("access_token") or "")
        if not access_token:
            raise PscError("PSC token endpoint answered without an access_token", reason="bad_token_response")
        if str(body.get("token_type", "Bearer")).lower() != "bearer":
            raise PscError(f"PSC token endpoint answered token_type {body.get('token_type')!r}, expected Bearer",
                           reason="bad_token_response")
        return Tokens(
            access_token=access_token,
            id_token=str(body.get("id_token") or ""),
            token_type="Bearer",
            expires_in=int(body.get("expires_in") or 0),
            refresh_token=str(body.get("refresh_token") or ""),
            scope=str(body.get("scope") or ""),
            raw=body,
        )

    def validate_id_token(self, id_token: str, nonce: str, *, access_token: str | None = None) -> dict[str, Any]:
        """Check signature (JWKS), iss, aud/azp, exp/iat, nonce and acr; return the claims.

        With ``access_token`` the ``at_hash`` claim, when present, is checked too.
        """
        if not id_token:
            raise PscError("PSC returned no ID token", reason="missing_id_token")
        claims = self._verified_claims(id_token, audience=self.settings.client_id, access_token=access_token)
        now = self._clock()
        leeway = self.settings.clock_skew_seconds
        exp = _number(claims.get("exp"))
        if exp is None:
            raise PscError("PSC ID token has no exp", reason="bad_claims")
        if now > exp + leeway:
            raise PscError(f"PSC ID token expired {int(now - exp)} s ago", reason="expired")
        iat = _number(claims.get("iat"))
        if iat is not None and iat > now + leeway:
            raise PscError("PSC ID token is issued in the future (clock skew?)", reason="bad_claims")
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.settings.client_id:
            raise PscError("PSC ID token has several audiences and azp is not this client", reason="bad_claims")
        if not nonce or not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise PscError("PSC ID token nonce does not match the login request", reason="nonce_mismatch")
        accepted_acr = self.settings.acr_values.split()
        if accepted_acr and claims.get("acr") not in accepted_acr:
            raise PscError(
                f"PSC ID token acr {claims.get('acr')!r} is not one of the requested {accepted_acr}",
                reason="bad_acr",
            )
        return claims

    # ----------------------------------------------------------------- identity and tokens
    def userinfo(self, access_token: str) -> Professional:
        response = self._send("GET", self._endpoint("userinfo_endpoint"),
                              headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
        content_type = response.header("Content-Type")
        if content_type.startswith("application/jwt"):
            document = self._verified_claims(response.text.strip(), audience=None)
        else:
            document = _json(response, "userinfo")
        return parse_userinfo(document)

    def introspect(self, access_token: str) -> Introspection:
        """RFC 7662 introspection, answers (active or not) cached briefly and never beyond the token's exp."""
        if not access_token:
            return Introspection(active=False)
        cached = self._introspections.get(access_token)
        if cached is not None:
            return cached
        token_exp = unverified_expiry(access_token)
        if token_exp and token_exp <= self._clock():
            # Reading an unverified exp can only deny, never grant: it spares PSC a call per replayed old token.
            return Introspection(active=False, exp=token_exp)
        body = self._post_form(
            self._endpoint("introspection_endpoint"),
            {"token": access_token, "token_type_hint": "access_token"},
        )
        answer = Introspection(
            active=body.get("active") is True,
            sub=str(body.get("sub") or ""),
            exp=_number(body.get("exp")) or 0.0,
            iat=_number(body.get("iat")) or 0.0,
            # RFC 7662's client_id only: azp, aud and iss stay in raw, the peer decision reads each of them.
            client_id=str(body.get("client_id") or ""),
            scope=str(body.get("scope") or ""),
            subject_name_id=str(body.get("SubjectNameID") or body.get("preferred_username") or ""),
            raw=body,
        )
        self._introspections.put(access_token, answer, token_exp=token_exp)
        return answer

    def end_session_url(self, id_token_hint: str, post_logout_uri: str, *, state: str | None = None) -> str:
        params = {"id_token_hint": id_token_hint, "post_logout_redirect_uri": post_logout_uri,
                  "client_id": self.settings.client_id}
        if state:
            params["state"] = state
        return _with_query(self._endpoint("end_session_endpoint"), params)

    # ----------------------------------------------------------------- JWT and JWKS
    def _verified_claims(self, token: str, *, audience: str | None, access_token: str | None = None) -> dict[str, Any]:
        """Signature (JWKS), ``iss``, ``aud`` when given and ``at_hash`` when an access token is given; the
        caller checks the times against its clock."""
        try:
            loads_untrusted(_segment(token, 0))  # only measured: too deep to hand to the JWT library
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError) as exc:
            raise PscError(f"PSC token is not a well-formed JWT: {exc}", reason="malformed_token") from exc
        algorithm = header.get("alg")
        if algorithm not in SIGNING_ALGORITHMS:
            raise PscError(f"PSC token signed with {algorithm!r}, accepted: {', '.join(SIGNING_ALGORITHMS)}",
                           reason="bad_signature")
        claims: dict[str, Any] | None = None
        for key in self._keys_for(header.get("kid")):
            try:
                claims = dict(jwt.decode(token, import_key(key), algorithms=[algorithm]).claims)
                break
            except (JoseError, ValueError):
                continue
        if claims is None:
            raise PscError("PSC token signature refused: no key of PSC's JWKS verifies it", reason="bad_signature")
        if claims.get("iss") != self.discovery()["issuer"]:
            raise PscError(f"PSC token claims refused: issuer {claims.get('iss')!r}", reason="bad_claims")
        if audience is not None:
            audiences = claims.get("aud")
            if audience not in (audiences if isinstance(audiences, list) else [audiences]):
                raise PscError(f"PSC token claims refused: audience {audiences!r}", reason="bad_claims")
        if access_token is not None and "at_hash" in claims:
            if not hmac.compare_digest(str(claims["at_hash"]), _at_hash(access_token, algorithm)):
                raise PscError("PSC token claims refused: at_hash does not match the access token",
                               reason="bad_claims")
        return claims

    def _keys_for(self, kid: str | None) -> list[dict[str, Any]]:
        keys = self._matching_keys(self._jwks_document(refresh=False), kid)
        if not keys and self._clock() - self._jwks_fetched_at >= JWKS_REFRESH_MIN_SECONDS:
            keys = self._matching_keys(self._jwks_document(refresh=True), kid)
        if not keys:
            raise PscError(f"no key {kid!r} in PSC's JWKS", reason="bad_signature")
        return keys

    def _jwks_document(self, *, refresh: bool) -> dict[str, Any]:
        with self._lock:
            if self._jwks is not None and not refresh:
                return self._jwks
        document = self._get_json(self._endpoint("jwks_uri"))
        if not isinstance(document.get("keys"), list):
            raise PscError("PSC JWKS has no keys list", reason="bad_jwks")
        with self._lock:
            self._jwks = document
            self._jwks_fetched_at = self._clock()
        return document

    @staticmethod
    def _matching_keys(jwks: dict[str, Any], kid: str | None) -> list[dict[str, Any]]:
        keys = [k for k in jwks["keys"] if isinstance(k, dict) and k.get("use", "sig") == "sig"]
        if kid is not None:
            keys = [k for k in keys if k.get("kid") == kid]
        return keys

    # ----------------------------------------------------------------- HTTP
    def _client_secret_value(self) -> str:
        if self._client_secret is None:
            path = self.settings.client_secret_file
            if not path:
                raise PscError(
                    f"no PSC client secret: set DRIMbox.Psc.ClientSecretFile to a file holding the secret of client "
                    f"{self.settings.client_id!r} (or use TokenAuthMethod tls_client_auth)",
                    reason="configuration",
                )
            try:
                self._client_secret = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise PscError(f"cannot read the PSC client secret file {path}: {exc}", reason="configuration") from exc
        return self._client_secret

    def _post_form(self, url: str, data: dict[str, str]) -> dict[str, Any]:
        data = dict(data)
        auth = None
        method = self.settings.token_auth_method
        if method == "client_secret_basic":
            # RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding.
            auth = (quote_plus(self.settings.client_id), quote_plus(self._client_secret_value()))
        elif method == "client_secret_post":
            data["client_id"] = self.settings.client_id
            data["client_secret"] = self._client_secret_value()
        else:  # tls_client_auth: the certificate authenticates, the id still names the client
            data["client_id"] = self.settings.client_id
        response = self._send("POST", url, data=data, auth=auth, headers={"Accept": "application/json"})
        return _json(response, url)

    def _get_json(self, url: str) -> dict[str, Any]:
        return _json(self._send("GET", url, headers={"Accept": "application/json"}), url)

    def _send(self, method: str, url: str, **kwargs: Any) -> PscAnswer:
        timeout = self.settings.http_timeout_seconds
        try:
            with self._http.request(method, url, verify=self._verify, cert=self._cert, timeout=timeout,
                                    stream=True, **kwargs) as response:
                answer = PscAnswer(response.status_code, dict(response.headers),
                                   read_bounded(response, limit=MAX_ANSWER_BYTES, seconds=timeout))
        except (AnswerTooLarge, AnswerTooSlow) as exc:
            raise PscError(f"PSC answer refused ({method} {url}): {exc}", reason="bad_response") from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise PscError(f"PSC unreachable ({method} {url}): {exc}", reason="unreachable") from exc
        if answer.status_code >= 400:
            raise PscError(f"PSC answered {answer.status_code} to {method} {url}: {_error_text(answer)}",
                           reason=f"http_{answer.status_code}")
        return answer


@dataclass(frozen=True)
class PscAnswer:
    """An answer of PSC, read within bounds (``MAX_ANSWER_BYTES``, the HTTP timeout for the body)."""

    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def header(self, name: str) -> str:
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), "")


def unverified_expiry(token: str) -> float:
    """The ``exp`` of a JWT without checking it (0 when the token is opaque): only used to bound caching."""
    parts = token.split(".")
    if len(parts) != 3:
        return 0.0
    try:
        payload = loads_untrusted(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return 0.0
    return (_number(payload.get("exp")) or 0.0) if isinstance(payload, dict) else 0.0


def _segment(token: str, index: int) -> bytes:
    """One base64url segment of a JWS, decoded (b"null" when absent, so that it parses as JSON)."""
    parts = token.split(".")
    if index >= len(parts):
        return b"null"
    return base64.urlsafe_b64decode(parts[index] + "=" * (-len(parts[index]) % 4))


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = urlencode(params)
    return urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))


def _json(response: PscAnswer, what: str) -> dict[str, Any]:
    try:
        body = loads_untrusted(response.content)
    except ValueError as exc:
        raise PscError(f"PSC answer from {what} is not JSON", reason="bad_response") from exc
    if not isinstance(body, dict):
        raise PscError(f"PSC answer from {what} is not a JSON object", reason="bad_response")
    return body


def _error_text(response: PscAnswer) -> str:
    try:
        body = loads_untrusted(response.content)
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and body.get("error"):
        return f"{body['error']}: {body.get('error_description', '')}".strip(": ")
    return response.text[:200]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _at_hash(access_token: str, algorithm: str) -> str:
    """OpenID Connect Core 3.1.3.6: left half of the access token's hash with the ID token's SHA-2 size."""
    digest = getattr(hashlib, "sha" + algorithm[2:])(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
