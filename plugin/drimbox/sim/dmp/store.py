"""Durable state of the simulated DMP: one SQLite file (WAL) in the data directory."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    entry_uuid TEXT PRIMARY KEY,
    unique_id TEXT NOT NULL UNIQUE,
    patient_id TEXT NOT NULL,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    class_code TEXT, type_code TEXT, format_code TEXT,
    practice_setting TEXT, facility_type TEXT,
    event_codes TEXT NOT NULL,        -- JSON [[code, scheme], ...]
    confidentiality TEXT NOT NULL,    -- JSON [[code, scheme], ...]
    reference_ids TEXT NOT NULL,      -- JSON [value, ...]
    creation_time TEXT, service_start TEXT, service_stop TEXT,
    submission_time TEXT,
    hash TEXT NOT NULL, size INTEGER NOT NULL,
    author_structure TEXT NOT NULL,
    submission_set TEXT NOT NULL,
    replaces TEXT,
    xml BLOB NOT NULL,
    content BLOB NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_patient ON documents(patient_id);
CREATE TABLE IF NOT EXISTS submission_sets (
    entry_uuid TEXT PRIMARY KEY,
    unique_id TEXT NOT NULL UNIQUE,
    patient_id TEXT NOT NULL,
    submission_time TEXT,
    author_structure TEXT NOT NULL,
    xml BLOB NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS associations (
    entry_uuid TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    xml BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS associations_target ON associations(target);
CREATE INDEX IF NOT EXISTS associations_source ON associations(source);
CREATE TABLE IF NOT EXISTS patients (
    patient_id TEXT PRIMARY KEY,
    exists_in_dmp INTEGER NOT NULL,
    authorized INTEGER NOT NULL
);
"""

DOCUMENT_COLUMNS = (
    "entry_uuid", "unique_id", "patient_id", "status", "kind", "mime_type", "class_code", "type_code", "format_code",
    "practice_setting", "facility_type", "event_codes", "confidentiality", "reference_ids", "creation_time",
    "service_start", "service_stop", "submission_time", "hash", "size", "author_structure", "submission_set",
    "replaces", "xml", "content", "received_at",
)
JSON_COLUMNS = ("event_codes", "confidentiality", "reference_ids")


@dataclass
class StoredDocument:
    entry_uuid: str
    unique_id: str
    patient_id: str
    status: str
    kind: str
    mime_type: str
    class_code: str
    type_code: str
    format_code: str
    practice_setting: str
    facility_type: str
    event_codes: list[list[str]]
    confidentiality: list[list[str]]
    reference_ids: list[str]
    creation_time: str
    service_start: str
    service_stop: str
    submission_time: str
    hash: str
    size: int
    author_structure: str
    submission_set: str
    replaces: str | None
    xml: bytes
    content: bytes
    received_at: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "entryUUID": self.entry_uuid, "uniqueId": self.unique_id, "status": self.status,
            "patientId": self.patient_id, "kind": self.kind, "mimeType": self.mime_type,
            "classCode": self.class_code, "typeCode": self.type_code, "formatCode": self.format_code,
            "eventCodes": self.event_codes, "confidentialityCodes": self.confidentiality,
            "referenceIds": self.reference_ids, "creationTime": self.creation_time,
            "submissionTime": self.submission_time, "replaces": self.replaces, "size": self.size,
            "hash": self.hash, "authorStructure": self.author_structure, "submissionSet": self.submission_set,
            "receivedAt": self.received_at,
        }


def _to_document(row: sqlite3.Row) -> StoredDocument:
    values = dict(row)
    for name in JSON_COLUMNS:
        values[name] = json.loads(values[name])
    values["xml"] = bytes(values["xml"])
    values["content"] = bytes(values["content"])
    return StoredDocument(**values)


