"""A local Pro Santé Connect for development, tests and demos, served over HTTP or HTTPS.

Paths are PSC's (Keycloak realm ``esante-wallet``)::

    /auth/realms/esante-wallet/.well-known/wallet-openid-configuration   (and .well-known/openid-configuration)
    /auth/realms/esante-wallet/protocol/openid-connect/auth              login page (also /auth, the "wallet" host)
    /auth/realms/esante-wallet/protocol/openid-connect/token             code and refresh grants
    /auth/realms/esante-wallet/protocol/openid-connect/userinfo
    /auth/realms/esante-wallet/protocol/openid-connect/token/introspect  RFC 7662, client authentication required
    /auth/realms/esante-wallet/protocol/openid-connect/certs             JWKS
    /auth/realms/esante-wallet/protocol/openid-connect/logout            end-session: revokes the session's tokens
    /auth/realms/esante-wallet/sim/tokens                                admin (POST): mint tokens for an idNat
    /auth/realms/esante-wallet/sim/professionals                         admin (GET): the professionals

The login page lists the configured professionals; ``login_hint=<idNat>`` with ``prompt=none`` skips it.
Without ``clients``, any client_id is accepted as long as its redirect URI is on a loopback host, and any
secret authenticates it (demo convenience: never expose such a simulator beyond the machine).
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from drimbox.sim.psc.pages import login_page, notice_page
from drimbox.sim.psc.professionals import DEFAULT_PROFESSIONALS
from drimbox.sim.psc.provider import DEFAULT_MINT_CLIENT, OAuthError, PscProvider, RedirectError, with_query

REALM_PATH = "/auth/realms/esante-wallet"
OIDC_PATH = REALM_PATH + "/protocol/openid-connect"
WALLET_AUTHORIZE_PATH = "/auth"
MAX_BODY_BYTES = 1024 * 1024


class PscSimulator:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        professionals: list[dict[str, Any]] | None = None,
        clients: dict[str, dict[str, Any]] | None = None,
        token_lifetime: int = 300,
        public_url: str | None = None,
        wallet_url: str | None = None,
        signed_userinfo: bool = False,
        require_pkce: bool = False,
    ) -> None:
        """``public_url``: base URL as clients see it (default ``http(s)://host:port``); the issuer is
        ``<public_url>/auth/realms/esante-wallet``. ``wallet_url``: base of the authorization endpoint
        (``<wallet_url>/auth``), like PSC's separate ``wallet.`` host; default: the realm's own path.
        Both may contain ``{port}``, replaced by the bound port (useful with ``port=0``).
        ``signed_userinfo``: answer userinfo as a signed JWT (``application/jwt``) instead of JSON.
        PKCE (S256) is enforced whenever a login sent a ``code_challenge``; ``require_pkce`` refuses logins without."""
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("tls_cert and tls_key must be given together")
        self._host = host
        self._requested_port = port
        self._tls = (tls_cert, tls_key) if tls_cert else None
        self._professionals = professionals if professionals is not None else DEFAULT_PROFESSIONALS
        self._clients = clients
        self._token_lifetime = token_lifetime
        self._public_url = public_url.rstrip("/") if public_url else None
        self._wallet_url = wallet_url.rstrip("/") if wallet_url else None
        self.signed_userinfo = signed_userinfo
        self.require_pkce = require_pkce
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.provider: PscProvider | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "PscSimulator":
        server = _Server((self._host, self._requested_port), _Handler)
        if self._tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self._tls[0], self._tls[1])
            server.tls_context = context
        self._server = server
        self.provider = PscProvider(issuer=self.issuer, professionals=self._professionals, clients=self._clients,
                                    token_lifetime=self._token_lifetime, require_pkce=self.require_pkce)
        server.simulator = self
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="psc-sim",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "PscSimulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ addresses
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the PSC simulator is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        if self._public_url:
            return self._public_url.replace("{port}", str(self.port))
        host = self._host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.base_url + REALM_PATH

    @property
    def authorization_endpoint(self) -> str:
        if self._wallet_url:
            return self._wallet_url.replace("{port}", str(self.port)) + WALLET_AUTHORIZE_PATH
        return self.issuer + "/protocol/openid-connect/auth"

    # ------------------------------------------------------------ direct use (tests, peer-to-peer)
    def mint_tokens(self, id_nat: str, *, client_id: str = DEFAULT_MINT_CLIENT, lifetime: int | None = None,
                    nonce: str = "") -> dict[str, Any]:
        """A token response for ``id_nat`` without a browser; ``lifetime < 0`` gives expired tokens."""
        return self._provider().mint(id_nat, client_id=client_id, lifetime=lifetime, nonce=nonce)

    def mint_access_token(self, id_nat: str, **kwargs: Any) -> str:
        return self.mint_tokens(id_nat, **kwargs)["access_token"]

    def revoke(self, token: str) -> bool:
        return self._provider().revoke(token)

    def _provider(self) -> PscProvider:
        if self.provider is None:
            raise RuntimeError("the PSC simulator is not started")
        return self.provider


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls_context: ssl.SSLContext | None = None
    simulator: PscSimulator

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls_context is not None:
            # The handshake runs in the request thread (see _Handler.setup), not in the accept loop.
            sock = self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without NODELAY, Nagle + delayed ACK add 40 ms per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            pass  # a client that gave up or spoke plain HTTP to the TLS port

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        pass

    # ------------------------------------------------------------ dispatch
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        sim = self.server.simulator
        provider = sim._provider()
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            if method == "POST":
                params.update(self._body_params())
            route = ROUTES.get((method, path))
            if route is None:
                self._send_json(404, {"error": "not_found", "error_description": f"no {method} {path}"})
                return
            route(self, sim, provider, params)
        except RedirectError as exc:
            self._redirect(exc.location)
        except OAuthError as exc:
            headers = {"WWW-Authenticate": f'Bearer error="{exc.error}"'} if exc.status == 401 else {}
            if path in (OIDC_PATH + "/auth", WALLET_AUTHORIZE_PATH, OIDC_PATH + "/auth/login", OIDC_PATH + "/logout"):
                self._send_html(exc.status, notice_page("Erreur", exc.description, element_id="error"))
            else:
                self._send_json(exc.status, exc.as_json(), headers)

    def _body_params(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise OAuthError("invalid_request", "request body too large", 413)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            try:
                data = json.loads(raw or b"{}")
            except ValueError:
                raise OAuthError("invalid_request", "body is not JSON") from None
            if not isinstance(data, dict):
                raise OAuthError("invalid_request", "body must be a JSON object")
            return {str(k): v for k, v in data.items()}
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))

    def _client_credentials(self, params: dict[str, str]) -> tuple[str | None, str | None]:
        header = self.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
                client_id, _, secret = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", "malformed Basic authorization", 401) from None
            return unquote_plus(client_id), unquote_plus(secret)
        return params.get("client_id"), params.get("client_secret")

    def _bearer(self, params: dict[str, str]) -> str:
        header = self.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return params.get("access_token", "")

    # ------------------------------------------------------------ answers
    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", headers)

    def _send_html(self, status: int, html: str) -> None:
        self._send(status, html.encode("utf-8"), "text/html; charset=utf-8")

    def _redirect(self, location: str) -> None:
        self._send(302, b"", "text/plain", {"Location": location})

    # ------------------------------------------------------------ routes
    def _discovery(self, sim: PscSimulator, provider: PscProvider, params: dict[str, str]) -> None:
        self._send_json(200, provider.discovery(sim.authorization_endpoint))

    def _realm(self, sim: PscSimulator, provider: PscProvider, params: dict[str, str]) -> None:
        self._send_json(200, {"realm": "esante-wallet", "issuer": provider.issuer, "simulator": True})

    def _authorize(self, sim: PscSimulator, provider: PscProvider, params: dict[str, str]) -> None:
        request = provider.start_login(params)
        prompt = params.get("prompt", "").split()
        hint = params.get("login_hint", "")
        if "none" in prompt:
            if hint not in provider.professionals:
                raise RedirectError(request.redirect_uri, request.state, "login_required",
                                    "prompt=none needs login_hint=<idNat> of a configured professional")
            self._redirect(provider.complete_login(request.request_id, hint))
            return
        action = provider.issuer + "/protocol/openid-connect/auth/login"
        self._send_html(200, login_page(request.request_id, request.client_id, provider.professionals, action))

    def _login(self, sim: PscSimulator, provider: PscProvider, params: dict[str, str]) -> None:
        request_id = params.get("request_id", "")
        if params.get("cancel"):
            self._redirect(provider.cancel_login(request_id))
            return
        self._redirect(provider.complete_login(request_id, params.get("idnat", "")))

    def _token(self, sim: PscSimulator, provider: PscProvider, params: dict[str, str]) -> None:
        client_id = provider.authenticate_client(*self._client_credentials(params))
        grant_type = params.get("grant_type", "")
        if grant_type == "authorization_code":
            answer = provider.exchange_code(client_id, params.get("code", ""), params.get("redirect_uri", ""),
                                            params.get("code_verifier", ""))
        elif grant_type == "refresh_token":
            answer = provider.refresh(client_id, params.get("refresh_token", ""))
        else:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        self._send_json(200, answer, {"Pragma": "no-cache"})

    def _userinfo(self, sim: PscSimulator, provider: PscProvider, params: dict[str, str]) -> None:
        if sim.signed_userinfo:
            self._send(200, provider.signed_userinfo(self._bearer(params)).encode(), "application/jwt")
        else:
            self._send_json(200, provider.userinfo(self._bearer(params)))

    def _introspect(self, sim: PscSimulator, provider: PscProvider, params: dict[str, str]) -> None:
        provider.authenticate_client(*self._client_credentials(params))
        self._send_json(200, provider.introspect(params.get("token", "")))

    def _certs(self, sim: PscSimulator, provider: PscProvider, params: dict[str, str]) -> None:
        self._send_json(200, provider.key.jwks())

    def _logout(self, sim: PscSimulator, provider: PscProvider, params: dict[str, str]) -> None:
        client_id = provider.end_session(params.get("id_token_hint", ""))
        target = params.get("post_logout_redirect_uri") or params.get("redirect_uri") or ""
        if target:
            if not provider.post_logout_allowed(client_id, target):
                raise OAuthError("invalid_request", f"post_logout_redirect_uri {target!r} is not allowed")
            self._redirect(with_query(target, {"state": params.get("state", "")}))
            return
        self._send_html(200, notice_page("Déconnecté", "Vous êtes déconnecté de Pro Santé Connect.",
                                         element_id="logged-out"))

    def _admin_mint(self, sim: PscSimulator, provider: PscProvider, params: dict[str, str]) -> None:
        lifetime = params.get("lifetime")
        try:
            lifetime_value = int(lifetime) if lifetime not in (None, "") else None
        except (TypeError, ValueError):
            raise OAuthError("invalid_request", "lifetime must be an integer number of seconds") from None
        answer = provider.mint(str(params.get("idNat") or params.get("idnat") or ""),
                               client_id=str(params.get("client_id") or DEFAULT_MINT_CLIENT),
                               lifetime=lifetime_value, nonce=str(params.get("nonce") or ""))
        self._send_json(200, answer)

    def _admin_professionals(self, sim: PscSimulator, provider: PscProvider, params: dict[str, str]) -> None:
        self._send_json(200, list(provider.professionals.values()))


ROUTES = {
    ("GET", REALM_PATH): _Handler._realm,
    ("GET", REALM_PATH + "/.well-known/wallet-openid-configuration"): _Handler._discovery,
    ("GET", REALM_PATH + "/.well-known/openid-configuration"): _Handler._discovery,
    ("GET", OIDC_PATH + "/auth"): _Handler._authorize,
    ("GET", WALLET_AUTHORIZE_PATH): _Handler._authorize,
    ("POST", OIDC_PATH + "/auth/login"): _Handler._login,
    ("POST", OIDC_PATH + "/token"): _Handler._token,
    ("GET", OIDC_PATH + "/userinfo"): _Handler._userinfo,
    ("POST", OIDC_PATH + "/userinfo"): _Handler._userinfo,
    ("POST", OIDC_PATH + "/token/introspect"): _Handler._introspect,
    ("GET", OIDC_PATH + "/certs"): _Handler._certs,
    ("GET", OIDC_PATH + "/logout"): _Handler._logout,
    ("POST", OIDC_PATH + "/logout"): _Handler._logout,
    ("POST", REALM_PATH + "/sim/tokens"): _Handler._admin_mint,
    ("GET", REALM_PATH + "/sim/professionals"): _Handler._admin_professionals,
}
