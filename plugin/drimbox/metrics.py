"""Figures for Prometheus (pushed by the Orthanc adapter into Orthanc's own /tools/metrics-prometheus).

Orthanc's Python plugin 4.0 has ``SetMetricsValue`` but no refresh callback, so a thread of the adapter asks
:meth:`Metrics.snapshot` every few seconds and pushes each value. Orthanc metrics carry no labels: the label is
part of the name (``drimbox_publications_failed``). Counters read their sources incrementally (the audit trail by
row id, nginx's peer access log by offset), so a snapshot costs little however long the box has run.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from drimbox.store import Store
from drimbox.store.records import PublicationState

log = logging.getLogger("drimbox.metrics")

PUBLICATION_STATES = ("queued", "done", "failed", "cancelled", "superseded", "skipped")
PEER_OUTCOMES = {200: "ok", 206: "ok", 400: "bad_request", 401: "bad_token", 403: "refused", 404: "not_found",
                 410: "gone"}


class TimedDmp:
    """The DMP client as the publisher uses it, timing every call (the last and a running mean)."""

    def __init__(self, client) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.calls = 0
        self.failures = 0
        self.total_seconds = 0.0
        self.last_seconds = 0.0

    def _timed(self, method: str, *args, **kwargs):
        started = time.monotonic()
        ok = False
        try:
            result = getattr(self._client, method)(*args, **kwargs)
            ok = True
            return result
        finally:
            elapsed = time.monotonic() - started
            with self._lock:
                self.calls += 1
                self.failures += 0 if ok else 1
                self.total_seconds += elapsed
                self.last_seconds = elapsed

    def publish(self, *args, **kwargs):
        return self._timed("publish", *args, **kwargs)

    def find_entry_uuid(self, *args, **kwargs):
        return self._timed("find_entry_uuid", *args, **kwargs)

    def delete(self, *args, **kwargs):
        return self._timed("delete", *args, **kwargs)

    def figures(self) -> dict[str, float]:
        with self._lock:
            mean = self.total_seconds / self.calls if self.calls else 0.0
            return {"drimbox_dmp_calls_total": self.calls, "drimbox_dmp_call_failures_total": self.failures,
                    "drimbox_dmp_last_latency_seconds": round(self.last_seconds, 4),
                    "drimbox_dmp_mean_latency_seconds": round(mean, 4)}


class PeerAccessLog:
    """nginx's log of the peers' WADO-RS requests (``$msec $status $body_bytes_sent`` per line), read from where
    the last reading stopped; a shorter file means it was rotated, and reading starts again from its beginning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.requests: Counter[str] = Counter()
        self.bytes_served = 0

    def read(self) -> None:
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if size < self._offset:
            self._offset = 0
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read(size - self._offset)
        complete = data.rfind(b"\n") + 1
        self._offset += complete
        for line in data[:complete].splitlines():
            fields = line.split()
            if len(fields) < 3 or not fields[1].isdigit() or not fields[2].isdigit():
                continue
            self.requests[PEER_OUTCOMES.get(int(fields[1]), "other")] += 1
            self.bytes_served += int(fields[2])


class Metrics:
    def __init__(self, store: Store, *, dmp: TimedDmp | None, peer_log: PeerAccessLog | None,
                 whitelist_status: Callable[[], dict | None], clock: Callable[[], float] = time.time):
        self.store = store
        self.dmp = dmp
        self.peer_log = peer_log
        self.whitelist_status = whitelist_status
        self.clock = clock
        self._audit_cursor = 0
        self._audit_counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, float]:
        with self._lock:  # one reader at a time: the cursors move
            now = self.clock()
            values: dict[str, float] = {}
            counts = self.store.publication_counts()
            for state in PUBLICATION_STATES:
                values[f"drimbox_publications_{state}"] = counts.get(state, 0)
            values["drimbox_publication_queue_depth"] = counts.get(PublicationState.QUEUED, 0)
            oldest = self.store.oldest_waiting_publication()
            values["drimbox_publication_oldest_waiting_seconds"] = round(now - oldest.ready_at, 1) if oldest else 0
            if self.dmp is not None:
                values.update(self.dmp.figures())
            if self.peer_log is not None:
                self.peer_log.read()
                for outcome in sorted(set(PEER_OUTCOMES.values()) | {"other"}):
                    values[f"drimbox_peer_requests_{outcome}_total"] = self.peer_log.requests.get(outcome, 0)
                values["drimbox_peer_bytes_served_total"] = self.peer_log.bytes_served
            self._read_audit()
            for name in ("peer_allowed", "peer_refused", "consumer_allowed", "consumer_refused", "viewer_allowed",
                         "viewer_refused", "operator_actions"):
                values[f"drimbox_audit_{name}_total"] = self._audit_counts.get(name, 0)
            values.update(self._whitelist(now))
            return values

    def _read_audit(self) -> None:
        while True:
            rows = self.store.audit_after(self._audit_cursor)
            for row_id, event in rows:
                self._audit_cursor = row_id
                allowed = 200 <= int(event.get("outcome_status") or 0) < 400
                entry = event.get("entry_point", "")
                if entry == "wado-rs":
                    self._audit_counts["peer_allowed" if allowed else "peer_refused"] += 1
                elif entry in ("consumer", "viewer"):
                    self._audit_counts[f"{entry}_{'allowed' if allowed else 'refused'}"] += 1
                elif entry == "operator" and event.get("operator"):
                    self._audit_counts["operator_actions"] += 1
            if len(rows) < 5000:
                return

    def _whitelist(self, now: float) -> dict[str, float]:
        status = self.whitelist_status()
        values: dict[str, float] = {"drimbox_whitelist_in_force": 1 if status and status.get("in_force") else 0}
        for key, name in (("generated_at", "drimbox_whitelist_age_seconds"),
                          ("in_force_since", "drimbox_whitelist_in_force_seconds")):
            moment = _epoch((status or {}).get(key))
            values[name] = round(now - moment) if moment is not None else -1
        return values


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).timestamp()


class MetricsPusher:
    """A daemon thread handing a snapshot to ``push(name, value)`` every ``interval`` seconds."""

    def __init__(self, metrics: Metrics, push: Callable[[str, float], None], interval: float = 10.0) -> None:
        self.metrics = metrics
        self.push = push
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drimbox-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def push_once(self) -> None:
        for name, value in self.metrics.snapshot().items():
            self.push(name, float(value))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.push_once()
            except Exception:
                log.exception("metrics snapshot failed")
            self._stop.wait(self.interval)
