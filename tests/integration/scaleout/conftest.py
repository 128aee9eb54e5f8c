"""Two box nodes sharing one PostgreSQL (the plugin's store and Orthanc's index) and one DICOM storage folder."""

from __future__ import annotations

import pytest
from support.postgres import fresh_database, start_postgres

from drimbox.launcher.ports import BoxPorts, NodePorts
from drimbox.testing import start_box


@pytest.fixture(scope="session")
def postgres_server():
    yield from start_postgres()


# a job the killed node had claimed is taken over when its lease lapses (30 s without the node's heartbeat),
# well before the lease a claim would need without a heartbeat (4 x TimeoutSeconds + 30 s = 70 s)
@pytest.fixture
def two_nodes(tmp_path, pki, dmp_sim, postgres_server):
    box = start_box(tmp_path / "box", pki=pki, dmp_url=dmp_sim.url, nodes=2, ports=BoxPorts.free(),
                    node_ports=(NodePorts.free(),), store_url=fresh_database(postgres_server, "drimbox"),
                    orthanc_index_url=fresh_database(postgres_server, "orthanc"),
                    settings={"Dmp": {"RetryInitialSeconds": 0.5, "RetryMaxSeconds": 2.0, "TimeoutSeconds": 10}})
    yield box
    box.stop()
