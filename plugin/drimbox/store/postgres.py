"""The store on PostgreSQL (psycopg 3): several box nodes share one database.

One autocommit connection per thread. ``transaction()`` takes a transaction-scoped advisory lock first, the
equivalent of SQLite's ``BEGIN IMMEDIATE``, so every read-modify-write sequence written for SQLite keeps its
meaning across nodes; claims of queued work use row locks with ``SKIP LOCKED`` instead and never wait for it.
"""

from __future__ import annotations

import hashlib
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
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        self.lastrowid: int | None = None
        self._pending: Row | None = None
        if returning:
            row = cursor.fetchone()
            self.lastrowid = row[0] if row is not None else None

    def fetchone(self) -> Row | None:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Row]:
        return self._cursor.fetchall() if self._cursor.description else []


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

    def close(self) -> None:
        self.raw.close()


class PostgresDatabase(Database):
    engine = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()
        self._translate = Translator()
        with self.transaction() as conn:
            run_migrations(conn)
        self._translate.set_catalogue(self._read_catalogue())

    def _connect(self) -> Connection:
        raw = psycopg.connect(self.url, autocommit=True, row_factory=_row_factory)
        return Connection(raw, self._translate)

    @property
    def connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.raw.closed or conn.raw.broken:
            conn = self._local.conn = self._connect()
        return conn

    def _read_catalogue(self) -> Catalogue:
        raw = self.connection.raw
        keys: dict[str, list[str]] = {}
        for row in raw.execute(_CATALOGUE_KEYS).fetchall():
            keys.setdefault(row[0], []).append(row[1])
        identity = {row[0]: row[1] for row in raw.execute(_CATALOGUE_IDENTITY).fetchall()}
        return Catalogue({t: tuple(c) for t, c in keys.items()}, identity)

    @contextmanager
    def transaction(self, *, serialized: bool = True) -> Iterator[Connection]:
        conn = self.connection
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
            if not conn.raw.closed:
                conn.raw.execute("ROLLBACK")
            raise
        conn.raw.execute("COMMIT")

    @contextmanager
    def exclusive(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """A session advisory lock: released at the end, or by PostgreSQL when the node dies."""
        conn = self.connection
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
            if acquired and not conn.raw.closed and not conn.raw.broken:
                conn.raw.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def query(self, sql: str, params: tuple | list = ()) -> list[Row]:
        return self.connection.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | list = ()) -> Row | None:
        return self.connection.execute(sql, params).fetchone()

    def execute(self, sql: str, params: tuple | list = ()) -> Cursor:
        return self.connection.execute(sql, params)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
