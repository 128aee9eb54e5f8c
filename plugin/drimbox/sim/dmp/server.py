"""The simulated DMP as an HTTP(S) SOAP 1.2 service, with a small JSON admin API under <base>/_sim/."""

from __future__ import annotations

import collections
import json
import logging
import socket
import ssl
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import constants as c
from . import hl7v3
from .errors import SoapFaultError, XdsRefusal
from .faults import FaultInjector
from .mtom import build_mtom, parse_soap_request
from .registry import DmpRegistry
from .responses import adhoc_query_response, registry_response, retrieve_response
from .soap import fault_envelope, read_envelope, response_envelope
from .store import DmpStore
from .vihf import VihfValidator

log = logging.getLogger("drimbox.sim.dmp")

MAX_BODY_BYTES = 256 * 1024 * 1024
ENDPOINT_ACTIONS = {
    "registry": (c.ACTION_ITI18, c.ACTION_ITI57),
    "repository": (c.ACTION_ITI41, c.ACTION_ITI43),
    "patients": (c.ACTION_PATIENTS,),
    "habilitations": (c.ACTION_HABILITATIONS, c.ACTION_PATIENTS),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, handler, simulator: "DmpSimulator", ssl_context: ssl.SSLContext | None):
        self.simulator = simulator
        self.ssl_context = ssl_context
        self.open_connections: set = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            # The handshake runs in the connection's own thread (first read), never in the accept loop.
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.connections_lock:
            self.open_connections.add(sock)
        return sock, addr

    def shutdown_request(self, request) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def cut_open_connections(self) -> None:
        """A stopped DMP must look stopped: kept-alive connections are cut, not served on."""
        with self.connections_lock:
            connections = list(self.open_connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DrimboxDmpSimulator/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s - " + format, self.client_address[0], *args)

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(30)
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS handshake refused: %s", exc)
                self.close_connection = True
                raise ConnectionAbortedError(str(exc)) from None
            self.connection.settimeout(None)

    # ---------------------------------------------------------------- plumbing
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise SoapFaultError("soap:Sender", "request body too large", http_status=413)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise SoapFaultError("soap:Sender", "request body too large", http_status=413)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, value: Any) -> None:
        self._send(status, "application/json", json.dumps(value, indent=1).encode())

    def _route(self) -> tuple[str, str] | None:
        base = self.server.simulator.base_path
        path = self.path.split("?", 1)[0].rstrip("/")
        if not path.startswith(base):
            return None
        rest = path[len(base):].lstrip("/")
        if rest.startswith("_sim/"):
            return "admin", rest[5:]
        return "soap", rest

    # ---------------------------------------------------------------- verbs
    def do_GET(self) -> None:
        route = self._route()
        sim = self.server.simulator
        if route == ("soap", ""):
            return self._send_json(200, {"status": "ok", "service": "DMP simulator", **sim.store.counts()})
        if route is None or route[0] != "admin":
            return self._send_json(404, {"error": f"no resource at {self.path}"})
        name = route[1]
        if name == "documents":
            return self._send_json(200, [d.summary() for d in sim.store.all_documents()])
        if name == "requests":
            query = self.path.partition("?")[2]
            limit = next((int(v) for k, _, v in (p.partition("=") for p in query.split("&"))
                          if k == "limit" and v.isdigit()), None)
            entries = list(sim.request_log)
            return self._send_json(200, entries[-limit:] if limit else entries)
        if name == "faults":
            return self._send_json(200, sim.faults.state())
        return self._send_json(404, {"error": f"unknown admin resource {name!r}"})

    def do_POST(self) -> None:
        route = self._route()
        if route is None:
            self._read_body()
            return self._send_json(404, {"error": f"no resource at {self.path}"})
        if route[0] == "admin":
            return self._admin_post(route[1])
        if route[1] not in ENDPOINT_ACTIONS:
            self._read_body()
            return self._send_json(404, {"error": f"no SOAP endpoint {route[1]!r}"})
        if self.server.simulator.client_ca and not self._client_certificate():
            self._read_body()
            return self._send_json(403, {"error": "mutual TLS: a client certificate issued by the DMP's CA "
                                                  "is required"})
        return self._soap(route[1])

    def _client_certificate(self) -> dict | None:
        getpeercert = getattr(self.connection, "getpeercert", None)
        return getpeercert() if getpeercert else None

    def _admin_post(self, name: str) -> None:
        sim = self.server.simulator
        try:
            raw = self._read_body()
            payload = json.loads(raw or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("the JSON body must be an object")
            if name == "faults":
                sim.faults.configure(payload.get("mode", "none"), payload.get("delay_seconds") or 0.0,
                                     payload.get("count"))
                return self._send_json(200, sim.faults.state())
            if name == "reset":
                sim.reset()
                return self._send_json(200, {"reset": True})
            if name == "patients":
                patient = payload.get("patientId")
                if not isinstance(patient, str) or not patient:
                    raise ValueError('"patientId" (CX ...^NH) is required')
                sim.store.set_patient(patient, bool(payload.get("exists", True)), bool(payload.get("authorized", True)))
                return self._send_json(200, {"patientId": patient})
        except (ValueError, json.JSONDecodeError) as exc:
            return self._send_json(400, {"error": str(exc)})
        return self._send_json(404, {"error": f"unknown admin resource {name!r}"})

    # ---------------------------------------------------------------- SOAP
    def _soap(self, endpoint: str) -> None:
        sim = self.server.simulator
        started = time.monotonic()
        entry: dict[str, Any] = {"time": time.time(), "endpoint": endpoint, "action": "", "messageId": ""}
        fault = sim.faults.take()
        try:
            body = self._read_body()
            if fault is not None:
                entry["injected"] = fault.mode
                if fault.mode == "slow":
                    time.sleep(fault.delay_seconds)
                elif fault.mode == "drop":
                    entry["verdict"] = "dropped"
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                elif fault.mode == "http500":
                    entry["verdict"] = "http500"
                    self.close_connection = True
                    return self._send(500, "text/plain", b"simulated internal server error")
                elif fault.mode == "soap_fault":
                    entry["verdict"] = "soap_fault"
                    injected = SoapFaultError("soap:Receiver", "simulated DMP failure", code="soap:Receiver",
                                              http_status=500)
                    return self._send(500, "application/soap+xml; charset=UTF-8", fault_envelope(injected))
            status, content_type, answer = self._process(endpoint, body, entry)
            self._send(status, content_type, answer)
        except SoapFaultError as exc:
            entry.update(verdict="fault", errors=[{"code": exc.subcode, "context": exc.reason}])
            self._send(exc.http_status, "application/soap+xml; charset=UTF-8",
                       fault_envelope(exc, entry.get("messageId", "")))
        except (ConnectionError, TimeoutError):
            entry["verdict"] = "connection lost"
            self.close_connection = True
        except Exception as exc:  # last resort: an answer, never a traceback on the wire
            entry.update(verdict="internal error", errors=[{"code": type(exc).__name__, "context": str(exc)}],
                         traceback=traceback.format_exc())
            internal = SoapFaultError("soap:Receiver", f"simulator internal error: {type(exc).__name__}: {exc}",
                                      code="soap:Receiver", http_status=500)
            self._send(500, "application/soap+xml; charset=UTF-8", fault_envelope(internal))
        finally:
            entry["durationMs"] = round((time.monotonic() - started) * 1000, 1)
            sim.request_log.append(entry)

    def _process(self, endpoint: str, body: bytes, entry: dict[str, Any]) -> tuple[int, str, bytes]:
        sim = self.server.simulator
        message = parse_soap_request(self.headers.get("Content-Type", ""), body)
        request = read_envelope(message.envelope, ENDPOINT_ACTIONS[endpoint])
        entry.update(action=request.action, messageId=request.message_id)
        vihf = sim.vihf.validate(request.security)
        entry["structure"] = vihf.structure_id
        action = request.action
        attachments: list[tuple[str, str, bytes]] = []
        mtom_answer = message.is_mtom
        try:
            if action == c.ACTION_ITI41:
                payload = sim.registry.provide_and_register(request.body_payload, message.attachments, vihf)
            elif action == c.ACTION_ITI57:
                payload = sim.registry.update_status(request.body_payload, vihf)
            elif action == c.ACTION_ITI18:
                payload = sim.registry.stored_query(request.body_payload, vihf)
            elif action == c.ACTION_ITI43:
                payload, attachments = sim.registry.retrieve(request.body_payload, vihf)
                mtom_answer = True
            elif endpoint == "habilitations":
                payload = hl7v3.habilitations(request.body_payload, vihf)
            else:
                payload = hl7v3.patient_query(request.body_payload, vihf, sim.store)
            entry["verdict"] = "success" if payload.get("status", c.RESPONSE_SUCCESS) == c.RESPONSE_SUCCESS \
                else "partial"
        except XdsRefusal as refusal:
            entry.update(verdict="failure", errors=[e.__dict__ for e in refusal.errors])
            if action == c.ACTION_ITI18:
                payload = adhoc_query_response([], refusal.errors)
            elif action == c.ACTION_ITI43:
                payload = retrieve_response([], refusal.errors)
                mtom_answer = True
            else:
                payload = registry_response(refusal.errors)
        envelope = response_envelope(action, request.message_id, payload)
        if mtom_answer:
            content_type, answer = build_mtom(envelope, attachments, c.response_action(action))
            return 200, content_type, answer
        return 200, f'application/soap+xml; charset=UTF-8; action="{c.response_action(action)}"', envelope


class DmpSimulator:
    """A strict, persistent DMP (XDS.b registry + repository) for development and tests.

    Endpoints: <url>/registry (ITI-18, ITI-57), <url>/repository (ITI-41, ITI-43), <url>/patients (TEST_EXST),
    <url>/habilitations; admin JSON API under <url>/_sim/ (faults, documents, requests, reset, patients).
    """

    def __init__(self, data_dir: str, *, host: str = "127.0.0.1", port: int = 0, tls_cert: str | None = None,
                 tls_key: str | None = None, client_ca: str | None = None, signing_ca: str | None = None,
                 base_path: str = "/dmp", repository_unique_id: str = c.REPOSITORY_UNIQUE_ID,
                 request_log_size: int = 200):
        if client_ca and not tls_cert:
            raise ValueError("client_ca (client certificate requirement) needs tls_cert and tls_key")
        if tls_key and not tls_cert:
            raise ValueError("tls_key given without tls_cert")
        self.data_dir = data_dir
        self.host = host
        self.requested_port = port
        self.tls_cert, self.tls_key, self.client_ca, self.signing_ca = tls_cert, tls_key, client_ca, signing_ca
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.repository_unique_id = repository_unique_id
        self.faults = FaultInjector()
        self.request_log: collections.deque = collections.deque(maxlen=request_log_size)
        self.vihf = VihfValidator.from_ca_file(signing_ca)
        self._store: DmpStore | None = None
        self._registry: DmpRegistry | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def store(self) -> DmpStore:
        if self._store is None:
            raise RuntimeError("the DMP simulator is not started")
        return self._store

    @property
    def registry(self) -> DmpRegistry:
        if self._registry is None:
            raise RuntimeError("the DMP simulator is not started")
        return self._registry

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls_cert:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.tls_cert, self.tls_key)
        if self.client_ca:
            # Optional at the TLS layer so that a person can read the admin JSON views in a browser;
            # the SOAP endpoints refuse a caller without a verified certificate (see do_POST).
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(cafile=self.client_ca)
        return ctx

    def start(self) -> "DmpSimulator":
        if self._server is not None:
            return self
        self._store = DmpStore(self.data_dir)
        self._registry = DmpRegistry(self._store, self.repository_unique_id)
        self._server = _Server((self.host, self.requested_port), _Handler, self, self._ssl_context())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="dmp-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.cut_open_connections()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.store.close()
        self._server = self._thread = None

    def reset(self) -> None:
        self.store.reset()
        self.faults.configure("none")
        self.request_log.clear()

    def __enter__(self) -> "DmpSimulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_cert else "http"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}{self.base_path}"

    @property
    def registry_url(self) -> str:
        return self.url + "/registry"

    @property
    def repository_url(self) -> str:
        return self.url + "/repository"

    @property
    def patients_url(self) -> str:
        return self.url + "/patients"

    @property
    def habilitations_url(self) -> str:
        return self.url + "/habilitations"
