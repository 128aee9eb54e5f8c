"""The consumer role's durable state: working contexts and national statistics lines."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable

from drimbox.consumer.appel import AppelContextuel
from drimbox.consumer.context import ConsumerContext
from drimbox.consumer.history import ExamRow
from drimbox.consumer.statistics import StatLine
from drimbox.store.database import Database


class ConsumerStore:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    # --- contexts --------------------------------------------------------------------------------
    def add_context(self, context: ConsumerContext) -> None:
        self.db.execute(
            "INSERT INTO consumer_contexts (context_id, binding_digest, created_at, expires_at, appel, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (context.context_id, context.binding_digest, context.created_at, context.expires_at,
             json.dumps(context.appel.to_json()), self.clock()))

    def get_context(self, context_id: str) -> ConsumerContext | None:
        row = self.db.query_one("SELECT * FROM consumer_contexts WHERE context_id = ?", (context_id,))
        return _context(row) if row else None

    def save_choices(self, context: ConsumerContext) -> None:
        """Record who took the context, under which activity, and why."""
        self.db.execute(
            "UPDATE consumer_contexts SET professional_id = ?, activity_key = ?, structure_id = ?, reason = ?,"
            " reason_text = ?, updated_at = ? WHERE context_id = ?",
            (context.professional_id, context.activity_key, context.structure_id, context.reason,
             context.reason_text, self.clock(), context.context_id))

    def save_history(self, context_id: str, rows: list[ExamRow]) -> None:
        now = self.clock()
        self.db.execute("UPDATE consumer_contexts SET history = ?, history_at = ?, updated_at = ? WHERE context_id = ?",
                        (json.dumps([r.to_json() for r in rows]), now, now, context_id))

    def history(self, context_id: str) -> list[ExamRow] | None:
        """The exam rows last fetched for this context, None when never fetched."""
        row = self.db.query_one("SELECT history FROM consumer_contexts WHERE context_id = ?", (context_id,))
        if row is None or row["history"] is None:
            return None
        return [ExamRow.from_json(item) for item in json.loads(row["history"])]

    def purge_contexts(self, now: float | None = None) -> int:
        """Forget expired contexts (their patient data with them); returns how many."""
        cursor = self.db.execute("DELETE FROM consumer_contexts WHERE expires_at <= ?",
                                 (self.clock() if now is None else now,))
        return cursor.rowcount

    # --- national statistics -----------------------------------------------------------------------
    def add_statistic(self, outcome: str, detail: str = "") -> None:
        line = StatLine(self.clock(), outcome)
        self.db.execute("INSERT INTO consumer_statistics (at, outcome, detail) VALUES (?, ?, ?)",
                        (line.at, line.outcome, detail))

    def statistics(self, start: float, end: float) -> list[StatLine]:
        rows = self.db.query("SELECT at, outcome FROM consumer_statistics WHERE at >= ? AND at < ? ORDER BY at",
                             (start, end))
        return [StatLine(row["at"], row["outcome"]) for row in rows]


def _context(row: sqlite3.Row) -> ConsumerContext:
    return ConsumerContext(
        context_id=row["context_id"], binding_digest=row["binding_digest"], created_at=row["created_at"],
        expires_at=row["expires_at"], appel=AppelContextuel.from_json(json.loads(row["appel"])),
        professional_id=row["professional_id"], activity_key=row["activity_key"], structure_id=row["structure_id"],
        reason=row["reason"], reason_text=row["reason_text"])


class RetrievalStore:
    """Retrievals of exams opened in a context, and the cache of foreign studies they filled."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def start(self, context_id: str, kos_uid: str) -> bool:
        """Claim the retrieval of ``kos_uid`` for this context; False when one is running or done already."""
        now = self.clock()
        with self.db.transaction() as conn:
            row = conn.execute("SELECT state FROM consumer_retrievals WHERE context_id = ? AND kos_uid = ?",
                               (context_id, kos_uid)).fetchone()
            if row is not None and row["state"] not in ("failed", "partial"):
                return False
            conn.execute(
                "INSERT INTO consumer_retrievals (context_id, kos_uid, state, started_at, updated_at)"
                " VALUES (?, ?, 'fetching_kos', ?, ?) ON CONFLICT(context_id, kos_uid) DO UPDATE SET"
                " state = 'fetching_kos', error = '', series_done = 0, updated_at = excluded.updated_at",
                (context_id, kos_uid, now, now))
        return True

    def update(self, context_id: str, kos_uid: str, **values: object) -> None:
        allowed = {"study_uid", "state", "series_total", "series_done", "refused_hosts", "error"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown retrieval column(s): {sorted(unknown)}")
        if "refused_hosts" in values:
            values["refused_hosts"] = json.dumps(values["refused_hosts"])
        assignments = ", ".join(f"{k} = ?" for k in values)
        self.db.execute(f"UPDATE consumer_retrievals SET {assignments}, updated_at = ?"
                        " WHERE context_id = ? AND kos_uid = ?",
                        (*values.values(), self.clock(), context_id, kos_uid))

    def get(self, context_id: str, kos_uid: str) -> dict | None:
        row = self.db.query_one("SELECT * FROM consumer_retrievals WHERE context_id = ? AND kos_uid = ?",
                                (context_id, kos_uid))
        if row is None:
            return None
        return {**dict(row), "refused_hosts": json.loads(row["refused_hosts"])}

    def of_context(self, context_id: str) -> list[dict]:
        """The retrievals of one context, oldest first."""
        rows = self.db.query("SELECT * FROM consumer_retrievals WHERE context_id = ? ORDER BY started_at",
                             (context_id,))
        return [{**dict(row), "refused_hosts": json.loads(row["refused_hosts"])} for row in rows]

    def cache(self, study_uid: str, *, kos_uid: str, patient_ins: str, source_host: str, expires_at: float) -> None:
        """Mark ``study_uid`` foreign and cached (an imported study stays imported, a purged one is cached again)."""
        self.db.execute(
            "INSERT INTO consumer_cache (study_uid, kos_uid, patient_ins, source_host, state, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, 'cached', ?, ?) ON CONFLICT(study_uid) DO UPDATE SET kos_uid = excluded.kos_uid,"
            " expires_at = MAX(consumer_cache.expires_at, excluded.expires_at),"
            " state = CASE WHEN consumer_cache.state = 'purged' THEN 'cached' ELSE consumer_cache.state END",
            (study_uid, kos_uid, patient_ins, source_host, self.clock(), expires_at))

    def cached(self, study_uid: str) -> dict | None:
        row = self.db.query_one("SELECT * FROM consumer_cache WHERE study_uid = ?", (study_uid,))
        return dict(row) if row else None

    def list_cache(self, *, limit: int = 500) -> list[dict]:
        return [dict(r) for r in self.db.query("SELECT * FROM consumer_cache ORDER BY created_at DESC LIMIT ?",
                                               (limit,))]

    # --- purge --------------------------------------------------------------------------------------------
    def expired(self, now: float) -> list[str]:
        """Cached (never imported) studies past their expiry."""
        rows = self.db.query("SELECT study_uid FROM consumer_cache WHERE state = 'cached' AND expires_at <= ?"
                             " ORDER BY expires_at", (now,))
        return [row["study_uid"] for row in rows]

    def claim_purge(self, study_uid: str, now: float) -> bool:
        """Take an expired cached study for deletion, unless it was imported, renewed or is being retrieved."""
        with self.db.transaction() as conn:
            busy = conn.execute("SELECT 1 FROM consumer_retrievals WHERE study_uid = ? AND state IN"
                                " ('fetching_kos', 'fetching')", (study_uid,)).fetchone()
            if busy is not None:
                return False
            cursor = conn.execute("UPDATE consumer_cache SET state = 'purging' WHERE study_uid = ? AND"
                                  " state = 'cached' AND import_state != 'importing' AND expires_at <= ?",
                                  (study_uid, now))
            return cursor.rowcount == 1

    def end_purge(self, study_uid: str, *, deleted: bool) -> None:
        """``deleted``: gone from Orthanc (the record stays, so the study is still known as foreign)."""
        self.db.execute("UPDATE consumer_cache SET state = ? WHERE study_uid = ? AND state = 'purging'",
                        ("purged" if deleted else "cached", study_uid))

    # --- import into the local PACS -------------------------------------------------------------------------
    def claim_import(self, study_uid: str) -> bool:
        """Take a cached (or already imported: a retry) study for import; False when it is gone or busy."""
        cursor = self.db.execute(
            "UPDATE consumer_cache SET import_state = 'importing', import_detail = '' WHERE study_uid = ? AND"
            " state IN ('cached', 'imported') AND import_state != 'importing'", (study_uid,))
        return cursor.rowcount == 1

    def end_import(self, study_uid: str, *, ok: bool, detail: str = "") -> None:
        """A done import makes the study permanent (state imported: never purged)."""
        if ok:
            self.db.execute("UPDATE consumer_cache SET state = 'imported', import_state = 'imported',"
                            " import_detail = ?, imported_at = ? WHERE study_uid = ?",
                            (detail, self.clock(), study_uid))
        else:
            self.db.execute("UPDATE consumer_cache SET import_state = 'failed', import_detail = ? WHERE study_uid = ?",
                            (detail, study_uid))
