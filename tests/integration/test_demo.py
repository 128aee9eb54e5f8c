"""``drimbox demo`` plays the whole source scenario on a two-box network; its exit status says it worked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
DRIMBOX = str(Path(sys.executable).with_name("drimbox"))


def test_demo_scenario_runs_end_to_end(tmp_path):
    result = subprocess.run([DRIMBOX, "demo", "--no-wait", "--free-ports", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "DMP approved as urn:uuid:" in result.stdout
    assert "HTTP 200," in result.stdout and "DICOM part(s)" in result.stdout
    assert "with a forged token: HTTP 401" in result.stdout
    assert "without a client certificate: HTTP 403" in result.stdout
    assert "/drimbox/open?study=" in result.stdout
