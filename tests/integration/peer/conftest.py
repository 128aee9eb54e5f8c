"""A real source box (Orthanc + plugin + nginx over TLS), a real PSC simulator over TLS, a signed whitelist,
and one published JPEG-LS study, shared by the peer-access tests of a module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_helpers import PeerWorld, start_world  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory, pki) -> PeerWorld:
    w = start_world(tmp_path_factory.mktemp("peer"), pki)
    yield w
    w.stop()
