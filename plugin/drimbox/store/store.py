"""The store's operations, grouped by the table they own."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, ContextManager, Iterable

from drimbox.store.database import Database, open_database
from drimbox.store.records import (
    InstanceFact,
    ManifestRecord,
    ManifestStatus,
    MessageRecord,
    PublicationRecord,
    PublicationState,
    ReportRecord,
    StudyRecord,
)


class Store:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    @classmethod
    def open(cls, url: str, clock: Callable[[], float] = time.time) -> "Store":
        return cls(open_database(url), clock)

    def atomically(self) -> ContextManager[Any]:
        """Every store call inside the block commits together or not at all (a crash between two of them
        leaves neither): a manifest and its DMP registration, a withdrawal and its deletion."""
        return self.db.transaction()

    def exclusive(self, name: str, *, wait: bool = True) -> ContextManager[bool]:
        """A named lock shared by every node on this store (the change cursor, a study being reconciled)."""
        return self.db.exclusive(name, wait=wait)

    # --- messages -------------------------------------------------------------------------------
    def add_message(self, *, channel: str, raw: bytes, message_type: str = "", control_id: str = "",
                    event: str | None = None, report_id: str | None = None, errors: Iterable[str] = ()) -> int:
        cur = self.db.execute(
            "INSERT INTO messages (received_at, channel, message_type, control_id, event, report_id, raw, errors)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (self.clock(), channel, message_type, control_id, event, report_id, raw, json.dumps(list(errors))))
        return cur.lastrowid

    def set_message_outcome(self, message_id: int, ack_code: str, ack_text: str, errors: Iterable[str] = (),
                            warnings: Iterable[str] = ()) -> None:
        self.db.execute("UPDATE messages SET ack_code = ?, ack_text = ?, errors = ?, warnings = ? WHERE id = ?",
                        (ack_code, ack_text, json.dumps(list(errors)), json.dumps(list(warnings)), message_id))

    def stored_message_bytes(self) -> int:
        """Total size of the raw messages kept (the quota of ``Hl7.MessageStoreQuotaBytes``)."""
        row = self.db.query_one("SELECT COALESCE(SUM(LENGTH(raw)), 0) AS total FROM messages")
        return int(row["total"]) if row else 0

    def get_message(self, message_id: int) -> MessageRecord | None:
        row = self.db.query_one("SELECT * FROM messages WHERE id = ?", (message_id,))
        return MessageRecord.from_row(row) if row else None

    def list_messages(self, *, limit: int = 100, problems_only: bool = False) -> list[MessageRecord]:
        where = "WHERE ack_code != 'AA' OR warnings != '[]'" if problems_only else ""
        rows = self.db.query(f"SELECT * FROM messages {where} ORDER BY id DESC LIMIT ?", (limit,))
        return [MessageRecord.from_row(r) for r in rows]

    # --- reports --------------------------------------------------------------------------------
    def save_report(self, *, report_id: str, message_id: int | None, state: str, study_uids: Iterable[str],
                    flags: dict, cda: bytes | None, replaces_report_id: str | None = None, problem: str = "",
                    viewer_partial_url: str | None = None) -> None:
        now = self.clock()
        self.db.execute(
            "INSERT INTO reports (report_id, message_id, received_at, updated_at, state, problem, replaces_report_id,"
            " study_uids, flags, cda, viewer_partial_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(report_id) DO UPDATE SET message_id = excluded.message_id, updated_at = excluded.updated_at,"
            " state = excluded.state, problem = excluded.problem, replaces_report_id = excluded.replaces_report_id,"
            " study_uids = excluded.study_uids, flags = excluded.flags, cda = excluded.cda,"
            " viewer_partial_url = excluded.viewer_partial_url",
            (report_id, message_id, now, now, state, problem, replaces_report_id, json.dumps(list(study_uids)),
             json.dumps(flags), cda, viewer_partial_url))

    def get_report(self, report_id: str) -> ReportRecord | None:
        row = self.db.query_one("SELECT * FROM reports WHERE report_id = ?", (report_id,))
        return ReportRecord.from_row(row) if row else None

    def set_report_state(self, report_id: str, state: str, *, problem: str = "",
                         replaced_by: str | None = None) -> None:
        self.db.execute(
            "UPDATE reports SET state = ?, problem = ?, updated_at = ?,"
            " replaced_by_report_id = COALESCE(?, replaced_by_report_id) WHERE report_id = ?",
            (state, problem, self.clock(), replaced_by, report_id))

    def reports_for_study(self, study_uid: str) -> list[ReportRecord]:
        # study_uids is a JSON list; the LIKE narrows, the exact check filters
        rows = self.db.query("SELECT * FROM reports WHERE study_uids LIKE ? ORDER BY received_at, report_id",
                             (f'%"{study_uid}"%',))
        return [r for r in (ReportRecord.from_row(row) for row in rows) if study_uid in r.study_uids]

    def list_reports(self, *, limit: int = 100) -> list[ReportRecord]:
        rows = self.db.query("SELECT * FROM reports ORDER BY updated_at DESC LIMIT ?", (limit,))
        return [ReportRecord.from_row(r) for r in rows]

    # --- studies --------------------------------------------------------------------------------
    def get_study(self, study_uid: str) -> StudyRecord | None:
        row = self.db.query_one("SELECT * FROM studies WHERE study_uid = ?", (study_uid,))
        return StudyRecord.from_row(row) if row else None

    def update_study(self, study_uid: str, **values: Any) -> None:
        """Create or update the study row with the given columns."""
        allowed = {"orthanc_id", "report_id", "state", "problem", "stable_at"}  # pending: mark/settle_pending
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown study column(s): {sorted(unknown)}")
        now = self.clock()
        with self.db.transaction() as conn:
            exists = conn.execute("SELECT 1 FROM studies WHERE study_uid = ?", (study_uid,)).fetchone()
            if not exists:
                conn.execute("INSERT INTO studies (study_uid, state, updated_at) VALUES (?, ?, ?)",
                             (study_uid, values.get("state", "waiting_report"), now))
            if values:
                assignments = ", ".join(f"{k} = ?" for k in values)
                conn.execute(f"UPDATE studies SET {assignments}, updated_at = ? WHERE study_uid = ?",
                             (*values.values(), now, study_uid))

    def mark_pending(self, study_uid: str) -> int:
        """Durably note that the study must be looked at again (survives a restart, seen by every node).

        ``pending`` counts the marks: whoever looks at the study reads it first and clears it only if nobody
        marked the study meanwhile (:meth:`settle_pending`). Returns the new count."""
        with self.db.transaction() as conn:
            self.update_study(study_uid)
            conn.execute("UPDATE studies SET pending = pending + 1 WHERE study_uid = ?", (study_uid,))
            row = conn.execute("SELECT pending FROM studies WHERE study_uid = ?", (study_uid,)).fetchone()
        return int(row["pending"])

    def pending_mark(self, study_uid: str) -> int:
        """The study's mark count now (0: not pending), to hand back to :meth:`settle_pending`."""
        row = self.db.query_one("SELECT pending FROM studies WHERE study_uid = ?", (study_uid,))
        return int(row["pending"]) if row else 0

    def settle_pending(self, study_uid: str, seen: int, *, keep: bool = False) -> bool:
        """After looking at the study: clear its marks if they are still ``seen`` (a mark made since stays);
        ``keep``: it must be looked at again whatever happened. Returns whether the study is still pending."""
        with self.db.transaction() as conn:
            if keep:
                conn.execute("UPDATE studies SET pending = pending + 1 WHERE study_uid = ? AND pending = 0",
                             (study_uid,))
            else:
                conn.execute("UPDATE studies SET pending = 0 WHERE study_uid = ? AND pending = ?",
                             (study_uid, seen))
            row = conn.execute("SELECT pending FROM studies WHERE study_uid = ?", (study_uid,)).fetchone()
        return bool(row and row["pending"])

    def pending_studies(self) -> list[str]:
        return [r["study_uid"] for r in self.db.query("SELECT study_uid FROM studies WHERE pending > 0")]

    def list_studies(self, *, limit: int = 200, state: str | None = None) -> list[StudyRecord]:
        if state:
            rows = self.db.query("SELECT * FROM studies WHERE state = ? ORDER BY updated_at DESC LIMIT ?",
                                 (state, limit))
        else:
            rows = self.db.query("SELECT * FROM studies ORDER BY updated_at DESC LIMIT ?", (limit,))
        return [StudyRecord.from_row(r) for r in rows]

    # --- manifests ------------------------------------------------------------------------------
    def add_manifest(self, *, kos_uid: str, study_uid: str, report_id: str, fingerprint: str, series_count: int,
                     instance_count: int, content: dict, data: bytes, dmp_status: str = "") -> ManifestRecord:
        """Record a new current manifest; the previous current one becomes superseded."""
        now = self.clock()
        with self.db.transaction() as conn:
            previous = conn.execute(
                "SELECT kos_uid, version FROM manifests WHERE study_uid = ? ORDER BY version DESC LIMIT 1",
                (study_uid,)).fetchone()
            current = conn.execute(
                "SELECT kos_uid FROM manifests WHERE study_uid = ? AND status = ?",
                (study_uid, ManifestStatus.CURRENT)).fetchone()
            version = (previous["version"] + 1) if previous else 1
            replaces = current["kos_uid"] if current else None
            conn.execute("UPDATE manifests SET status = ? WHERE study_uid = ? AND status = ?",
                         (ManifestStatus.SUPERSEDED, study_uid, ManifestStatus.CURRENT))
            conn.execute(
                "INSERT INTO manifests (kos_uid, study_uid, report_id, version, created_at, status, replaces_kos_uid,"
                " fingerprint, series_count, instance_count, content, data, dmp_status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kos_uid, study_uid, report_id, version, now, ManifestStatus.CURRENT, replaces, fingerprint,
                 series_count, instance_count, json.dumps(content, separators=(",", ":")), data, dmp_status))
        record = self.get_manifest(kos_uid)
        assert record is not None  # inserted just above
        return record

    def get_manifest(self, kos_uid: str) -> ManifestRecord | None:
        row = self.db.query_one("SELECT * FROM manifests WHERE kos_uid = ?", (kos_uid,))
        return ManifestRecord.from_row(row) if row else None

    def current_manifest(self, study_uid: str) -> ManifestRecord | None:
        row = self.db.query_one("SELECT * FROM manifests WHERE study_uid = ? AND status = ?",
                                (study_uid, ManifestStatus.CURRENT))
        return ManifestRecord.from_row(row) if row else None

    def manifests_for_study(self, study_uid: str) -> list[ManifestRecord]:
        rows = self.db.query("SELECT * FROM manifests WHERE study_uid = ? ORDER BY version", (study_uid,))
        return [ManifestRecord.from_row(r) for r in rows]

    def set_manifest_status(self, kos_uid: str, status: str) -> None:
        self.db.execute("UPDATE manifests SET status = ? WHERE kos_uid = ?", (status, kos_uid))

    def set_manifest_dmp(self, kos_uid: str, *, dmp_status: str, entry_uuid: str | None = None) -> None:
        self.db.execute(
            "UPDATE manifests SET dmp_status = ?, dmp_entry_uuid = COALESCE(?, dmp_entry_uuid) WHERE kos_uid = ?",
            (dmp_status, entry_uuid, kos_uid))

    # --- publication queue ----------------------------------------------------------------------
    def enqueue_publication(self, *, study_uid: str, kos_uid: str, action: str, state: str = PublicationState.QUEUED,
                            last_error: str = "") -> int:
        now = self.clock()
        cur = self.db.execute(
            "INSERT INTO publications (study_uid, kos_uid, action, state, next_attempt_at, last_error, created_at,"
            " updated_at, ready_at, done_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (study_uid, kos_uid, action, state, now, last_error, now, now, now,
             now if state in PublicationState.TERMINAL else None))
        return cur.lastrowid

    def get_publication(self, publication_id: int) -> PublicationRecord | None:
        row = self.db.query_one("SELECT * FROM publications WHERE id = ?", (publication_id,))
        return PublicationRecord.from_row(row) if row else None

    def list_publications(self, *, state: str | None = None, study_uid: str | None = None,
                          limit: int = 200) -> list[PublicationRecord]:
        clauses, params = [], []
        if state:
            clauses.append("state = ?")
            params.append(state)
        if study_uid:
            clauses.append("study_uid = ?")
            params.append(study_uid)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.db.query(f"SELECT * FROM publications {where} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [PublicationRecord.from_row(r) for r in rows]

    def claim_publication(self, worker: str, *, lease_seconds: float = 120.0) -> PublicationRecord | None:
        """Take the oldest due job whose study has no earlier unfinished job; leases expire if a worker dies."""
        now = self.clock()
        # Row locks, not the writer lock: on PostgreSQL nodes claim side by side, each skipping the rows another
        # is claiming; a claimed job stays queued (with its lease) so later jobs of its study still wait.
        with self.db.transaction(serialized=False) as conn:
            row = conn.execute(
                "SELECT p.* FROM publications p WHERE p.state = ? AND p.next_attempt_at <= ?"
                " AND (p.claimed_until IS NULL OR p.claimed_until < ?)"
                " AND NOT EXISTS (SELECT 1 FROM publications q WHERE q.study_uid = p.study_uid AND q.id < p.id"
                "                 AND q.state = ?)"
                " ORDER BY p.next_attempt_at, p.id LIMIT 1" + self.db.skip_locked,
                (PublicationState.QUEUED, now, now, PublicationState.QUEUED)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE publications SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1,"
                         " updated_at = ? WHERE id = ?", (worker, now + lease_seconds, now, row["id"]))
        return self.get_publication(row["id"])

    def renew_claims(self, worker: str, *, lease_seconds: float) -> int:
        """A live node extends the leases of the jobs its workers hold; a dead node's lapse and are taken over."""
        cur = self.db.execute(
            "UPDATE publications SET claimed_until = ? WHERE claimed_by = ? AND state = ?",
            (self.clock() + lease_seconds, worker, PublicationState.QUEUED))
        return cur.rowcount

    def next_publication_due(self) -> float | None:
        row = self.db.query_one("SELECT MIN(next_attempt_at) AS due FROM publications WHERE state = ?",
                                (PublicationState.QUEUED,))
        return row["due"] if row else None

    def finish_publication(self, publication_id: int, state: str, *, error: str = "",
                           entry_uuid: str | None = None, replaces_entry_uuid: str | None = None) -> None:
        now = self.clock()
        self.db.execute(
            "UPDATE publications SET state = ?, last_error = ?, dmp_entry_uuid = COALESCE(?, dmp_entry_uuid),"
            " replaces_entry_uuid = COALESCE(?, replaces_entry_uuid), updated_at = ?, done_at = ?,"
            " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
            (state, error, entry_uuid, replaces_entry_uuid, now, now if state in PublicationState.TERMINAL else None,
             publication_id))

    def retry_publication_later(self, publication_id: int, *, error: str, delay_seconds: float) -> None:
        now = self.clock()
        self.db.execute(
            "UPDATE publications SET last_error = ?, next_attempt_at = ?, updated_at = ?, claimed_by = NULL,"
            " claimed_until = NULL WHERE id = ?", (error, now + delay_seconds, now, publication_id))

    def requeue_publication(self, publication_id: int) -> bool:
        """Operator retry: a failed, cancelled or waiting job runs again now."""
        now = self.clock()
        cur = self.db.execute(
            "UPDATE publications SET state = ?, next_attempt_at = ?, updated_at = ?, done_at = NULL,"
            " claimed_by = NULL, claimed_until = NULL WHERE id = ? AND state IN (?, ?, ?)",
            (PublicationState.QUEUED, now, now, publication_id, PublicationState.QUEUED, PublicationState.FAILED,
             PublicationState.CANCELLED))
        return cur.rowcount == 1

    def cancel_publication(self, publication_id: int) -> bool:
        now = self.clock()
        cur = self.db.execute(
            "UPDATE publications SET state = ?, updated_at = ?, done_at = ?, claimed_by = NULL, claimed_until = NULL"
            " WHERE id = ? AND state IN (?, ?)",
            (PublicationState.CANCELLED, now, now, publication_id, PublicationState.QUEUED, PublicationState.FAILED))
        return cur.rowcount == 1

    def supersede_queued_registrations(self, study_uid: str) -> int:
        """A newer manifest is about to be queued: never-sent registrations of older ones are dropped."""
        now = self.clock()
        cur = self.db.execute(
            "UPDATE publications SET state = ?, updated_at = ?, done_at = ? WHERE study_uid = ? AND state = ?"
            " AND action = 'register' AND attempts = 0 AND claimed_by IS NULL",
            (PublicationState.SUPERSEDED, now, now, study_uid, PublicationState.QUEUED))
        return cur.rowcount

    # --- audit ----------------------------------------------------------------------------------
    def add_audit(self, row: dict) -> None:
        self.db.execute(
            "INSERT INTO audit (at, entry_point, action, outcome_status, professional_id, study_uid, kos_uid, event)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (str(row.get("when", "")), row.get("entry_point", ""), row.get("action", ""),
             int(row.get("outcome_status") or 0), row.get("professional_id"), row.get("study_uid"),
             row.get("kos_uid"), json.dumps(row, default=str)))

    def search_audit(self, *, study_uid: str | None = None, professional_id: str | None = None,
                     since: str | None = None, until: str | None = None, outcome: str | None = None,
                     text: str | None = None, entry_point: str | None = None, limit: int = 200) -> list[dict]:
        clauses, params = [], []
        if text:  # a plain substring of the stored event (operator name, reason, UID...)
            clauses.append("event LIKE ? ESCAPE '\\'")
            params.append("%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        if entry_point:
            clauses.append("entry_point = ?")
            params.append(entry_point)
        for column, value in (("study_uid", study_uid), ("professional_id", professional_id)):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since:
            clauses.append("at >= ?")
            params.append(since)
        if until:
            clauses.append("at < ?")
            params.append(until)
        if outcome == "allowed":
            clauses.append("outcome_status < 400")
        elif outcome == "denied":
            clauses.append("outcome_status >= 400")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.db.query(f"SELECT event FROM audit {where} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [json.loads(r["event"]) for r in rows]

    def audit_after(self, last_id: int, *, limit: int = 5000) -> list[tuple[int, dict]]:
        """Audit rows newer than ``last_id``, oldest first: for counters that read the trail incrementally."""
        rows = self.db.query("SELECT id, event FROM audit WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit))
        return [(int(r["id"]), json.loads(r["event"])) for r in rows]

    def audit_before(self, cutoff: str, *, limit: int) -> list[tuple[int, str, str]]:
        """(id, at, stored JSON event) of the oldest audit rows dated before ``cutoff`` (ISO UTC), by id."""
        rows = self.db.query("SELECT id, at, event FROM audit WHERE at < ? ORDER BY id LIMIT ?", (cutoff, limit))
        return [(int(r["id"]), r["at"], r["event"]) for r in rows]

    def delete_audit(self, first_id: int, last_id: int, cutoff: str) -> int:
        """Delete the archived rows: ids in [first_id, last_id] and still dated before ``cutoff``."""
        cur = self.db.execute("DELETE FROM audit WHERE id >= ? AND id <= ? AND at < ?", (first_id, last_id, cutoff))
        return cur.rowcount

    def audit_counts(self, since: str, until: str) -> list[tuple[str, str, bool, int]]:
        """(entry point, action, allowed, count) of the audit rows between two ISO times."""
        rows = self.db.query(
            "SELECT entry_point, action, CASE WHEN outcome_status < 400 THEN 1 ELSE 0 END AS allowed, COUNT(*) AS n"
            " FROM audit WHERE at >= ? AND at < ? GROUP BY entry_point, action,"
            " CASE WHEN outcome_status < 400 THEN 1 ELSE 0 END", (since, until))
        return [(r["entry_point"], r["action"], bool(r["allowed"]), int(r["n"])) for r in rows]

    def publication_counts(self) -> dict[str, int]:
        rows = self.db.query("SELECT state, COUNT(*) AS n FROM publications GROUP BY state", ())
        return {r["state"]: int(r["n"]) for r in rows}

    def oldest_waiting_publication(self) -> PublicationRecord | None:
        row = self.db.query_one("SELECT * FROM publications WHERE state = ? ORDER BY ready_at, id LIMIT 1",
                                (PublicationState.QUEUED,))
        return PublicationRecord.from_row(row) if row else None

    def publications_finished_between(self, start: float, end: float) -> list[PublicationRecord]:
        rows = self.db.query("SELECT * FROM publications WHERE done_at >= ? AND done_at < ? ORDER BY id",
                             (start, end))
        return [PublicationRecord.from_row(r) for r in rows]

    # --- what the peer decision reads (drimbox.trust.peer_facts caches it) ------------------------
    def study_of_manifest(self, kos_uid: str) -> str | None:
        row = self.db.query_one("SELECT study_uid FROM manifests WHERE kos_uid = ?", (kos_uid,))
        return row["study_uid"] if row else None

    def manifest_versions(self, study_uid: str) -> list[tuple[str, int, str]]:
        """(KOS UID, version, status) of every manifest of the study, oldest first."""
        rows = self.db.query(
            "SELECT kos_uid, version, status FROM manifests WHERE study_uid = ? ORDER BY version", (study_uid,))
        return [(r["kos_uid"], r["version"], r["status"]) for r in rows]

    def manifest_content(self, kos_uid: str) -> dict[str, dict[str, str]] | None:
        """The series -> {SOP instance UID: SOP class UID} a manifest references."""
        row = self.db.query_one("SELECT content FROM manifests WHERE kos_uid = ?", (kos_uid,))
        return json.loads(row["content"]) if row else None

    def instances_rejected_by_notes(self, study_uid: str) -> set[str]:
        """SOP instance UIDs rejected by the IOCM rejection notes of the study or of an unknown study."""
        rejected: set[str] = set()
        for row in self.db.query("SELECT rejects FROM instances WHERE kind = 'rejection'"
                                 " AND (study_uid = ? OR study_uid IS NULL)", (study_uid,)):
            rejected.update(json.loads(row["rejects"] or "[]"))
        return rejected

    def count_current_manifests(self) -> int:
        row = self.db.query_one("SELECT COUNT(*) AS n FROM manifests WHERE status = ?", (ManifestStatus.CURRENT,))
        return int(row["n"]) if row else 0

    # --- facts ----------------------------------------------------------------------------------
    def get_fact(self, key: str, default: str | None = None) -> str | None:
        row = self.db.query_one("SELECT value FROM facts WHERE key = ?", (key,))
        return row["value"] if row else default

    def set_fact(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO facts (key, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, value, self.clock()))

    def first_fact(self, key: str, value: str) -> str:
        """Keep ``value`` under ``key`` unless one is there already; returns the value in force. Secrets every
        node must share (several nodes may start at once: the first write wins, the others read it)."""
        self.db.execute("INSERT OR IGNORE INTO facts (key, value, updated_at) VALUES (?, ?, ?)",
                        (key, value, self.clock()))
        kept = self.get_fact(key)
        assert kept is not None  # inserted just above, or there already
        return kept

    # --- instance facts (keyed by Orthanc id) -----------------------------------------------------
    def instance_facts(self, orthanc_ids: Iterable[str]) -> dict[str, InstanceFact]:
        ids = list(orthanc_ids)
        found: dict[str, InstanceFact] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(
                    "SELECT orthanc_id, sop_class_uid, kind, rejects, study_uid, series_uid, sop_instance_uid,"
                    f" instance_number FROM instances WHERE orthanc_id IN ({marks})", chunk):
                found[row["orthanc_id"]] = InstanceFact(
                    row["sop_class_uid"], row["kind"], tuple(json.loads(row["rejects"])), row["study_uid"],
                    row["series_uid"], row["sop_instance_uid"], row["instance_number"])
        return found

    def save_instance_facts(self, facts: dict[str, InstanceFact]) -> None:
        if not facts:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO instances (orthanc_id, sop_class_uid, kind, rejects, study_uid, series_uid,"
                " sop_instance_uid, instance_number) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(orthanc_id) DO UPDATE SET sop_class_uid = excluded.sop_class_uid,"
                " kind = excluded.kind, rejects = excluded.rejects,"
                " study_uid = COALESCE(excluded.study_uid, instances.study_uid),"
                " series_uid = COALESCE(excluded.series_uid, instances.series_uid),"
                " sop_instance_uid = COALESCE(excluded.sop_instance_uid, instances.sop_instance_uid),"
                " instance_number = COALESCE(excluded.instance_number, instances.instance_number)",
                [(oid, f.sop_class_uid, f.kind, json.dumps(list(f.rejects)), f.study_uid, f.series_uid,
                  f.sop_instance_uid, f.instance_number) for oid, f in facts.items()])

    def forget_instances(self, orthanc_ids: Iterable[str]) -> None:
        with self.db.transaction() as conn:
            conn.executemany("DELETE FROM instances WHERE orthanc_id = ?", [(i,) for i in orthanc_ids])

    # --- operator sessions and failed logins (admin entry) ----------------------------------------
    def add_operator_session(self, token_hash: str, user: str, *, now: float, expires_at: float) -> None:
        self.db.execute("INSERT INTO operator_sessions (token_hash, user, created_at, last_seen, expires_at)"
                        " VALUES (?, ?, ?, ?, ?)", (token_hash, user, now, now, expires_at))

    def get_operator_session(self, token_hash: str) -> dict | None:
        row = self.db.query_one("SELECT * FROM operator_sessions WHERE token_hash = ?", (token_hash,))
        return dict(row) if row else None

    def touch_operator_session(self, token_hash: str, now: float) -> None:
        self.db.execute("UPDATE operator_sessions SET last_seen = ? WHERE token_hash = ?", (now, token_hash))

    def delete_operator_session(self, token_hash: str) -> None:
        self.db.execute("DELETE FROM operator_sessions WHERE token_hash = ?", (token_hash,))

    def purge_operator_sessions(self, *, expired_before: float, idle_before: float) -> int:
        cur = self.db.execute("DELETE FROM operator_sessions WHERE expires_at <= ? OR last_seen <= ?",
                              (expired_before, idle_before))
        return cur.rowcount

    def login_failures(self, keys: Iterable[str]) -> dict[str, dict]:
        keys = list(keys)
        marks = ",".join("?" * len(keys))
        rows = self.db.query(f"SELECT * FROM login_failures WHERE key IN ({marks})", keys) if keys else []
        return {r["key"]: dict(r) for r in rows}

    def record_login_failure(self, key: str, *, now: float, forget_before: float,
                             lock_for: Callable[[int], float]) -> dict:
        """Count one more failure for ``key`` (a count older than ``forget_before`` starts again at 1) and lock
        it for ``lock_for(failures)`` seconds; returns the row."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT failures, last_failure FROM login_failures WHERE key = ?", (key,)).fetchone()
            failures = 1 if row is None or row["last_failure"] < forget_before else row["failures"] + 1
            locked_until = now + lock_for(failures)
            conn.execute(
                "INSERT INTO login_failures (key, failures, last_failure, locked_until) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET failures = excluded.failures,"
                " last_failure = excluded.last_failure, locked_until = excluded.locked_until",
                (key, failures, now, locked_until))
        return {"key": key, "failures": failures, "last_failure": now, "locked_until": locked_until}

    def clear_login_failures(self, keys: Iterable[str]) -> None:
        with self.db.transaction() as conn:
            conn.executemany("DELETE FROM login_failures WHERE key = ?", [(k,) for k in keys])
