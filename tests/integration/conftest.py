"""Fixtures that start real things: Orthanc with the plugin behind nginx, the DMP and PSC simulators."""

from __future__ import annotations

import pytest

from drimbox.crypto.pki import create_test_pki
from drimbox.sim.dmp.server import DmpSimulator
from drimbox.testing import BoxClient, start_box


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return create_test_pki(tmp_path_factory.mktemp("pki"), hosts=("localhost", "127.0.0.1"), boxes=("box-a", "box-b"))


@pytest.fixture(scope="session")
def dmp_sim(tmp_path_factory, pki):
    server = pki["servers"]["dmp-sim"]
    sim = DmpSimulator(str(tmp_path_factory.mktemp("dmp-sim")), tls_cert=server["fullchain"], tls_key=server["key"],
                       client_ca=pki["ca_bundle"], signing_ca=pki["ca_bundle"])
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def box(tmp_path, pki):
    """A box without DMP publication (the source pipeline alone)."""
    instance = start_box(tmp_path / "box", pki=pki)
    yield instance
    instance.stop()


@pytest.fixture
def operator(box) -> BoxClient:
    return BoxClient(box)
