"""``drimbox link`` against a running box (admin entry) and from its data directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import browser, query_of

pytestmark = pytest.mark.integration
DRIMBOX = [str(Path(sys.executable).with_name("drimbox"))]


def drimbox(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DRIMBOX, *args], capture_output=True, text=True, timeout=60)


def test_link_from_the_admin_entry_and_from_the_data_dir(viewer_box, viewer_operator, studies, tmp_path):
    uid = studies["a"].content.study_uid
    expected = viewer_operator.get(f"/drimbox/studies/{uid}/viewer-link").json()["url"]
    password = tmp_path / "password"
    password.write_text(viewer_box.operator_password)
    online = drimbox("link", "--box-url", viewer_box.admin_url, "--user", "operator", "--password-file",
                     str(password), "--ca", viewer_box.ca_bundle, "--study", uid)
    assert online.returncode == 0, online.stderr
    assert online.stdout.strip() == expected
    offline = drimbox("link", "--data-dir", str(viewer_box.data_dir), "--study", uid)
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.strip() == expected
    missing = drimbox("link", "--data-dir", str(viewer_box.data_dir), "--study", "1.2.3.404")
    assert missing.returncode == 1 and "no current manifest" in missing.stderr


def test_patient_link_from_the_cli_opens_the_viewer(viewer_box, studies, tmp_path):
    uid = studies["b"].content.study_uid
    password = tmp_path / "password"
    password.write_text(viewer_box.operator_password)
    for where in (["--box-url", viewer_box.admin_url, "--password-file", str(password), "--ca", viewer_box.ca_bundle],
                  ["--data-dir", str(viewer_box.data_dir)]):
        result = drimbox("link", *where, "--study", uid, "--patient", "--subject", "demo-patient", "--hours", "1")
        assert result.returncode == 0, result.stderr
        answer = browser(viewer_box).get(result.stdout.strip(), timeout=30)
        assert query_of(answer.url)["StudyInstanceUIDs"] == uid
