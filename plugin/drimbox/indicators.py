"""The national activity indicators of one day, as CSV (``;``-separated, UTF-8): appels contextuels, DMP
publications and withdrawals, consultations, each counted by outcome (``succes`` / ``erreur``).

Read from durable facts only (the audit trail and the publication queue), so a day can be exported again at any
time; a thread writes yesterday's file under ``<data dir>/indicators/`` once a day.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import threading
from pathlib import Path
from typing import Callable

from drimbox.store import Store
from drimbox.store.records import PublicationState

log = logging.getLogger("drimbox.indicators")

# The consumer's audit action for one appel contextuel (entry point "consumer").
CONTEXTUAL_CALL_ACTION = "appel-contextuel"
OPEN_VIEWER_ACTION = "open-viewer"
HEADER = ("date", "indicateur", "statut", "nombre")
OUTCOMES = ("succes", "erreur")


def day_bounds(day: dt.date) -> tuple[float, float]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


def daily_indicators(store: Store, day: dt.date) -> list[tuple[str, str, str, int]]:
    start, end = day_bounds(day)
    counts: dict[tuple[str, str], int] = {}

    def add(name: str, ok: bool, n: int = 1) -> None:
        key = (name, OUTCOMES[0] if ok else OUTCOMES[1])
        counts[key] = counts.get(key, 0) + n

    for job in store.publications_finished_between(start, end):
        if job.state in (PublicationState.DONE, PublicationState.FAILED):
            add("publications_dmp" if job.action == "register" else "retraits_dmp", job.state == PublicationState.DONE)
    since = dt.datetime.fromtimestamp(start, dt.timezone.utc).isoformat()
    until = dt.datetime.fromtimestamp(end, dt.timezone.utc).isoformat()
    for entry, action, allowed, n in store.audit_counts(since, until):
        if entry == "consumer" and action == CONTEXTUAL_CALL_ACTION:
            add("appels_contextuels", allowed, n)
        elif entry == "viewer" and action == OPEN_VIEWER_ACTION:
            add("consultations_visionneuse", allowed, n)
        elif entry == "wado-rs":
            add("recuperations_par_les_pairs", allowed, n)
    names = ("appels_contextuels", "publications_dmp", "retraits_dmp", "consultations_visionneuse",
             "recuperations_par_les_pairs")
    return [(day.isoformat(), name, outcome, counts.get((name, outcome), 0)) for name in names for outcome in OUTCOMES]


def to_csv(rows: list[tuple[str, str, str, int]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue()


class DailyExport:
    """Writes ``indicateurs-<day>.csv`` for every finished day not written yet (checked hourly)."""

    def __init__(self, store: Store, folder: Path, *, clock: Callable[[], float], interval: float = 3600.0):
        self.store = store
        self.folder = folder
        self.clock = clock
        self.interval = interval
        self._stop = threading.Event()

    def write_yesterday(self) -> Path:
        today = dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc).date()
        day = today - dt.timedelta(days=1)
        path = self.folder / f"indicateurs-{day.isoformat()}.csv"
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".tmp")
            partial.write_text(to_csv(daily_indicators(self.store, day)), encoding="utf-8")
            partial.replace(path)
        return path

    def start(self) -> None:
        threading.Thread(target=self._run, name="drimbox-indicators", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.write_yesterday()
            except Exception:
                log.exception("writing the daily indicators failed")
            self._stop.wait(self.interval)
