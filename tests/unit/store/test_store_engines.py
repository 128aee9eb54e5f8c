"""The store's operations, the same on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest

from drimbox.store import InstanceFact, Store
from drimbox.store.records import ManifestStatus, PublicationState


class Clock:
    def __init__(self, now: float = 1_700_000_000.25):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(store_url, clock) -> Store:
    opened = Store.open(store_url, clock=clock)
    yield opened
    opened.db.close()


def test_reopening_applies_no_migration_twice(store_url, store):
    store.set_fact("k", "v")
    again = Store.open(store_url)
    assert again.get_fact("k") == "v"
    assert again.db.query_one("SELECT COUNT(*) FROM schema_version")[0] == store.db.query_one(
        "SELECT MAX(version) FROM schema_version")[0]


def test_messages_keep_bytes_times_and_ids(store, clock):
    first = store.add_message(channel="mllp", raw=b"MSH|^~\\&|100%\x00\xff", control_id="c1", errors=["e"])
    second = store.add_message(channel="rest", raw=b"x")
    assert second > first
    store.set_message_outcome(first, "AE", "refused", errors=["bad"], warnings=["w"])
    store.set_message_outcome(second, "AA", "")
    message = store.get_message(first)
    assert message.raw == b"MSH|^~\\&|100%\x00\xff"
    assert message.received_at == clock.now  # a double, not a 32-bit float
    assert (message.ack_code, message.errors, message.warnings) == ("AE", ("bad",), ("w",))
    assert [m.id for m in store.list_messages(problems_only=True)] == [first]
    assert store.stored_message_bytes() == len(b"MSH|^~\\&|100%\x00\xff") + 1


def test_reports_upsert_and_lookup_by_study(store):
    store.save_report(report_id="r1", message_id=None, state="active", study_uids=["1.2.3", "1.2.30"],
                      flags={"DESTDMP": "Y"}, cda=b"<cda/>")
    store.save_report(report_id="r1", message_id=None, state="active", study_uids=["1.2.3"], flags={}, cda=b"<v2/>")
    store.set_report_state("r1", "replaced", replaced_by="r2")
    report = store.get_report("r1")
    assert (report.cda, report.state, report.replaced_by_report_id) == (b"<v2/>", "replaced", "r2")
    assert [r.report_id for r in store.reports_for_study("1.2.3")] == ["r1"]
    assert store.reports_for_study("1.2.30") == []


def test_studies_created_then_updated(store):
    store.update_study("1.2", orthanc_id="o1", state="waiting_stable")
    store.mark_pending("1.2")
    assert store.pending_studies() == ["1.2"]
    record = store.get_study("1.2")
    assert (record.orthanc_id, record.state, record.pending) == ("o1", "waiting_stable", 1)
    with pytest.raises(ValueError):
        store.update_study("1.2", nonsense=1)


def test_manifest_versions_and_supersession(store):
    args = dict(study_uid="1.2", report_id="r1", fingerprint="f", series_count=1, instance_count=2,
                content={"s": {"i": "c"}}, data=b"\x00KOS")
    first = store.add_manifest(kos_uid="k1", **args)
    second = store.add_manifest(kos_uid="k2", **args)
    assert (first.version, second.version, second.replaces_kos_uid) == (1, 2, "k1")
    assert store.get_manifest("k1").status == ManifestStatus.SUPERSEDED
    assert store.current_manifest("1.2").data == b"\x00KOS"
    store.set_manifest_dmp("k2", dmp_status="Approved", entry_uuid="urn:uuid:1")
    assert store.get_manifest("k2").dmp_entry_uuid == "urn:uuid:1"


def test_publication_queue_keeps_the_order_of_a_study(store, clock):
    a1 = store.enqueue_publication(study_uid="A", kos_uid="k1", action="register")
    a2 = store.enqueue_publication(study_uid="A", kos_uid="k2", action="register")
    b1 = store.enqueue_publication(study_uid="B", kos_uid="k3", action="register")
    first = store.claim_publication("w1")
    second = store.claim_publication("w2")
    assert (first.id, second.id) == (a1, b1)  # a2 waits for a1 even while a1 is claimed
    assert store.claim_publication("w3") is None
    store.finish_publication(a1, PublicationState.DONE, entry_uuid="e1")
    assert store.claim_publication("w3").id == a2
    store.finish_publication(a2, PublicationState.DONE)
    store.retry_publication_later(b1, error="DMP down", delay_seconds=10)
    assert store.next_publication_due() == clock.now + 10
    assert store.claim_publication("w1") is None
    clock.now += 11
    again = store.claim_publication("w1")
    assert (again.id, again.attempts) == (b1, 2)


def test_publication_lease_expires(store, clock):
    job = store.enqueue_publication(study_uid="A", kos_uid="k1", action="register")
    assert store.claim_publication("dead-node", lease_seconds=5).id == job
    clock.now += 6
    assert store.claim_publication("live-node").claimed_by == "live-node"


def test_operator_retry_cancel_and_supersede(store):
    job = store.enqueue_publication(study_uid="A", kos_uid="k1", action="register")
    store.finish_publication(job, PublicationState.FAILED, error="refused")
    assert store.requeue_publication(job)
    assert store.cancel_publication(job)
    assert not store.cancel_publication(job)
    queued = store.enqueue_publication(study_uid="A", kos_uid="k2", action="register")
    assert store.supersede_queued_registrations("A") == 1
    assert store.get_publication(queued).state == PublicationState.SUPERSEDED


def test_audit_search(store):
    store.add_audit({"when": "2024-01-01T00:00:00", "entry_point": "wado", "action": "read", "outcome_status": 200,
                     "study_uid": "1.2"})
    store.add_audit({"when": "2024-01-02T00:00:00", "entry_point": "wado", "action": "read", "outcome_status": 403,
                     "study_uid": "1.2"})
    assert [e["outcome_status"] for e in store.search_audit(study_uid="1.2", outcome="denied")] == [403]
    assert len(store.search_audit(since="2024-01-01T12:00:00")) == 1


def test_instance_facts_merge_and_forget(store):
    store.save_instance_facts({"o1": InstanceFact("1.2.840.10008.5.1.4.1.1.2", study_uid="S", series_uid="SE",
                                                  sop_instance_uid="I", instance_number=3)})
    store.save_instance_facts({"o1": InstanceFact("1.2.840.10008.5.1.4.1.1.2")})  # a later, thinner note
    fact = store.instance_facts(["o1", "o2"])["o1"]
    assert (fact.study_uid, fact.instance_number) == ("S", 3)
    store.forget_instances(["o1"])
    assert store.instance_facts(["o1"]) == {}


def test_operator_sessions_and_login_failures(store):
    store.add_operator_session("h", "operator", now=10.0, expires_at=100.0)
    store.touch_operator_session("h", 20.0)
    assert store.get_operator_session("h")["user"] == "operator"
    assert store.purge_operator_sessions(expired_before=50.0, idle_before=15.0) == 0
    assert store.purge_operator_sessions(expired_before=150.0, idle_before=15.0) == 1
    store.record_login_failure("ip:1", now=1.0, forget_before=0.0, lock_for=lambda n: n * 2.0)
    row = store.record_login_failure("ip:1", now=2.0, forget_before=0.0, lock_for=lambda n: n * 2.0)
    assert (row["failures"], row["locked_until"]) == (2, 6.0)
    assert store.login_failures(["ip:1", "ip:2"])["ip:1"]["failures"] == 2
    store.clear_login_failures(["ip:1"])
    assert store.login_failures(["ip:1"]) == {}


def test_named_lock_is_exclusive_across_handles(store_url, store):
    other = Store.open(store_url)
    with store.exclusive("changes-cursor", wait=False) as mine:
        assert mine
        with other.exclusive("changes-cursor", wait=False) as theirs:
            assert not theirs
    with other.exclusive("changes-cursor", wait=False) as theirs:
        assert theirs


def test_the_first_node_to_keep_a_shared_secret_wins(store_url, store):
    other = Store.open(store_url)
    assert store.first_fact("gate_secret", "from-node-0") == "from-node-0"
    assert other.first_fact("gate_secret", "from-node-1") == "from-node-0"
    assert other.get_fact("gate_secret") == "from-node-0"


def test_a_live_node_renews_its_leases_a_dead_one_lets_them_lapse(store, clock):
    job = store.enqueue_publication(study_uid="A", kos_uid="k1", action="register")
    assert store.claim_publication("node-a", lease_seconds=5).id == job
    clock.now += 4
    assert store.renew_claims("node-a", lease_seconds=5) == 1
    assert store.renew_claims("node-b", lease_seconds=5) == 0
    clock.now += 3  # past the first lease, within the renewed one
    assert store.claim_publication("node-b", lease_seconds=5) is None
    clock.now += 3  # node-a stopped renewing
    assert store.claim_publication("node-b", lease_seconds=5).claimed_by == "node-b"
