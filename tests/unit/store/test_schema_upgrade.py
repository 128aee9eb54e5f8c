"""A store written by the previous release (its migrations, its data) opened by the current code: the data is kept
and readable through the store, and the schema ends exactly as a fresh store's."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import pytest

from drimbox.store import Store
from drimbox.store.backup import backup_store, restore_store
from drimbox.store.records import InstanceFact
from drimbox.store.schema import MIGRATIONS

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "store_schema_1430b75.py"


def _previous_migrations() -> list[list[str]]:
    spec = importlib.util.spec_from_file_location("store_schema_1430b75", FIXTURE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MIGRATIONS


def previous_release_store(path: Path) -> None:
    """The schema of the previous release, applied like its Database did, and a little of everything in it."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in enumerate(_previous_migrations(), start=1):
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    conn.execute("INSERT INTO messages (id, received_at, channel, message_type, control_id, event, report_id, raw,"
                 " ack_code, ack_text, errors) VALUES (7, 1000.0, 'mllp', 'ORU^R01', 'MSG7', 'new', 'R1', ?, 'AA',"
                 " '', '[]')", (b"MSH|^~\\&|RIS\r",))
    conn.execute("INSERT INTO reports (report_id, message_id, received_at, updated_at, state, study_uids, flags, cda)"
                 " VALUES ('R1', 7, 1000.0, 1001.0, 'accepted', ?, ?, ?)",
                 (json.dumps(["1.2.3"]), json.dumps({"DESTDMP": True}), b"<ClinicalDocument/>"))
    conn.execute("INSERT INTO studies (study_uid, orthanc_id, report_id, state, stable_at, updated_at) VALUES"
                 " ('1.2.3', 'o-study', 'R1', 'manifest_ready', 1002.0, 1003.0)")
    conn.execute("INSERT INTO manifests (kos_uid, study_uid, report_id, version, created_at, status, fingerprint,"
                 " series_count, instance_count, content, data, dmp_entry_uuid, dmp_status) VALUES ('1.2.3.9',"
                 " '1.2.3', 'R1', 1, 1004.0, 'current', 'fp', 1, 2, '{}', ?, 'urn:uuid:e1', 'approved')",
                 (b"DICM",))
    conn.execute("INSERT INTO publications (id, study_uid, kos_uid, action, state, attempts, next_attempt_at,"
                 " dmp_entry_uuid, created_at, updated_at, ready_at, done_at) VALUES (3, '1.2.3', '1.2.3.9',"
                 " 'register', 'done', 1, 1005.0, 'urn:uuid:e1', 1004.0, 1005.0, 1004.0, 1005.0)")
    conn.execute("INSERT INTO audit (at, entry_point, action, outcome_status, professional_id, study_uid, kos_uid,"
                 " event) VALUES ('2026-12-05T10:00:00Z', 'peer', 'retrieve', 200, '810002000015', '1.2.3',"
                 " '1.2.3.9', ?)", (json.dumps({"action": "retrieve", "study_uid": "1.2.3"}),))
    conn.execute("INSERT INTO facts (key, value, updated_at) VALUES ('orthanc_changes_cursor', '42', 1006.0)")
    conn.execute("INSERT INTO instances (orthanc_id, sop_class_uid, kind, rejects, study_uid, series_uid,"
                 " sop_instance_uid, instance_number) VALUES ('o-1', '1.2.840.10008.5.1.4.1.1.2', '', '[]', '1.2.3',"
                 " '1.2.3.4', '1.2.3.4.5', 1)")
    conn.commit()
    conn.close()


def _schema(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out: dict[str, list[tuple]] = {t: conn.execute(f"PRAGMA table_info({t})").fetchall() for t in tables}
        out["(indexes)"] = conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS "
                                        "NOT NULL ORDER BY name").fetchall()
        return out
    finally:
        conn.close()


@pytest.fixture
def upgraded(tmp_path) -> Store:
    previous_release_store(tmp_path / "drimbox.db")
    store = Store.open(f"sqlite:///{tmp_path / 'drimbox.db'}")
    yield store
    store.db.close()


def test_the_previous_release_is_not_the_current_schema():
    previous = _previous_migrations()
    assert len(previous) < len(MIGRATIONS) and previous == MIGRATIONS[:len(previous)]


def test_an_upgraded_store_has_the_fresh_schema(upgraded, tmp_path):
    fresh = Store.open(f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh.db.close()
    version = upgraded.db.query_one("SELECT MAX(version) AS v FROM schema_version")
    assert version["v"] == len(MIGRATIONS)
    assert _schema(tmp_path / "drimbox.db") == _schema(tmp_path / "fresh.db")


def test_an_upgraded_store_keeps_and_serves_the_previous_data(upgraded):
    message = upgraded.get_message(7)
    assert message and message.raw == b"MSH|^~\\&|RIS\r" and message.ack_code == "AA"
    assert message.warnings == ()
    report = upgraded.get_report("R1")
    assert report and report.study_uids == ("1.2.3",) and report.cda == b"<ClinicalDocument/>"
    study = upgraded.get_study("1.2.3")
    assert study and study.state == "manifest_ready" and study.orthanc_id == "o-study"
    manifest = upgraded.current_manifest("1.2.3")
    assert manifest and manifest.kos_uid == "1.2.3.9" and manifest.dmp_entry_uuid == "urn:uuid:e1"
    publication = upgraded.get_publication(3)
    assert publication and publication.state == "done" and publication.dmp_entry_uuid == "urn:uuid:e1"
    assert [e["study_uid"] for e in upgraded.search_audit(study_uid="1.2.3")] == ["1.2.3"]
    assert upgraded.get_fact("orthanc_changes_cursor") == "42"
    assert upgraded.instance_facts(["o-1"])["o-1"] == InstanceFact(
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2", kind="", rejects=(), study_uid="1.2.3", series_uid="1.2.3.4",
        sop_instance_uid="1.2.3.4.5", instance_number=1)


def test_an_upgraded_store_takes_what_the_new_tables_hold(upgraded):
    upgraded.set_message_outcome(7, "AA", "", warnings=["PRT-8 names another structure"])
    assert upgraded.get_message(7).warnings == ("PRT-8 names another structure",)
    upgraded.add_operator_session("h", "operator", now=1.0, expires_at=2.0)
    assert upgraded.get_operator_session("h")["user"] == "operator"


def test_a_restored_backup_of_the_previous_release_is_upgraded(tmp_path):
    """drimbox restore of an old backup: the copy goes in as it is, the next open migrates it."""
    previous_release_store(tmp_path / "old.db")
    backup_store(f"sqlite:///{tmp_path / 'old.db'}", tmp_path / "copy.db")
    restore_store(tmp_path / "copy.db", f"sqlite:///{tmp_path / 'box' / 'drimbox.db'}")
    store = Store.open(f"sqlite:///{tmp_path / 'box' / 'drimbox.db'}")
    try:
        assert store.get_publication(3).dmp_entry_uuid == "urn:uuid:e1"
        assert store.db.query_one("SELECT MAX(version) AS v FROM schema_version")["v"] == len(MIGRATIONS)
    finally:
        store.db.close()
