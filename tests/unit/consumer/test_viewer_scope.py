"""Which viewer sessions the consumer opened still stand, in a real SQLite store."""

from __future__ import annotations

from drimbox.consumer.viewer_scope import consumer_session_stands
from drimbox.store import open_database
from drimbox.store.consumer import RetrievalStore

NOW = 1_700_000_000.0


def test_a_cached_foreign_study_stands_under_its_own_kos_only(tmp_path):
    store = RetrievalStore(open_database(f"sqlite:///{tmp_path}/box.sqlite"), clock=lambda: NOW)
    store.cache("1.2.3.1", kos_uid="1.2.9.1", patient_ins="279035121518989", source_host="db.example:8443",
                expires_at=NOW + 3600)
    assert consumer_session_stands(store, "1.2.3.1", "1.2.9.1")
    assert not consumer_session_stands(store, "1.2.3.1", "1.2.9.2")  # another KOS
    assert not consumer_session_stands(store, "1.2.3.2", "1.2.9.1")  # a study the consumer never retrieved
    assert not consumer_session_stands(store, "1.2.3.1", "")  # a foreign study is not a local one
    store.db.execute("UPDATE consumer_cache SET state = 'purged' WHERE study_uid = '1.2.3.1'")
    assert not consumer_session_stands(store, "1.2.3.1", "1.2.9.1")


def test_local_and_imported_studies_stand_without_a_kos(tmp_path):
    store = RetrievalStore(open_database(f"sqlite:///{tmp_path}/box.sqlite"), clock=lambda: NOW)
    assert consumer_session_stands(store, "1.2.3.5", "")  # the local PACS's own study
    store.cache("1.2.3.6", kos_uid="1.2.9.6", patient_ins="279035121518989", source_host="db.example:8443",
                expires_at=NOW + 3600)
    store.db.execute("UPDATE consumer_cache SET state = 'imported' WHERE study_uid = '1.2.3.6'")
    assert consumer_session_stands(store, "1.2.3.6", "") and consumer_session_stands(store, "1.2.3.6", "1.2.9.6")