class DmpStore:
    """Thread-safe: one connection per thread, writes serialized by a lock (SQLite allows one writer)."""

    def __init__(self, data_dir: str):
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "dmp-sim.sqlite")
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            self._all.append(conn)
        return conn

    def close(self) -> None:
        for conn in self._all:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._all.clear()
        self._local = threading.local()

    # --- reads
    def document_by_uuid(self, entry_uuid: str) -> StoredDocument | None:
        row = self._conn().execute("SELECT * FROM documents WHERE entry_uuid=?", (entry_uuid,)).fetchone()
        return _to_document(row) if row else None

    def document_by_unique_id(self, unique_id: str) -> StoredDocument | None:
        row = self._conn().execute("SELECT * FROM documents WHERE unique_id=?", (unique_id,)).fetchone()
        return _to_document(row) if row else None

    def documents_of_patient(self, patient_id: str, statuses: Iterable[str]) -> list[StoredDocument]:
        statuses = list(statuses)
        marks = ",".join("?" * len(statuses))
        rows = self._conn().execute(
            f"SELECT * FROM documents WHERE patient_id=? AND status IN ({marks}) ORDER BY received_at",
            (patient_id, *statuses)).fetchall()
        return [_to_document(r) for r in rows]

    def all_documents(self) -> list[StoredDocument]:
        return [_to_document(r) for r in self._conn().execute("SELECT * FROM documents ORDER BY received_at")]

    def existing_unique_ids(self, unique_ids: Iterable[str]) -> set[str]:
        ids = list(unique_ids)
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        conn = self._conn()
        found = {r[0] for r in conn.execute(f"SELECT unique_id FROM documents WHERE unique_id IN ({marks})", ids)}
        found |= {r[0] for r in conn.execute(f"SELECT unique_id FROM submission_sets WHERE unique_id IN ({marks})",
                                             ids)}
        return found

    def existing_entry_uuids(self, uuids: Iterable[str]) -> set[str]:
        ids = list(uuids)
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        conn = self._conn()
        found = set()
        for table in ("documents", "submission_sets", "associations"):
            found |= {r[0] for r in conn.execute(f"SELECT entry_uuid FROM {table} WHERE entry_uuid IN ({marks})", ids)}
        return found

    def associations_of(self, entry_uuids: Iterable[str]) -> list[sqlite3.Row]:
        ids = list(entry_uuids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return self._conn().execute(
            f"SELECT * FROM associations WHERE source IN ({marks}) OR target IN ({marks})", ids + ids).fetchall()

    def patient(self, patient_id: str) -> tuple[bool, bool] | None:
        row = self._conn().execute("SELECT exists_in_dmp, authorized FROM patients WHERE patient_id=?",
                                   (patient_id,)).fetchone()
        return (bool(row[0]), bool(row[1])) if row else None

    def counts(self) -> dict[str, int]:
        conn = self._conn()
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("documents", "submission_sets", "associations")}

    # --- writes
    def write(self, operations: list[tuple[str, tuple]]) -> None:
        """Run SQL statements in one transaction."""
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in operations:
                    conn.execute(sql, params)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @staticmethod
    def insert_document_op(doc: StoredDocument) -> tuple[str, tuple]:
        values = []
        for name in DOCUMENT_COLUMNS:
            v = getattr(doc, name)
            values.append(json.dumps(v) if name in JSON_COLUMNS else v)
        return (f"INSERT INTO documents ({','.join(DOCUMENT_COLUMNS)}) VALUES ({','.join('?' * len(values))})",
                tuple(values))

    @staticmethod
    def insert_submission_set_op(entry_uuid: str, unique_id: str, patient_id: str, submission_time: str,
                                 author_structure: str, xml: bytes) -> tuple[str, tuple]:
        return ("INSERT INTO submission_sets VALUES (?,?,?,?,?,?,?)",
                (entry_uuid, unique_id, patient_id, submission_time, author_structure, xml, time.time()))

    @staticmethod
    def insert_association_op(entry_uuid: str, kind: str, source: str, target: str, xml: bytes) -> tuple[str, tuple]:
        return "INSERT INTO associations VALUES (?,?,?,?,?)", (entry_uuid, kind, source, target, xml)

    @staticmethod
    def set_status_op(entry_uuid: str, status: str) -> tuple[str, tuple]:
        return "UPDATE documents SET status=? WHERE entry_uuid=?", (status, entry_uuid)

    def set_patient(self, patient_id: str, exists_in_dmp: bool, authorized: bool) -> None:
        self.write([("INSERT OR REPLACE INTO patients VALUES (?,?,?)", (patient_id, int(exists_in_dmp),
                                                                          int(authorized)))])

    def reset(self) -> None:
        self.write([(f"DELETE FROM {t}", ()) for t in ("documents", "submission_sets", "associations", "patients")])
