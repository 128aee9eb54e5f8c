"""A plain Orthanc (no DRIMbox plugin) on a free loopback port, for tests of what Orthanc itself answers."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from pathlib import Path
from typing import Iterator

import requests

from drimbox.launcher.box_instance import ORTHANC
from drimbox.launcher.ports import free_port



@contextlib.contextmanager
def plain_orthanc(folder: Path, **configuration) -> Iterator[str]:
    """Start Orthanc with its index and storage under ``folder`` (``configuration``: more keys); yields its base
    URL once it answers, stops it on exit."""
    (folder / "db").mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {"Name": "plain", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
              "HttpPort": port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
              "DicomServerEnabled": False, "Plugins": [], **configuration}
    (folder / "orthanc.json").write_text(json.dumps(config))
    process = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], cwd=folder,
                               stdout=open(folder / "orthanc.log", "wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"{base}/system", timeout=1).raise_for_status()
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
