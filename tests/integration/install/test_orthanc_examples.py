"""orthanc/examples/production/ holds the Orthanc configuration a production box runs with, as `drimbox install`
writes it (its paths as on a server: the checkout in /opt/drimbox). This test installs into a throw-away root
and fails when the committed examples differ; DRIMBOX_WRITE_EXAMPLES=1 rewrites them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from install_helpers import install_args, run, structure_files  # noqa: E402

from drimbox.launcher.box_instance import REPO  # noqa: E402

pytestmark = pytest.mark.integration

EXAMPLES = REPO / "orthanc" / "examples" / "production"
FILES = ("orthanc.json", "drimbox.json")


def as_on_a_server(text: str, root: Path) -> str:
    """The throw-away root is the server's /, the checkout is /opt/drimbox."""
    return text.replace(str(root), "").replace(str(REPO), "/opt/drimbox")


def test_the_committed_examples_are_what_drimbox_install_writes(tmp_path):
    files = structure_files(tmp_path / "structure")
    root = tmp_path / "root"
    result = run(install_args(root, files, **{"--ohif-dir": str(REPO / "viewer" / "dist")}))
    assert result.returncode == 0, result.stderr
    written = {name: as_on_a_server((root / "etc/drimbox/orthanc.d" / name).read_text(), root)
               for name in FILES}
    for name, text in written.items():
        json.loads(text)
        assert "/tmp" not in text and str(tmp_path) not in text, name
    if os.environ.get("DRIMBOX_WRITE_EXAMPLES") == "1":
        EXAMPLES.mkdir(parents=True, exist_ok=True)
        for name, text in written.items():
            (EXAMPLES / name).write_text(text)
    for name, text in written.items():
        assert (EXAMPLES / name).read_text() == text, (
            f"orthanc/examples/production/{name} is stale: run this test with DRIMBOX_WRITE_EXAMPLES=1")
