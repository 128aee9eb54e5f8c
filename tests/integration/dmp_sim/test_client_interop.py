"""A lot rendered and sent by the box's own DMP client (drimbox.dmp.DmpClient) passes the strict simulator."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "dmp"))

from dmp_testdata import make_kos, make_report  # noqa: E402

from drimbox.config.sections import IdentitySettings  # noqa: E402
from drimbox.crypto.pki import create_test_pki  # noqa: E402
from drimbox.dmp.client import DmpClient  # noqa: E402
from drimbox.dmp.errors import DmpError  # noqa: E402
from drimbox.dmp.settings import DmpSettings  # noqa: E402
from drimbox.sim.dmp import DmpSimulator  # noqa: E402

pytestmark = pytest.mark.integration


def test_lot_from_drimbox_dmp_client_is_accepted(tmp_path):
    pki = create_test_pki(tmp_path / "pki", boxes=("box-a",))
    box = pki["boxes"]["box-a"]
    server = pki["servers"]["dmp-sim"]
    with DmpSimulator(str(tmp_path / "dmp"), tls_cert=server["fullchain"], tls_key=server["key"],
                      client_ca=pki["ca_bundle"], signing_ca=pki["root"]["cert"]) as sim:
        settings = DmpSettings(base_url=sim.url, client_cert=box["auth"]["fullchain"], client_key=box["auth"]["key"],
                               ca_bundle=pki["ca_bundle"], signing_cert=box["signing"]["fullchain"],
                               signing_key=box["signing"]["key"], timeout_seconds=10.0)
        base = make_report()
        report = dataclasses.replace(base, organization=dataclasses.replace(base.organization,
                                                                            id=box["structure_id"]))
        client = DmpClient(settings, IdentitySettings())
        try:
            published = client.publish(make_kos("1.2.826.0.1.3680043.8.498.77.9.1"), report, {"MASQUE_PS": True})
        finally:
            client.close()
        tls = {"cert": (box["auth"]["fullchain"], box["auth"]["key"]), "verify": pki["ca_bundle"], "timeout": 10}
        log = requests.get(f"{sim.url}/_sim/requests", **tls).json()
        documents = {d["uniqueId"]: d for d in requests.get(f"{sim.url}/_sim/documents", **tls).json()}
    assert [entry["verdict"] for entry in log] == ["success"], log
    kos = documents[published.unique_id]
    assert kos["entryUUID"] == published.entry_uuid
    assert kos["kind"] == "KOS" and kos["typeCode"] == "IMG-KOS^^1.2.250.1.213.1.1.4.12"
    assert ["MASQUE_PS", "1.2.250.1.213.1.1.4.13"] in kos["confidentialityCodes"]
    assert kos["authorStructure"] == box["structure_id"]
    assert documents[published.signature_unique_id]["kind"] == "SIGNATURE"


def test_box_signing_with_a_certificate_outside_the_trusted_pki_is_refused(tmp_path):
    pki = create_test_pki(tmp_path / "pki", boxes=("box-a",))
    other_pki = create_test_pki(tmp_path / "other-pki", boxes=("box-a",))
    box, foreign = pki["boxes"]["box-a"], other_pki["boxes"]["box-a"]
    server = pki["servers"]["dmp-sim"]
    with DmpSimulator(str(tmp_path / "dmp"), tls_cert=server["fullchain"], tls_key=server["key"],
                      client_ca=pki["ca_bundle"], signing_ca=pki["root"]["cert"]) as sim:
        # Mutual TLS is fine (the trusted PKI); the VIHF and DSG are signed under a root the DMP does not trust.
        settings = DmpSettings(base_url=sim.url, client_cert=box["auth"]["fullchain"], client_key=box["auth"]["key"],
                               ca_bundle=pki["ca_bundle"], signing_cert=foreign["signing"]["fullchain"],
                               signing_key=foreign["signing"]["key"], timeout_seconds=10.0)
        base = make_report()
        report = dataclasses.replace(base, organization=dataclasses.replace(base.organization,
                                                                            id=box["structure_id"]))
        client = DmpClient(settings, IdentitySettings())
        try:
            with pytest.raises(DmpError):
                client.publish(make_kos("1.2.826.0.1.3680043.8.498.77.9.2"), report, {})
        finally:
            client.close()
        tls = {"cert": (box["auth"]["fullchain"], box["auth"]["key"]), "verify": pki["ca_bundle"], "timeout": 10}
        log = requests.get(f"{sim.url}/_sim/requests", **tls).json()
        documents = requests.get(f"{sim.url}/_sim/documents", **tls).json()
    assert log and all(entry["verdict"] == "fault" for entry in log), log
    assert {error["code"] for entry in log for error in entry["errors"]} == {"wsse:FailedAuthentication"}
    assert all("does not chain" in error["context"] for entry in log for error in entry["errors"])
    assert documents == []
