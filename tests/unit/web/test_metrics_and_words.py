"""The figures pushed to Prometheus and the operator's plain words, on a real store."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from drimbox.audit.event import AuditEvent
from drimbox.metrics import Metrics, MetricsPusher, PeerAccessLog, TimedDmp
from drimbox.store import Store
from drimbox.web.plain_words import explain, label, language


@pytest.fixture
def store(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", clock=lambda: 1000.0)
    yield store
    store.db.close()


def audit(store: Store, entry: str, status: int, **fields) -> None:
    store.add_audit(AuditEvent(when=datetime.now(timezone.utc), entry_point=entry, action="x",
                               outcome_status=status, **fields).to_row())


def test_publications_queue_and_oldest_waiting(store):
    first = store.enqueue_publication(study_uid="1.2", kos_uid="1.2.9", action="register")
    store.enqueue_publication(study_uid="1.3", kos_uid="1.3.9", action="register")
    store.finish_publication(first, "failed", error="refused by the DMP: x")
    store.clock = lambda: 1030.0
    store.enqueue_publication(study_uid="1.4", kos_uid="1.4.9", action="register")
    values = Metrics(store, dmp=None, peer_log=None, whitelist_status=lambda: None, clock=lambda: 1100.0).snapshot()
    assert values["drimbox_publications_failed"] == 1
    assert values["drimbox_publications_queued"] == 2 == values["drimbox_publication_queue_depth"]
    assert values["drimbox_publication_oldest_waiting_seconds"] == 100.0  # the one queued at 1000
    assert values["drimbox_whitelist_in_force"] == 0 and values["drimbox_whitelist_age_seconds"] == -1


def test_audit_counters_read_incrementally(store):
    metrics = Metrics(store, dmp=None, peer_log=None, whitelist_status=lambda: None)
    audit(store, "wado-rs", 200)
    audit(store, "wado-rs", 401)
    audit(store, "operator", 202, operator="alice")
    audit(store, "operator", 403)  # a refused request is not an operator's action
    first = metrics.snapshot()
    assert (first["drimbox_audit_peer_allowed_total"], first["drimbox_audit_peer_refused_total"]) == (1, 1)
    assert first["drimbox_audit_operator_actions_total"] == 1
    audit(store, "wado-rs", 200)
    assert metrics.snapshot()["drimbox_audit_peer_allowed_total"] == 2  # counted once each


def test_peer_log_counts_outcomes_and_bytes_and_survives_rotation(tmp_path):
    path = tmp_path / "peer-access.log"
    path.write_text("1.0 200 1000\n2.0 401 50\n3.0 404 40\n4.0 200 5")  # the last line is still being written
    log = PeerAccessLog(path)
    log.read()
    assert log.requests == {"ok": 1, "bad_token": 1, "not_found": 1} and log.bytes_served == 1090
    with path.open("a") as handle:
        handle.write("00\n")
    log.read()
    assert log.requests["ok"] == 2 and log.bytes_served == 1590
    path.write_text("5.0 403 10\n")  # rotated: a new, shorter file
    log.read()
    assert log.requests["refused"] == 1 and log.bytes_served == 1600


def test_timed_dmp_counts_calls_and_failures():
    class Client:
        def publish(self, *args, **kwargs):
            return "entry"

        def delete(self, *args, **kwargs):
            raise ConnectionError("down")

    timed = TimedDmp(Client())
    assert timed.publish(b"", None, {}) == "entry"
    with pytest.raises(ConnectionError):
        timed.delete("x", None)
    figures = timed.figures()
    assert figures["drimbox_dmp_calls_total"] == 2 and figures["drimbox_dmp_call_failures_total"] == 1


def test_pusher_hands_every_value_as_float(store):
    pushed: dict[str, float] = {}
    metrics = Metrics(store, dmp=None, peer_log=None, whitelist_status=lambda: {
        "in_force": True, "generated_at": "1970-01-01T00:10:00+00:00", "in_force_since": None}, clock=lambda: 1200.0)
    MetricsPusher(metrics, pushed.__setitem__).push_once()
    assert pushed["drimbox_whitelist_age_seconds"] == 600.0 and pushed["drimbox_whitelist_in_force"] == 1.0
    assert all(isinstance(v, float) for v in pushed.values())


def test_plain_words():
    assert label("study", "manifest_ready", "fr") == "Manifeste prêt"
    assert label("publication", "queued", "en") == "Waiting to be sent"
    assert "en panne" in explain("DMP unavailable: HTTP 500 from https://dmp/repository", "fr")
    assert explain("something new", "en") == "something new"  # unknown errors are shown as they are
    assert language({"lang": "en"}, {"accept-language": "fr"}) == "en"
    assert language({}, {"accept-language": "en-GB,en;q=0.8"}) == "en"
    assert language({"lang": "<x>"}, {}) == "fr"
