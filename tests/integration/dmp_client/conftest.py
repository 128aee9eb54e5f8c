from __future__ import annotations

import sys
from pathlib import Path

import pytest

from drimbox.config.sections import IdentitySettings
from drimbox.crypto.pki import create_test_pki
from drimbox.dmp.client import DmpClient
from drimbox.sim.dmp import DmpSimulator
from dmp_client_helpers import box_settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "dmp"))


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> dict:
    return create_test_pki(tmp_path_factory.mktemp("pki"), boxes=("box-a", "box-b"))


@pytest.fixture
def simulator(tmp_path, pki):
    server = pki["servers"]["dmp-sim"]
    sim = DmpSimulator(str(tmp_path / "dmp"), tls_cert=server["fullchain"], tls_key=server["key"],
                       client_ca=pki["ca_bundle"], signing_ca=pki["root"]["cert"])
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def client(simulator, pki):
    dmp = DmpClient(box_settings(pki, simulator.url), IdentitySettings())
    yield dmp
    dmp.close()
