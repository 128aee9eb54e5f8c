"""A private PostgreSQL server (Debian's postgresql 15) in a folder, on a loopback port, for tests and demos."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# initdb and postgres refuse to run as root: as root, the server runs as Debian's postgres account
SERVICE_USER = "postgres"


def _as_service_user() -> dict:
    return {"user": SERVICE_USER, "group": SERVICE_USER} if os.geteuid() == 0 else {}


@dataclass
class PostgresServer:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "drimbox"
    max_connections: int = 400
    # tests only: no fsync at all (a machine crash could corrupt the cluster). Otherwise commits do not wait for
    # the WAL flush (synchronous_commit off): a crash may lose the last moments but never corrupts, like the
    # SQLite store's WAL with synchronous=NORMAL.
    throwaway: bool = False

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def _run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(argv, check=True, capture_output=True, text=True, cwd="/", **_as_service_user(),
                              **kwargs)

    def init(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            self.data_dir.chmod(0o755)
            shutil.chown(self.pgdata, SERVICE_USER, SERVICE_USER)
        # trust on loopback only: the server listens on 127.0.0.1 and is private to this machine's user
        self._run([str(PG_BIN / "initdb"), "-D", str(self.pgdata), "-U", self.user, "--auth=trust",
                   "--encoding=UTF8", "--locale=C.UTF-8"])

    def start(self, timeout: float = 30.0) -> "PostgresServer":
        self.init()
        socket_dir = self.pgdata  # the unix socket stays inside the private folder
        options = (f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories={socket_dir}"
                   f" -c max_connections={self.max_connections} -c synchronous_commit=off")
        if self.throwaway:
            options += " -c fsync=off -c full_page_writes=off"
        if os.geteuid() == 0:
            self.log_path.touch()
            shutil.chown(self.log_path, SERVICE_USER, SERVICE_USER)
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_path), "-o", options,
                   "-w", "-t", str(int(timeout)), "start"])
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run([str(PG_BIN / "pg_isready"), "-h", self.host, "-p", str(self.port)],
                                  capture_output=True)
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL not ready on {self.host}:{self.port}; see {self.log_path}")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{_identifier(name)}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{_identifier(name)}" WITH (FORCE)')

    def stop(self) -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        subprocess.run([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
                       capture_output=True, cwd="/", **_as_service_user())


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain database name: {name!r}")
    return name
