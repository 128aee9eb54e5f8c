"""The box's attack suite: in-process fuzzing of every parser (hypothesis, bounded) and a live campaign
against a running box on loopback (``integration`` marker). See docs/security.md, "Attack suite"."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from drimbox.crypto.pki import create_test_pki

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# the live campaign reuses the peer-access world (one box, PSC simulator, signed whitelist, a published study)
sys.path.insert(0, str(HERE.parent / "integration" / "peer"))


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return create_test_pki(tmp_path_factory.mktemp("pki"), hosts=("localhost", "127.0.0.1"), boxes=("box-a", "box-b"))
