"""Found by the campaign: the box's data directory was world-readable (0755, store 0644). Any local user could
read Orthanc's DICOM files and the store's secrets, and with the viewer-session key forge a session for any
study of the PACS, published or not, and read it through the vi entry. The data directory is now the owner's
only, and the store's database file 0600 wherever it lives."""

from __future__ import annotations

import os
import stat

import pytest

from drimbox.store.database import SqliteDatabase as Database


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_store_is_created_private(tmp_path):
    path = tmp_path / "state" / "drimbox.db"
    Database(str(path)).connection.execute("SELECT 1")
    assert mode(path) == 0o600
    for extra in (path.with_name("drimbox.db-wal"), path.with_name("drimbox.db-shm")):
        if extra.exists():
            assert mode(extra) & 0o077 == 0, extra


def test_a_readable_store_is_made_private_when_opened(tmp_path):
    path = tmp_path / "drimbox.db"
    Database(str(path)).connection.close()
    os.chmod(path, 0o644)
    Database(str(path))
    assert mode(path) == 0o600


@pytest.mark.integration
def test_the_running_box_keeps_its_state_to_its_user(world):
    data = world.box.data_dir
    assert mode(data) & 0o077 == 0, oct(mode(data))
    assert mode(data / "state" / "drimbox.db") & 0o077 == 0
    # everything else (Orthanc's storage and index, logs, the curated-retrieve socket) is inside the directory
    assert (data / "orthanc").is_dir() and (data / "run").is_dir()
