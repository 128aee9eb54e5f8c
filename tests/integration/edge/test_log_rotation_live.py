"""The launcher's rotation on a running box: nginx and Orthanc keep logging into the emptied files (they write
in append mode: no hole of NUL bytes, no lost file), and the copy holds what was there before."""

from __future__ import annotations

import uuid

import pytest

from drimbox.launcher.log_rotation import LogRotation
from support.logs import logged

pytestmark = pytest.mark.integration


def test_nginx_and_orthanc_go_on_logging_after_a_rotation(box, operator):
    assert operator.get("/drimbox/status").status_code == 200
    access = box.log_dir / "nginx-access.log"
    before = logged(access, "/drimbox/status").encode()
    assert b"/drimbox/status" in before

    rotated = LogRotation([box.log_dir], max_bytes=1, keep=3).rotate_once()

    assert access in rotated and box.log_dir / "orthanc.log" in rotated
    assert (box.log_dir / "nginx-access.log.1").read_bytes().startswith(before)
    marker = f"/drimbox/after-rotation-{uuid.uuid4().hex}"
    operator.get(marker)
    logged(access, marker)
    after = access.read_bytes()
    assert marker.encode() in after and b"\0" not in after and b"/drimbox/status" not in after
    assert operator.get("/drimbox/status").status_code == 200  # Orthanc behind it still answers
    assert b"\0" not in (box.log_dir / "orthanc.log").read_bytes()
