"""The audit trail's retention: rows older than the configured period are archived, then deleted from the store.

An archive is a gzip file of JSON lines (one stored event per line, oldest first) named after the first row it
holds. It is written to a temporary name, synced and renamed before any row is deleted, so a crash never loses a
row; a run after a crash rewrites the file of the same first row (same name) instead of duplicating it.
"""

from __future__ import annotations

import gzip
import logging
import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Protocol

log = logging.getLogger("drimbox.audit")

BATCH_ROWS = 10000


class AuditRows(Protocol):
    def audit_before(self, cutoff: str, *, limit: int) -> list[tuple[int, str, str]]: ...

    def delete_audit(self, first_id: int, last_id: int, cutoff: str) -> int: ...


class AuditArchiver:
    def __init__(self, store: AuditRows, folder: Path, retention_days: int, clock: Callable[[], float],
                 batch_rows: int = BATCH_ROWS):
        self.store = store
        self.folder = folder
        self.retention = timedelta(days=retention_days)
        self.clock = clock
        self.batch_rows = batch_rows

    def cutoff(self) -> str:
        """The ISO time (the audit rows' own format) before which rows leave the store."""
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        return (now - self.retention).isoformat(timespec="milliseconds")

    def run_once(self) -> list[Path]:
        """Archive and delete every row past the retention period; returns the archives written."""
        cutoff = self.cutoff()
        written = []
        while True:
            rows = self.store.audit_before(cutoff, limit=self.batch_rows)
            if not rows:
                break
            path = self._write(rows)
            written.append(path)
            deleted = self.store.delete_audit(rows[0][0], rows[-1][0], cutoff)
            log.info("audit trail: %d rows older than %s archived to %s", deleted, cutoff[:10], path)
            if len(rows) < self.batch_rows:
                break
        return written

    def _write(self, rows: list[tuple[int, str, str]]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        first_id, first_at, _ = rows[0]
        path = self.folder / f"audit-{first_at[:10]}-{first_id:012d}.jsonl.gz"
        temporary = path.with_name(path.name + ".tmp")
        with open(temporary, "wb") as raw:
            with gzip.GzipFile(filename=path.name[:-3], mode="wb", fileobj=raw, mtime=0) as archive:
                for _, _, event in rows:
                    archive.write(event.encode() + b"\n")  # json.dumps wrote it on one line
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(temporary, 0o600)  # the trail names patients and professionals
        os.replace(temporary, path)
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return path

    def run_forever(self, stopping: threading.Event, interval_seconds: float) -> None:
        """At start, then every ``interval_seconds`` until ``stopping`` is set."""
        while not stopping.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("archiving the audit trail failed; next attempt in %.0f s", interval_seconds)
            stopping.wait(interval_seconds)
