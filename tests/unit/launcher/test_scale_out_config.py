"""What the launcher generates for a box of several nodes on PostgreSQL."""

from __future__ import annotations

import re

import pytest

from drimbox.launcher.box_instance import BoxInstance
from drimbox.launcher.ports import BoxPorts, NodePorts

STORE = "postgresql://drimbox@127.0.0.1:5999/box_store"
INDEX = "postgresql://drimbox@127.0.0.1:5999/box_orthanc"


def two_nodes(tmp_path) -> BoxInstance:
    return BoxInstance(tmp_path, BoxPorts(), nodes=2, node_ports=(NodePorts(9042, 9242, 9575),), store_url=STORE,
                       orthanc_index_url=INDEX, stable_age=3)


def test_several_nodes_need_postgresql(tmp_path):
    with pytest.raises(ValueError, match="PostgreSQL"):
        BoxInstance(tmp_path, BoxPorts(), nodes=2)


def test_one_nginx_balances_over_every_node(tmp_path):
    config = two_nodes(tmp_path).render_nginx()
    upstream = re.search(r"upstream orthanc \{(.*?)\}", config, re.S).group(1)
    assert re.findall(r"server 127\.0\.0\.1:(\d+)", upstream) == ["8042", "9042"]


def test_each_node_has_its_ports_and_shares_index_storage_and_store(tmp_path):
    box = two_nodes(tmp_path)
    first, second = box.orthanc_configuration(0), box.orthanc_configuration(1)
    assert (second["HttpPort"], second["DicomPort"]) == (9042, 9242)
    assert first["StorageDirectory"] == second["StorageDirectory"]
    for config in (first, second):
        assert config["PostgreSQL"] == {"EnableIndex": True, "EnableStorage": False, "ConnectionUri": INDEX,
                                        "Lock": False, "MaximumConnectionRetries": 10, "ConnectionRetryInterval": 1,
                                        "IndexConnectionsCount": 4}
        assert config["Plugins"][-1].endswith("libOrthancPostgreSQLIndex.so")
    settings = box.drimbox_settings(1)
    assert settings["Store"] == STORE
    assert settings["OrthancUrl"] == "http://127.0.0.1:9042"
    assert settings["Hl7"]["Port"] == 9575
    assert settings["Publication"]["StudyQuietSeconds"] == 3


def test_one_node_on_sqlite_is_unchanged(tmp_path):
    box = BoxInstance(tmp_path, BoxPorts())
    assert "PostgreSQL" not in box.orthanc_configuration()
    assert "Store" not in box.drimbox_settings()
    assert not any("PostgreSQL" in p for p in box.orthanc_configuration()["Plugins"])
