"""``drimbox backup``: the box's store and every DICOM instance Orthanc holds, while the box runs.

Orthanc 1.10 keeps its SQLite index under an exclusive lock (no other process may read it, not even SQLite's
backup API), so Orthanc's part is taken through Orthanc's own REST API, on the operator entry: each instance's
DICOM file as Orthanc stored it. Restoring imports them into a new index (``drimbox.backup.restore``).

Order makes the pair consistent: the store is copied first (a snapshot), then the instances. Everything the
store knows is then in the copy of Orthanc; an instance that arrived in between is in the copy too, and the
restored box looks at it again (its change log is read from the start after a restore).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from drimbox.store.backup import backup_store

FORMAT = 1
MANIFEST = "backup.json"
STORE_COPY = "drimbox.db"
DICOM_DIR = "dicom"
CONFIG_DIR = "config"
PAGE = 500
# Orthanc's identifiers: SHA-1 in five dash-separated groups of eight hex digits
ORTHANC_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{8}){4}$")


class BackupError(RuntimeError):
    pass


class Orthanc(Protocol):
    """What a backup reads from the running box (its operator entry)."""

    def json(self, path: str, **params: Any) -> Any: ...

    def file(self, path: str) -> bytes | None: ...  # None: gone since it was listed


@dataclass
class BackupReport:
    out: Path
    instances: int = 0
    bytes: int = 0
    vanished: list[str] = field(default_factory=list)
    seconds: float = 0.0


def instance_path(root: Path, orthanc_id: str) -> Path:
    if not ORTHANC_ID.match(orthanc_id):
        raise BackupError(f"Orthanc answered an unexpected instance id {orthanc_id!r}")
    return root / DICOM_DIR / orthanc_id[:2] / f"{orthanc_id}.dcm"


def _instance_ids(orthanc: Orthanc) -> list[str]:
    ids: list[str] = []
    while True:
        page = orthanc.json("/instances", since=len(ids), limit=PAGE)
        if not isinstance(page, list):
            raise BackupError("Orthanc's /instances did not answer a list")
        ids.extend(str(i) for i in page)
        if len(page) < PAGE:
            return list(dict.fromkeys(ids))


def backup(orthanc: Orthanc, store_url: str, out: Path, *, config_dir: Path | None = None,
           progress: Callable[[int, int], None] | None = None) -> BackupReport:
    """Write a complete backup in ``out`` (which must not exist); a partial one is never left under that name."""
    if out.exists():
        raise BackupError(f"{out} already exists: give a new directory")
    started = time.monotonic()
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True, mode=0o700)
    report = BackupReport(out)
    changes = orthanc.json("/changes", last="")
    backup_store(store_url, partial / STORE_COPY)
    entries: dict[str, dict[str, Any]] = {}
    ids = _instance_ids(orthanc)
    for number, orthanc_id in enumerate(ids, start=1):
        data = orthanc.file(f"/instances/{orthanc_id}/file")
        if data is None:
            report.vanished.append(orthanc_id)
            continue
        target = instance_path(partial, orthanc_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        entries[orthanc_id] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        report.instances += 1
        report.bytes += len(data)
        if progress:
            progress(number, len(ids))
    if config_dir is not None:
        shutil.copytree(config_dir, partial / CONFIG_DIR, ignore=shutil.ignore_patterns("*.partial"))
    manifest = {"format": FORMAT, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "orthanc_last_change": changes.get("Last") if isinstance(changes, dict) else None,
                "store": STORE_COPY, "instances": entries, "vanished": report.vanished}
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
    os.replace(partial, out)
    report.seconds = time.monotonic() - started
    return report


def read_manifest(backup_dir: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((backup_dir / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise BackupError(f"{backup_dir} is not a complete DRIMbox backup (no readable {MANIFEST}): {error}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{backup_dir}: backup format {manifest.get('format')!r} is not supported "
                          f"(expected {FORMAT})")
    return manifest
