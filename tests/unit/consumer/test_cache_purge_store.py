"""Which cached studies the purge may take, in a real SQLite store."""

from __future__ import annotations

from drimbox.store import open_database
from drimbox.store.consumer import RetrievalStore

NOW = 1_700_000_000.0


def cache(store: RetrievalStore, uid: str, expires_at: float) -> None:
    store.cache(uid, kos_uid="1.2.9." + uid[-1], patient_ins="279035121518989", source_host="db.example:8443",
                expires_at=expires_at)


def test_only_expired_cached_studies_are_claimed(tmp_path):
    store = RetrievalStore(open_database(f"sqlite:///{tmp_path}/box.sqlite"), clock=lambda: NOW)
    cache(store, "1.2.3.1", NOW - 10)  # expired
    cache(store, "1.2.3.2", NOW + 3600)  # still fresh
    cache(store, "1.2.3.3", NOW - 10)  # expired but imported
    store.db.execute("UPDATE consumer_cache SET state = 'imported' WHERE study_uid = '1.2.3.3'")
    cache(store, "1.2.3.4", NOW - 10)  # expired but its retrieval is running
    assert store.start("ctx", "1.2.9.4")
    store.update("ctx", "1.2.9.4", state="fetching", study_uid="1.2.3.4")

    assert store.expired(NOW) == ["1.2.3.1", "1.2.3.4"]
    assert not store.claim_purge("1.2.3.4", NOW)
    assert not store.claim_purge("1.2.3.3", NOW) and not store.claim_purge("1.2.3.2", NOW)
    assert store.claim_purge("1.2.3.1", NOW) and not store.claim_purge("1.2.3.1", NOW)
    store.end_purge("1.2.3.1", deleted=True)
    assert store.cached("1.2.3.1")["state"] == "purged" and store.expired(NOW) == ["1.2.3.4"]

    cache(store, "1.2.3.1", NOW + 3600)  # opened again: cached again, with a new expiry
    assert store.cached("1.2.3.1")["state"] == "cached" and store.cached("1.2.3.1")["expires_at"] == NOW + 3600
    cache(store, "1.2.3.3", NOW + 3600)  # an imported study stays imported
    assert store.cached("1.2.3.3")["state"] == "imported"


def test_a_failed_deletion_leaves_the_study_cached_for_the_next_run(tmp_path):
    store = RetrievalStore(open_database(f"sqlite:///{tmp_path}/box.sqlite"), clock=lambda: NOW)
    cache(store, "1.2.3.1", NOW - 10)
    assert store.claim_purge("1.2.3.1", NOW)
    store.end_purge("1.2.3.1", deleted=False)
    assert store.cached("1.2.3.1")["state"] == "cached" and store.expired(NOW) == ["1.2.3.1"]
