"""Orthanc calls the plugin from threads that get a new Python thread state for every callback: the store must
not open a PostgreSQL connection (a server process) per call."""

from __future__ import annotations

import threading

import psycopg
from support.postgres import fresh_database

from drimbox.store import Store


def test_calls_from_fresh_threads_reuse_pooled_connections(postgres_server, monkeypatch):
    store = Store.open(fresh_database(postgres_server))
    store.set_fact("k", "v")
    opened = []
    real_connect = psycopg.connect

    def counting_connect(*args, **kwargs):
        opened.append(1)
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(psycopg, "connect", counting_connect)
    answers = []
    for _ in range(40):  # one short-lived thread per call, as Orthanc's callbacks look to Python
        thread = threading.Thread(target=lambda: answers.append(store.get_fact("k")))
        thread.start()
        thread.join()
    assert answers == ["v"] * 40
    assert len(opened) <= 1


def test_a_broken_connection_is_replaced(postgres_server):
    store = Store.open(fresh_database(postgres_server))
    store.set_fact("k", "v")
    with psycopg.connect(postgres_server.url("postgres"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                      " AND pid <> pg_backend_pid()", (store.db.url.rsplit("/", 1)[1],))
    assert store.get_fact("k") == "v"  # the pooled connection was cut under it: a read tries a fresh one
    store.set_fact("k", "w")
    assert store.get_fact("k") == "w"
