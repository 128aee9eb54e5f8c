"""A running box archives the audit rows past Audit.RetentionDays (gzip JSON lines) and deletes them from its
store, in the background: at start and while it runs; the operator's audit search no longer finds them."""

from __future__ import annotations

import gzip
import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from drimbox.audit.event import ENTRY_VIEWER, AuditEvent
from drimbox.store import Store
from drimbox.testing import BoxClient, start_box

pytestmark = pytest.mark.integration


def row(days_ago: int, study_uid: str) -> dict:
    return AuditEvent(when=datetime.now(timezone.utc) - timedelta(days=days_ago), entry_point=ENTRY_VIEWER,
                      action="open-viewer", outcome_status=200, study_uid=study_uid).to_row()


def archived_studies(folder) -> list[str]:
    return [json.loads(line)["study_uid"] for path in sorted(folder.glob("audit-*.jsonl.gz"))
            for line in gzip.decompress(path.read_bytes()).decode().splitlines()]


def searched(operator: BoxClient, study_uid: str) -> list[dict]:
    return operator.get(f"/drimbox/audit?study={study_uid}").json()


def test_the_box_archives_then_deletes_rows_past_the_retention_period(tmp_path, pki):
    data_dir = tmp_path / "box"
    # the box's own store, with rows written long ago (before it starts)
    store = Store.open(f"sqlite:///{data_dir}/state/drimbox.db")
    store.add_audit(row(40, "1.2.3.40"))
    store.add_audit(row(3, "1.2.3.3"))
    archive = tmp_path / "audit-archive"
    box = start_box(data_dir, pki=pki, settings={"Audit": {"RetentionDays": 30, "ArchiveDir": str(archive),
                                                             "ArchiveIntervalMinutes": 0.01}})
    try:
        operator = BoxClient(box)
        deadline = time.monotonic() + 20
        while archived_studies(archive) != ["1.2.3.40"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert archived_studies(archive) == ["1.2.3.40"]
        assert searched(operator, "1.2.3.40") == []
        assert [r["study_uid"] for r in searched(operator, "1.2.3.3")] == ["1.2.3.3"]

        store.add_audit(row(31, "1.2.3.31"))  # while the box runs: the next pass takes it
        while "1.2.3.31" not in archived_studies(archive) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert archived_studies(archive) == ["1.2.3.40", "1.2.3.31"]
        assert searched(operator, "1.2.3.31") == []
        assert [r["study_uid"] for r in searched(operator, "1.2.3.3")] == ["1.2.3.3"]
    finally:
        box.stop()
        store.db.close()
