"""Thread-safe connection holders with schema migrations: SQLite (the default) and PostgreSQL (scale-out).

Both run the same statements, written in SQLite's dialect; :mod:`drimbox.store.dialect` rewrites them for
PostgreSQL. ``transaction()`` means the same on both: writers are serialised up front, so a read-modify-write
sequence is atomic. Hot paths that must not wait for other writers use row locks instead
(``transaction(serialized=False)`` with :attr:`Database.skip_locked`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from drimbox.store.schema import MIGRATIONS


class Database:
    """The interface the store codes against."""

    engine = ""
    # appended to a claim's SELECT: lock the chosen rows, skip those another transaction holds
    skip_locked = ""

    @contextmanager
    def transaction(self, *, serialized: bool = True) -> Iterator[Any]:
        raise NotImplementedError
        yield

    @contextmanager
    def exclusive(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold the lock ``name`` across processes sharing this database; yields False when ``wait`` is False and
        another holder has it."""
        raise NotImplementedError
        yield

    def query(self, sql: str, params: tuple | list = ()) -> list[Any]:
        raise NotImplementedError

    def query_one(self, sql: str, params: tuple | list = ()) -> Any | None:
        raise NotImplementedError

    def execute(self, sql: str, params: tuple | list = ()) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def run_migrations(conn: Any) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    current = row[0] or 0
    for version, statements in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


class _NamedLocks:
    """Process-local named locks per database file: SQLite's stand-in for PostgreSQL's advisory locks (a SQLite
    store belongs to one process)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}

    def get(self, path: str, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((path, name), threading.Lock())


_NAMED_LOCKS = _NamedLocks()


class SqliteDatabase(Database):
    """One SQLite connection per thread, WAL mode, short busy waits; migrations applied at open."""

    engine = "sqlite"

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _make_private(path)
        with self.transaction() as conn:
            run_migrations(conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @property
    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def transaction(self, *, serialized: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: writers serialise up front, so read-modify-write sequences are atomic."""
        conn = self.connection
        if conn.in_transaction:  # nested use joins the outer transaction
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def exclusive(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        lock = _NAMED_LOCKS.get(str(Path(self.path).resolve()), name)
        acquired = lock.acquire(blocking=wait)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()

    def query(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        return self.connection.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | list = ()) -> sqlite3.Row | None:
        return self.connection.execute(sql, params).fetchone()

    def execute(self, sql: str, params: tuple | list = ()) -> Any:
        with self.transaction() as conn:
            return conn.execute(sql, params)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def open_database(url: str) -> Database:
    if url.startswith("sqlite:///"):
        return SqliteDatabase(url[len("sqlite://"):])
    if url.startswith(("postgresql://", "postgres://")):
        from drimbox.store.postgres import PostgresDatabase

        return PostgresDatabase(url)
    raise ValueError(f"DRIMbox.Store: unsupported URL {url!r}; expected sqlite:///<absolute path> or "
                     "postgresql://<user>@<host>:<port>/<database>")


def _make_private(path: str) -> None:
    """The store holds the box's secrets (grant and viewer-session keys, the patient-link private key): only
    its owner may read it. SQLite gives its -wal and -shm files the mode of the database file."""
    if path == ":memory:" or path.startswith("file:"):
        return
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, path + "-wal", path + "-shm"):
        if os.path.exists(name) and os.stat(name).st_mode & 0o077:
            os.chmod(name, 0o600)
