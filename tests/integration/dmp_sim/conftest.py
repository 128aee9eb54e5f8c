from __future__ import annotations

import pytest

from drimbox.crypto.pki import cert_pem
from drimbox.sim.dmp import DmpSimulator

from dmp_sim_fixtures import DmpTestClient, make_test_pki


@pytest.fixture(scope="session")
def pki():
    return make_test_pki()


@pytest.fixture(scope="session")
def signing_ca_file(pki, tmp_path_factory):
    path = tmp_path_factory.mktemp("dmp-sim-ca") / "signing-ca.pem"
    path.write_bytes(cert_pem(pki.root.cert))
    return str(path)


@pytest.fixture
def simulator(tmp_path, signing_ca_file):
    sim = DmpSimulator(str(tmp_path / "dmp"), signing_ca=signing_ca_file)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def client(simulator, pki):
    return DmpTestClient(simulator.url, pki.signer)
