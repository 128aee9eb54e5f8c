"""The store on PostgreSQL (psycopg 3): several box nodes share one database.

A small pool of autocommit connections, borrowed per statement, per transaction or per named lock: Orthanc's
threads get a fresh Python thread state for every callback, so a thread-local connection would be a new
PostgreSQL backend (a fork, ~10 ms) for every request. ``transaction()`` takes a transaction-scoped advisory
lock first, the equivalent of SQLite's ``BEGIN IMMEDIATE``, so every read-modify-write sequence written for
SQLite keeps its meaning across nodes; claims of queued work use row locks with ``SKIP LOCKED`` instead and
never wait for it.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import psycopg
from psycopg.pq import TransactionStatus

from drimbox.store.database import Database, run_migrations
from drimbox.store.dialect import Catalogue, Translator

_CATALOGUE_KEYS = """
    SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc
    JOIN information_schema.key_column_usage kcu
      ON tc.constraint_name = kcu.constraint_name AND tc.table_schema = kcu.table_schema
    WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = current_schema()
    ORDER BY tc.table_name, kcu.ordinal_position"""
_CATALOGUE_IDENTITY = """
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = current_schema() AND is_identity = 'YES'"""


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


WRITER_LOCK = lock_key("drimbox.store.writer")


class Row:
    """Read like ``sqlite3.Row``: by position, by column name, ``keys()`` and ``dict(row)``."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: Sequence[Any], index: dict[str, int]):
        self._values = tuple(values)
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def _row_factory(cursor: Any) -> Any:
    names = [column.name for column in (cursor.description or ())]
    index = {name: i for i, name in enumerate(names)}

    def make(values: Sequence[Any]) -> Row:
        return Row(values, index)

    return make


class Cursor:
    """What ``execute`` returns on both engines: fetchone/fetchall, rowcount, lastrowid."""

    def __init__(self, cursor: Any, returning: str | None):
        self.rowcount = cursor.rowcount
        self.lastrowid: int | None = None
        # read at once: the connection goes back to the pool when the statement is done
        self._rows: list[Row] = cursor.fetchall() if cursor.description else []
        if returning:
            self.lastrowid = self._rows[0][0] if self._rows else None
            self._rows = []
        self._next = 0

    def fetchone(self) -> Row | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Row]:
        rows, self._next = self._rows[self._next:], len(self._rows)
        return rows


class Connection:
    """A psycopg connection that speaks the store's SQLite-style statements."""

    def __init__(self, raw: psycopg.Connection, translate: Translator):
        self.raw = raw
        self._translate = translate

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        translated = self._translate(sql)
        cursor = self.raw.execute(translated.sql, tuple(params))
        return Cursor(cursor, translated.returning)

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> None:
        translated = self._translate(sql)
        statement = translated.sql
        if translated.returning:  # executemany returns nothing: drop the RETURNING the translation added
            statement = statement[: statement.rindex(" RETURNING ")]
        with self.raw.cursor() as cursor:
            cursor.executemany(statement, [tuple(p) for p in seq])

    @property
    def usable(self) -> bool:
        return not (self.raw.closed or self.raw.broken)

    def close(self) -> None:
        self.raw.close()


class PostgresDatabase(Database):
    engine = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, *, idle_connections: int = 16):
        self.url = url
        self._local = threading.local()  # the connection a thread holds inside a transaction or a named lock
        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue()
        self._idle_max = idle_connections
        self._translate = Translator()
        with self.transaction() as conn:
            run_migrations(conn)
        self._translate.set_catalogue(self._read_catalogue())

    def _connect(self) -> Connection:
        raw = psycopg.connect(self.url, autocommit=True, row_factory=_row_factory)
        return Connection(raw, self._translate)

    @contextmanager
    def _borrowed(self) -> Iterator[Connection]:
        """The thread's held connection, or one from the pool for the time of the block."""
        held: Connection | None = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        conn = self._take()
        self._local.conn = conn
        try:
            yield conn
        finally:
            self._local.conn = None
            self._give_back(conn)

    def _take(self) -> Connection:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return self._connect()
            if conn.usable:
                return conn

    def _give_back(self, conn: Connection) -> None:
        if conn.usable and not conn.in_transaction and self._idle.qsize() < self._idle_max:
            self._idle.put(conn)
        else:
            conn.close()

    def _read_catalogue(self) -> Catalogue:
        with self._borrowed() as conn:
            keys: dict[str, list[str]] = {}
            for row in conn.raw.execute(_CATALOGUE_KEYS).fetchall():
                keys.setdefault(row[0], []).append(row[1])
            identity = {row[0]: row[1] for row in conn.raw.execute(_CATALOGUE_IDENTITY).fetchall()}
        return Catalogue({t: tuple(c) for t, c in keys.items()}, identity)

    @contextmanager
    def transaction(self, *, serialized: bool = True) -> Iterator[Connection]:
        with self._borrowed() as conn:
            if conn.in_transaction:  # nested use joins the outer transaction
                if serialized:
                    conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
                yield conn
                return
            conn.raw.execute("BEGIN")
            try:
                if serialized:
                    conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
                yield conn
            except BaseException:
                if conn.usable:
                    conn.raw.execute("ROLLBACK")
                raise
            conn.raw.execute("COMMIT")

    @contextmanager
    def exclusive(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """A session advisory lock: released at the end, or by PostgreSQL when the node dies."""
        with self._borrowed() as conn:
            key = lock_key(name)
            if wait:
                conn.raw.execute("SELECT pg_advisory_lock(%s)", (key,))
                acquired = True
            else:
                row = conn.raw.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                acquired = bool(row and row[0])
            try:
                yield acquired
            finally:
                if acquired and conn.usable:
                    conn.raw.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def query(self, sql: str, params: tuple | list = ()) -> list[Row]:
        return self._read(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | list = ()) -> Row | None:
        return self._read(sql, params).fetchone()

    def _read(self, sql: str, params: tuple | list) -> Cursor:
        """A read outside a transaction is tried again once on a fresh connection when a pooled one turns out
        dead (a restarted server, a cut connection): nothing was changed, so nothing can happen twice."""
        for attempt in (1, 2):
            with self._borrowed() as conn:
                held = conn.in_transaction
                try:
                    return conn.execute(sql, params)
                except psycopg.OperationalError:
                    if held or conn.usable or attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def execute(self, sql: str, params: tuple | list = ()) -> Cursor:
        with self._borrowed() as conn:
            return conn.execute(sql, params)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
