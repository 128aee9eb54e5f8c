"""The audit trail's retention: rows past Audit.RetentionDays go to gzip JSON-lines archives, then leave the store."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone

import pytest

from drimbox.audit.event import ENTRY_WADO_RS, AuditEvent
from drimbox.audit.retention import AuditArchiver
from drimbox.audit.settings import AuditSettings
from drimbox.config import SettingsError, load_settings
from drimbox.store import Store

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=timezone.utc)


def event(days_ago: float, study: str) -> dict:
    return AuditEvent(when=NOW - timedelta(days=days_ago), entry_point=ENTRY_WADO_RS, action="retrieve-series",
                      outcome_status=200, study_uid=study, professional_id="810002000015").to_row()


@pytest.fixture
def store(tmp_path):
    return Store.open(f"sqlite:///{tmp_path}/drimbox.db", clock=NOW.timestamp)


def archived(folder) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.glob("audit-*.jsonl.gz"))
            for line in gzip.decompress(path.read_bytes()).decode().splitlines()]


def studies_in_store(store: Store) -> set[str]:
    return {row["study_uid"] for row in store.search_audit(limit=1000)}


def test_rows_past_the_period_are_archived_then_deleted_and_recent_ones_stay(store, tmp_path):
    rows = [event(400, "1.1"), event(31, "1.2"), event(29, "1.3"), event(0, "1.4")]
    for row in rows:
        store.add_audit(row)
    folder = tmp_path / "archive"

    written = AuditArchiver(store, folder, 30, NOW.timestamp).run_once()

    assert [p.name for p in written] == [f"audit-{rows[0]['when'][:10]}-{1:012d}.jsonl.gz"]
    assert archived(folder) == rows[:2]  # the stored events, oldest first, unchanged
    assert studies_in_store(store) == {"1.3", "1.4"}
    assert oct(written[0].stat().st_mode & 0o777) == "0o600"
    assert AuditArchiver(store, folder, 30, NOW.timestamp).run_once() == []  # nothing more to do


def test_a_long_backlog_goes_in_batches_without_losing_or_repeating_a_row(store, tmp_path):
    rows = [event(100 - i, f"2.{i}") for i in range(7)]
    for row in rows:
        store.add_audit(row)
    folder = tmp_path / "archive"

    written = AuditArchiver(store, folder, 30, NOW.timestamp, batch_rows=3).run_once()

    assert len(written) == 3
    assert archived(folder) == rows
    assert studies_in_store(store) == set()


class DeleteFails:
    """The store, except that deleting fails once (a crash between writing the archive and deleting)."""

    def __init__(self, store: Store):
        self.store = store

    def audit_before(self, cutoff, *, limit):
        return self.store.audit_before(cutoff, limit=limit)

    def delete_audit(self, first_id, last_id, cutoff):
        raise OSError("disk went away")


def test_a_crash_before_deleting_keeps_the_rows_and_the_next_run_does_not_duplicate_them(store, tmp_path):
    first = [event(60, "3.1"), event(50, "3.2")]
    for row in first:
        store.add_audit(row)
    folder = tmp_path / "archive"
    with pytest.raises(OSError):
        AuditArchiver(DeleteFails(store), folder, 30, NOW.timestamp).run_once()
    assert studies_in_store(store) == {"3.1", "3.2"}
    assert archived(folder) == first

    later = event(40, "3.3")  # the next run, later, finds one more row past the period
    store.add_audit(later)
    AuditArchiver(store, folder, 30, NOW.timestamp).run_once()

    assert archived(folder) == [*first, later]
    assert len(list(folder.iterdir())) == 1 and studies_in_store(store) == set()


def test_retention_days_is_zero_or_at_least_a_week_and_the_folder_defaults_under_the_data_dir():
    assert load_settings({}).audit == AuditSettings(retention_days=365, archive_dir="",
                                                    archive_interval_minutes=60.0)
    assert load_settings({"DRIMbox": {"Audit": {"RetentionDays": 0}}}).audit.retention_days == 0
    with pytest.raises(SettingsError, match="DRIMbox.Audit.RetentionDays"):
        load_settings({"DRIMbox": {"Audit": {"RetentionDays": 3}}})
    assert AuditSettings().archive_folder("/var/lib/drimbox/") == "/var/lib/drimbox/audit-archive"
    assert AuditSettings(archive_dir="/srv/audit").archive_folder("/var/lib/drimbox") == "/srv/audit"
    assert AuditSettings().archive_folder("") == ""
