"""``drimbox restore``: a backup back into a stopped box.

The store copy replaces the box's store (and is migrated to the current schema when it comes from an older
release). Orthanc's index is rebuilt by Orthanc itself: a temporary Orthanc without plugins, on a free loopback
port, on the box's own index and storage directories, imports every DICOM file of the backup and is stopped once
each study is stable, so that its change log holds the stable-study events the box follows. The box's change
cursor is set back to the start of that new log.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import requests

from drimbox.backup.archive import STORE_COPY, BackupError, instance_path, read_manifest
from drimbox.launcher.box_instance import ORTHANC
from drimbox.launcher.ports import free_port
from drimbox.launcher.processes import ManagedProcess, ProcessError, wait_for_port
from drimbox.pipeline.changes import CURSOR_FACT
from drimbox.store import Store
from drimbox.store.backup import restore_store, sqlite_path

# Orthanc keys of the box that say where and how Orthanc keeps its files; the temporary Orthanc uses them.
STORAGE_KEYS = ("StorageDirectory", "IndexDirectory", "StorageCompression")


@dataclass
class RestoreReport:
    instances: int = 0
    studies: int = 0
    seconds: float = 0.0


def _not_empty(path: Path) -> bool:
    return path.exists() and any(path.iterdir())


def check_target(orthanc_configuration: dict[str, Any], store_url: str, *, force: bool) -> None:
    """The box must be stopped, and what would be replaced must be empty unless ``force``."""
    port = int(orthanc_configuration.get("HttpPort", 8042))
    if wait_for_port("127.0.0.1", port):
        raise BackupError(f"something answers on Orthanc's port {port}: stop the box before restoring")
    index, storage = (Path(orthanc_configuration[k]) for k in ("IndexDirectory", "StorageDirectory"))
    store = sqlite_path(store_url) if store_url.startswith("sqlite:///") else None
    busy = [str(p) for p in (index, storage) if _not_empty(p)] + ([str(store)] if store and store.exists() else [])
    if busy and not force:
        raise BackupError("the box already holds data (" + ", ".join(busy) + "): restore into an empty box, or "
                          "give --force to replace it")
    for directory in (index, storage):
        if _not_empty(directory):
            shutil.rmtree(directory)


def _verified(backup_dir: Path, orthanc_id: str, entry: dict[str, Any]) -> bytes:
    path = instance_path(backup_dir, orthanc_id)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BackupError(f"{path} cannot be read ({error.strerror}): the backup is incomplete") from None
    if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise BackupError(f"{path} does not match the backup's checksum")
    return data


def verify_backup(backup_dir: Path, manifest: dict[str, Any]) -> None:
    """Every file is there and intact, before anything of the box is replaced."""
    if not (backup_dir / STORE_COPY).is_file():
        raise BackupError(f"{backup_dir / STORE_COPY} is missing: the backup is incomplete")
    for orthanc_id, entry in manifest["instances"].items():
        _verified(backup_dir, orthanc_id, entry)


def import_instances(backup_dir: Path, manifest: dict[str, Any], orthanc_configuration: dict[str, Any],
                     *, progress: Callable[[int, int], None] | None = None, timeout: float = 600) -> tuple[int, int]:
    """Rebuild Orthanc's index and storage from the backup's DICOM files; returns (instances, studies)."""
    http, dicom = free_port(), free_port()
    settings = {k: orthanc_configuration[k] for k in STORAGE_KEYS if k in orthanc_configuration}
    settings.update({"Name": "DRIMbox restore", "HttpPort": http, "DicomPort": dicom, "RemoteAccessAllowed": False,
                     "AuthenticationEnabled": False, "StableAge": 1, "Plugins": [], "SaveJobs": False})
    with tempfile.TemporaryDirectory(prefix="drimbox-restore-") as work:
        config = Path(work) / "orthanc.json"
        config.write_text(json.dumps(settings))
        orthanc = ManagedProcess("Orthanc (restore)", [ORTHANC, str(config)], log_path=Path(work) / "orthanc.log")
        orthanc.start()
        base = f"http://127.0.0.1:{http}"
        try:
            orthanc.wait_until(lambda: wait_for_port("127.0.0.1", http), 60, "answering")
            session = requests.Session()
            session.trust_env = False
            entries = manifest["instances"]
            for number, (orthanc_id, entry) in enumerate(sorted(entries.items()), start=1):
                answer = session.post(base + "/instances", data=_verified(backup_dir, orthanc_id, entry),
                                      headers={"Content-Type": "application/dicom"}, timeout=120)
                if answer.status_code != 200 or answer.json().get("ID") != orthanc_id:
                    raise BackupError(f"Orthanc refused {orthanc_id} ({answer.status_code}): {answer.text[:300]}")
                if progress:
                    progress(number, len(entries))
            studies = session.get(base + "/studies", timeout=60).json()
            _wait_stable(session, base, studies, timeout)
        except ProcessError as error:
            raise BackupError(str(error)) from error
        finally:
            orthanc.stop(timeout=60)
    return len(entries), len(studies)


def _wait_stable(session: requests.Session, base: str, studies: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = set(studies)
    while waiting:
        waiting = {s for s in waiting if not session.get(f"{base}/studies/{s}", timeout=30).json().get("IsStable")}
        if waiting and time.monotonic() > deadline:
            raise BackupError(f"{len(waiting)} studies did not become stable in the rebuilt index")
        if waiting:
            time.sleep(0.5)


def restore(backup_dir: Path, orthanc_configuration: dict[str, Any], store_url: str, *, force: bool = False,
            progress: Callable[[int, int], None] | None = None) -> RestoreReport:
    started = time.monotonic()
    manifest = read_manifest(backup_dir)
    verify_backup(backup_dir, manifest)
    check_target(orthanc_configuration, store_url, force=force)
    restore_store(backup_dir / STORE_COPY, store_url)
    store = Store.open(store_url)  # migrates a store from an older release to the current schema
    try:
        store.set_fact(CURSOR_FACT, "0")
    finally:
        store.db.close()
    instances, studies = import_instances(backup_dir, manifest, orthanc_configuration, progress=progress)
    _give_back(orthanc_configuration, store_url)
    return RestoreReport(instances=instances, studies=studies, seconds=time.monotonic() - started)


def _give_back(orthanc_configuration: dict[str, Any], store_url: str) -> None:
    """Restored as root: the files belong to the user who owns the box's data directories."""
    if os.geteuid() != 0:
        return
    paths = [Path(orthanc_configuration[k]) for k in ("IndexDirectory", "StorageDirectory")]
    if store_url.startswith("sqlite:///"):
        paths.append(sqlite_path(store_url).parent)
    for path in paths:
        owner = path.parent.stat()
        for directory, _, names in os.walk(path):
            os.chown(directory, owner.st_uid, owner.st_gid)
            for name in names:
                os.chown(os.path.join(directory, name), owner.st_uid, owner.st_gid)
