"""A real PostgreSQL for tests: Debian's server in a temporary folder, on a free loopback port."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from drimbox.launcher.ports import free_port
from drimbox.launcher.postgres import PostgresServer

_names = itertools.count(1)


def start_postgres() -> Iterator[PostgresServer]:
    # not under pytest's 0700 tmp folders: as root the server runs as the postgres account, which must reach it
    folder = Path(tempfile.mkdtemp(prefix="drimbox-pg-"))
    server = PostgresServer(folder, port=free_port(), throwaway=True)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(server: PostgresServer, prefix: str = "t") -> str:
    return server.create_database(f"{prefix}_{next(_names)}")
