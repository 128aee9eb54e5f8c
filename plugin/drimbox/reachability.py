"""Can the box reach the DMP, Pro Santé Connect and its peers? Probed from a thread, shown on the dashboard.

A probe is one GET with a short timeout. The DMP counts as reachable when it answers at all (its base URL has no
page of its own); PSC when its discovery document answers 200; a peer when its health check (a GET on its
WADO-RS base, read from its ``db`` host in the whitelist) answers 200.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import requests

log = logging.getLogger("drimbox.reachability")


@dataclass(frozen=True)
class Probe:
    name: str
    url: str
    verify: str | bool = True
    cert: tuple[str, str] | None = None
    any_answer: bool = False  # reachable on any HTTP answer (a service without a page at that URL)


@dataclass(frozen=True)
class ProbeResult:
    name: str
    url: str
    reachable: bool
    status: int | None
    detail: str
    checked_at: float
    latency_ms: float

    def to_json(self) -> dict:
        return self.__dict__.copy()


def probe(item: Probe, *, timeout: float = 5.0) -> ProbeResult:
    started = time.monotonic()
    try:
        with requests.Session() as session:
            session.trust_env = False
            answer = session.get(item.url, verify=item.verify, cert=item.cert, timeout=timeout,
                                 allow_redirects=False)
        ok = item.any_answer or answer.status_code == 200
        detail = f"HTTP {answer.status_code}"
        status: int | None = answer.status_code
    except requests.RequestException as error:
        ok, status, detail = False, None, f"{type(error).__name__}: {str(error)[:200]}"
    return ProbeResult(item.name, item.url, ok, status, detail, time.time(),
                       round((time.monotonic() - started) * 1000, 1))


class Reachability:
    def __init__(self, probes: Callable[[], list[Probe]], *, interval: float = 60.0, timeout: float = 5.0):
        self.probes = probes
        self.interval = interval
        self.timeout = timeout
        self._results: dict[str, ProbeResult] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def results(self) -> list[ProbeResult]:
        with self._lock:
            return list(self._results.values())

    def check_all(self) -> None:
        found = {}
        for item in self.probes():
            found[item.name] = probe(item, timeout=self.timeout)
        with self._lock:
            self._results = found

    def start(self) -> None:
        threading.Thread(target=self._run, name="drimbox-reachability", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_all()
            except Exception:
                log.exception("reachability probes failed")
            self._stop.wait(self.interval)


def probes_from_settings(settings, whitelist_domains: Callable[[], list]) -> Callable[[], list[Probe]]:
    """The probes of this box: its DMP (with its client certificate), its PSC, and every peer of the whitelist."""
    from urllib.parse import urlsplit

    def build() -> list[Probe]:
        items = []
        dmp = settings.dmp
        if dmp.enabled:
            cert = (dmp.client_cert, dmp.client_key) if dmp.client_cert.endswith(".pem") and dmp.client_key else None
            items.append(Probe("DMP", dmp.base_url, dmp.ca_bundle or True, cert, any_answer=True))
        psc = settings.psc
        items.append(Probe("Pro Santé Connect", psc.issuer_url.rstrip("/") + "/.well-known/wallet-openid-configuration",
                           psc.ca_bundle or True))
        wado_path = urlsplit(settings.identity.wado_rs_base).path.rstrip("/")
        own = urlsplit(settings.identity.wado_rs_base).netloc
        for domain in whitelist_domains():
            if domain.db and domain.db != own:
                items.append(Probe(f"{domain.name or domain.db}", f"https://{domain.db}{wado_path}",
                                   dmp.ca_bundle or True))
        return items

    return build
