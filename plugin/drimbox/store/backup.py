"""Copies of the store that are consistent while the box runs (SQLite's online backup API)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def sqlite_path(url: str) -> Path:
    if not url.startswith("sqlite:///"):
        raise ValueError(f"only a SQLite store can be copied this way ({url.split(':', 1)[0]}): "
                         "use the database's own tools (pg_dump) for the store and back up Orthanc's images here")
    return Path("/" + url[len("sqlite://"):].lstrip("/"))


def backup_store(url: str, out: Path) -> None:
    """A transactionally consistent copy of the running store (writers are not blocked for long)."""
    source = sqlite3.connect(sqlite_path(url).as_uri() + "?mode=ro", uri=True, timeout=30)
    try:
        target = sqlite3.connect(str(out))
        try:
            source.backup(target, pages=1024)
        finally:
            target.close()
    finally:
        source.close()


def restore_store(copy: Path, url: str) -> None:
    """Replace the (stopped) box's store by ``copy``; the copy's schema is migrated by the next open."""
    path = sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    source = sqlite3.connect(copy.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        target = sqlite3.connect(str(path))
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()
