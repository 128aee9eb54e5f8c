"""The `db` host's routes: the access decision nginx asks for every peer WADO-RS request, the denial answer,
and the health check (docs/conformance.md, "Trusted space, peers and viewer").

How a peer request flows (launcher/templates/nginx.conf.j2, db server)::

    peer --TLS--> nginx /wado-rs/... --auth_request--> POST /drimbox/peer/authz   (this module)
                    | 2xx: forward to the decision's target with the grant and our Accept: Orthanc's
                    |      /dicom-web/... (C++, no Python), or, for a study/series where Orthanc holds more
                    |      than the KOS lists, the curated retrieve (drimbox.web.curated_retrieve)
                    | 401/403: error_page -> GET /drimbox/peer/denied -> the real status and a JSON body
    peer presenting a certificate nginx cannot verify (its error 495)
                    --> GET /drimbox/peer/bad-certificate -> 403 with a JSON body, audited

What the decision checks (drimbox.trust.policy): the client certificate (verified by nginx, DN an operator DN of
the whitelist; unless PeerAccess.ClientCertificate is "off"), the PSC token, the KOS, the Accept. The health
check needs none of them.

Orthanc hands Python only the FIRST of repeated headers (validators send one Accept header per transfer
syntax), so nginx sends the client's raw request header block as the body of the authz subrequest
(``$echo_client_request_headers`` of the echo module that Debian's nginx-light ships) and only its own,
trusted headers as headers: ``X-Original-Uri``, ``X-Original-Method``, ``X-Ssl-Client-Verify``,
``X-Ssl-Client-S-Dn``, ``X-Request-Id``. A GET without body falls back to the (collapsed) headers.

Every decision, allowed or not, is written to the audit trail before answering; if the audit trail cannot be
written the request is refused (503).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from drimbox import __version__
from drimbox.trust.peer_facts import BoxPeerFacts
from drimbox.trust.policy import PeerRequest, decide_peer_request, refuse_unverified_certificate
from drimbox.web.http import Request, Response, Router

if TYPE_CHECKING:
    from drimbox.config import Settings
    from drimbox.pacs.rest import OrthancRest
    from drimbox.store import Store
    from drimbox.trust.gate import Gate
    from drimbox.trust.whitelist import WhitelistKeeper

log = logging.getLogger("drimbox.peer")

HEALTH_CACHE_SECONDS = 1.0  # the public health check runs its checks at most this often
GRANT_TTL_SECONDS = 30.0  # nginx uses the grant at once; a long transfer keeps its already-checked connection
DENIAL_STATUSES = {400, 401, 403, 404, 410, 503}
_HEADER_SAFE = re.compile(r"[^\x20-\x7e]")


def parse_raw_headers(raw: bytes) -> dict[str, list[str]]:
    """A raw HTTP/1.x request head (request line + header lines) -> lower-case name -> values, in order."""
    headers: dict[str, list[str]] = {}
    text = raw.decode("latin-1")
    lines = text.split("\n")
    for line in lines[1:]:
        line = line.rstrip("\r")
        if not line:
            break
        if line[0] in " \t" and headers:  # obsolete line folding: continue the previous value
            name = next(reversed(headers))
            headers[name][-1] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return headers


def _header_text(value: str, limit: int = 300) -> str:
    return _HEADER_SAFE.sub("?", value)[:limit]


class PeerApi:
    def __init__(self, settings: Settings, store: Store, gate: Gate, rest: OrthancRest,
                 whitelist: WhitelistKeeper | None, facts: BoxPeerFacts):
        """``facts``: what the decision reads (PSC introspection, manifests, Orthanc), cached; shared with the
        curated retrieve and the viewer."""
        self.settings = settings
        self.store = store
        self.gate = gate
        self.rest = rest
        self.whitelist = whitelist
        self.facts = facts
        self.wado_path = settings.identity.wado_rs_path.rstrip("/")
        self.hsts_max_age = settings.peer_access.hsts_max_age
        log.info("peer access: %s", "; ".join(self.access_summary()["checks"]))
        if not self.facts.client_certificate_required:
            log.warning("DRIMbox.PeerAccess.ClientCertificate is off: peers are NOT identified by a TLS client "
                        "certificate, any holder of a PSC token and a KOS UID of this box can retrieve images; "
                        "use it only on a network that does not use mutual TLS")
        self._health_cache: tuple[float, Response] | None = None
        self._health_lock = threading.Lock()
        # Recent timings (ms) of the decision alone and of the whole authz answer (decision + audit row).
        self._timings: deque[tuple[float, float, float]] = deque(maxlen=5000)
        self._timings_lock = threading.Lock()

    def register(self, router: Router) -> None:
        router.add("POST", "/drimbox/peer/authz", self.authz)
        router.add("GET", "/drimbox/peer/authz", self.authz)
        router.add("GET", "/drimbox/peer/denied", self.denied)
        router.add("GET", "/drimbox/peer/bad-certificate", self.bad_certificate)
        router.add("GET", "/drimbox/health", self.health)
        router.add("GET", "/drimbox/status/health", self.health_details)

    def access_summary(self) -> dict:
        """What the peer decision checks, as the health check and the operator status show it."""
        facts = self.facts
        clients = sorted(facts.accepted_token_clients)
        checks = []
        if facts.client_certificate_required:
            checks.append("TLS client certificate verified by nginx against the configured CA, subject DN an "
                          "operator DN (DNCertificatOperateur) of the whitelist in force")
        else:
            checks.append("no TLS client certificate check (PeerAccess.ClientCertificate off)")
        checks.append("PSC access token active (RFC 7662 introspection), not expired, issued by "
                      + (facts.token_issuer or "the configured issuer")
                      + (f", to one of the clients {', '.join(clients)}" if clients else ", to any PSC client"))
        checks.append("KOS-SOPInstanceUID published by this box, not withdrawn, covering the requested study, "
                      "series and instance")
        return {"client_certificate": "required" if facts.client_certificate_required else "off",
                "accepted_token_clients": clients, "token_issuer": facts.token_issuer, "checks": checks}

    # --- the decision ---------------------------------------------------------------------------
    def peer_request(self, request: Request) -> PeerRequest:
        trusted = request.headers  # set by nginx, never by the client (proxy_pass_request_headers off)
        if request.body:
            headers: dict = parse_raw_headers(request.body)
        else:
            headers = {k: v for k, v in trusted.items()}
        uri = trusted.get("x-original-uri", "")
        prefix = self.wado_path + "/"
        path = uri[len(prefix):] if uri.startswith(prefix) else "\x00not-wado-rs"
        return PeerRequest(
            method=trusted.get("x-original-method", "GET") or "GET",
            path=path,
            headers=headers,
            client_dn=trusted.get("x-ssl-client-s-dn", ""),
            client_verify=trusted.get("x-ssl-client-verify", "NONE") or "NONE",
            request_id=trusted.get("x-request-id", ""),
        )

    def authz(self, request: Request) -> Response:
        started = time.perf_counter()
        peer = self.peer_request(request)
        decision = decide_peer_request(peer, self.facts, hsts_max_age=self.hsts_max_age)
        decided_ms = (time.perf_counter() - started) * 1000
        response = self._answer(peer, decision)
        with self._timings_lock:
            self._timings.append((time.monotonic(), decided_ms, (time.perf_counter() - started) * 1000))
        return response

    def _answer(self, peer: PeerRequest, decision) -> Response:
        headers = decision.auth_request_headers()
        headers["X-Drimbox-Reason"] = _header_text(headers["X-Drimbox-Reason"])
        for name in ("WWW-Authenticate", "Retry-After", "Allow"):
            if name in decision.headers:
                headers[f"X-Drimbox-{name}"] = decision.headers[name]
        try:
            self.store.add_audit(decision.audit)
        except Exception as error:
            log.exception("audit trail not writable: refusing the peer request")
            reason = _header_text(f"audit trail unavailable: {type(error).__name__}")
            return Response(403, b"", "text/plain", {"X-Drimbox-Status": "503", "X-Drimbox-Reason": reason,
                                                     "X-Drimbox-Retry-After": "30"})
        if not decision.allow:
            return Response(decision.auth_request_status, b"", "text/plain", headers)
        headers["X-Drimbox-Grant"] = self.gate.grant(decision.target, scope="peer",
                                                         ttl_seconds=GRANT_TTL_SECONDS)
        return Response(200, b"", "text/plain", headers)

    def denied(self, request: Request) -> Response:
        """The answer a denied peer gets (nginx's error_page after the authz subrequest said 401/403)."""
        try:
            status = int(request.headers.get("x-drimbox-status", "") or 403)
        except ValueError:
            status = 403
        if status not in DENIAL_STATUSES:
            status = 403
        reason = request.headers.get("x-drimbox-reason", "") or "access refused"
        headers = {}
        www = request.headers.get("x-drimbox-www-authenticate", "")
        if status == 401:
            headers["WWW-Authenticate"] = www or 'Bearer error="invalid_token"'
        elif www:
            headers["WWW-Authenticate"] = www
        if status == 503:
            headers["Retry-After"] = request.headers.get("x-drimbox-retry-after", "") or "30"
        return Response.json({"status": status, "error": reason}, status, headers)

    def bad_certificate(self, request: Request) -> Response:
        """nginx could not verify the client certificate presented (its error 495): 403, audited."""
        decision = refuse_unverified_certificate(self.peer_request(request), hsts_max_age=self.hsts_max_age)
        try:
            self.store.add_audit(decision.audit)
        except Exception:
            log.exception("audit trail not writable while refusing an unverified client certificate")
        return Response.json({"status": decision.status, "error": decision.reason}, decision.status)

    # --- health ---------------------------------------------------------------------------------
    def health(self, request: Request) -> Response:
        """The public status (db entry): what the national operator publishes, nothing more. The query string
        is ignored (nginx drops it too): the checks run at most once a second, in one thread at a time, and
        callers meanwhile get the last answer."""
        cached = self._health_cache
        if cached and time.monotonic() - cached[0] < HEALTH_CACHE_SECONDS:
            return cached[1]
        if not self._health_lock.acquire(blocking=cached is None):
            assert cached is not None
            return cached[1]
        try:
            cached = self._health_cache
            if cached and time.monotonic() - cached[0] < HEALTH_CACHE_SECONDS:
                return cached[1]
            body = public_health(self.health_status())
            response = Response.json(body, 200 if body["status"] != "down" else 503)
            self._health_cache = (time.monotonic(), response)
            return response
        finally:
            self._health_lock.release()

    def health_details(self, request: Request) -> Response:
        """Every check with its details and the access decision's timings: for the operator (admin entry)."""
        body = self.health_status(window=_float(request.query.get("window")))
        return Response.json(body, 200 if body["status"] != "down" else 503)

    def health_status(self, window: float | None = None) -> dict:
        checks: dict = {}
        started = time.perf_counter()
        try:
            self.rest.get_json("/system")
            checks["pacs"] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
        except Exception as error:
            checks["pacs"] = {"ok": False, "error": type(error).__name__}
        try:
            self.store.count_current_manifests()
            checks["store"] = {"ok": True}
        except Exception as error:
            checks["store"] = {"ok": False, "error": type(error).__name__}
        keeper = self.whitelist
        if keeper is None:
            checks["whitelist"] = {"ok": False, "in_force": False, "reason": "no whitelist configured"}
        else:
            current = keeper.current
            age = None
            if current is not None and current.generated_at is not None:
                age = round((datetime.now(timezone.utc) - current.generated_at).total_seconds() / 3600, 1)
            checks["whitelist"] = {
                "ok": current is not None and (age is None or age < 48),
                "in_force": current is not None,
                "generated_at": current.generated_at.isoformat() if current and current.generated_at else None,
                "age_hours": age,
                "domains": len(current.domains) if current else 0,
                "last_refresh": keeper.last_result or None,
            }
        psc = self.facts.psc_status()
        last_error = self.facts.last_psc_error
        psc["ok"] = not (last_error and (self.facts.last_psc_ok is None or last_error[0] > self.facts.last_psc_ok))
        psc.pop("last_error", None)  # the message may name internal URLs; the operator sees it in the logs
        checks["psc"] = psc
        checks["dmp"] = self._dmp_status()
        essential = checks["pacs"]["ok"] and checks["store"]["ok"]
        status = "ok" if essential and all(c.get("ok", True) for c in checks.values()) else (
            "degraded" if essential else "down")
        return {
            "status": status,
            "service": "DRIMbox WADO-RS (RAD-107)",
            "version": __version__,
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "client_certificate": "required" if self.facts.client_certificate_required else "off",
            "checks": checks,
            "access_decision_ms": self.timing_summary(window or 300.0),
        }

    def timing_summary(self, window: float = 300.0) -> dict:
        """p50/p95 over the requests of the last ``window`` seconds (at most 5,000): the decision alone, and
        the whole authz answer (header parsing, decision, audit row written)."""
        since = time.monotonic() - max(0.1, min(window, 3600.0))
        with self._timings_lock:
            samples = [s[1:] for s in self._timings if s[0] >= since]
        if not samples:
            return {"count": 0, "window_seconds": window}
        def pct(values: list[float], q: float) -> float:
            values = sorted(values)
            return round(values[min(len(values) - 1, int(q * len(values)))], 3)
        decided = [s[0] for s in samples]
        total = [s[1] for s in samples]
        return {"count": len(samples), "window_seconds": window,
                "decision_p50": pct(decided, 0.5), "decision_p95": pct(decided, 0.95),
                "with_audit_p50": pct(total, 0.5), "with_audit_p95": pct(total, 0.95)}

    def _dmp_status(self) -> dict:
        if not self.settings.dmp.enabled:
            return {"enabled": False}
        try:
            queued = self.store.list_publications(state="queued", limit=1000)
        except Exception as error:
            return {"enabled": True, "ok": False, "error": type(error).__name__}
        retrying = [p for p in queued if getattr(p, "attempts", 0) > 0 and getattr(p, "last_error", "")]
        return {"enabled": True, "ok": not retrying, "queued": len(queued), "retrying": len(retrying)}


def public_health(status: dict) -> dict:
    """The status reduced to what a prober needs: overall state, time computed, and each check's verdict."""
    return {
        "status": status["status"],
        "service": status["service"],
        "time": status["time"],
        "client_certificate": status["client_certificate"],
        "checks": {name: {"ok": bool(check.get("ok", True))} for name, check in status["checks"].items()},
    }


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
