"""Audit events round-trip through rows; queries select the right ones."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from drimbox.audit import AuditEvent, AuditQuery

T0 = datetime(2024, 5, 2, 8, 30, 0, 123000, tzinfo=timezone.utc)


def event(**overrides) -> AuditEvent:
    values = dict(
        when=T0,
        entry_point="wado-rs",
        action="retrieve-series",
        outcome_status=200,
        caller_dn="CN=db.peer.example,O=Peer",
        professional_id="810002345678",
        structure_id="1750000001",
        purpose="normal",
        kos_uid="1.2.3.9",
        study_uid="1.2.3",
        series_uid="1.2.3.4",
        bytes_sent=12345,
        request_id="abc",
    )
    values.update(overrides)
    return AuditEvent(**values)


def test_row_round_trip_through_json():
    original = event()
    row = json.loads(json.dumps(original.to_row()))
    assert row["when"] == "2024-05-02T08:30:00.123+00:00"
    assert AuditEvent.from_row(row) == original


def test_row_with_nulls_from_sql_and_naive_time():
    row = event(bytes_sent=None).to_row()
    row["reason"] = None
    row["when"] = "2024-05-02T08:30:00.123"
    restored = AuditEvent.from_row(row)
    assert restored.reason == "" and restored.bytes_sent is None and restored.when == T0


def test_refuses_naive_time_and_unknown_columns():
    with pytest.raises(ValueError, match="timezone-aware"):
        event(when=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="unknown audit column"):
        AuditEvent.from_row({**event().to_row(), "colour": "red"})


def test_query_criteria():
    ok, denied = event(), event(outcome_status=401, professional_id="")
    other = event(study_uid="9.9", when=T0 + timedelta(days=2))
    assert AuditQuery().matches(ok) and AuditQuery().matches(denied)
    assert [AuditQuery(outcome="allowed").matches(e) for e in (ok, denied)] == [True, False]
    assert [AuditQuery(outcome="denied").matches(e) for e in (ok, denied)] == [False, True]
    assert AuditQuery(status=401).matches(denied) and not AuditQuery(status=401).matches(ok)
    assert AuditQuery(professional_id="810002345678").matches(ok)
    assert not AuditQuery(professional_id="810002345678").matches(denied)
    assert [AuditQuery(study_uid="1.2.3").matches(e) for e in (ok, other)] == [True, False]
    window = AuditQuery(since=T0, until=T0 + timedelta(days=1))
    assert window.matches(ok) and not window.matches(other)
    assert not AuditQuery(until=T0).matches(ok)  # until is exclusive


def test_query_validation():
    with pytest.raises(ValueError, match="allowed"):
        AuditQuery(outcome="maybe")
    with pytest.raises(ValueError, match="timezone-aware"):
        AuditQuery(since=datetime(2024, 1, 1))
