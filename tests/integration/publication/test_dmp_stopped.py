"""The DMP goes away for real (its process stops, connections cut) while studies are published, then comes back
on the same address with the same registry: every manifest ends Approved exactly once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "box"))

from source_helpers import mllp, new_study, report_for, store_scu, wait_for, wait_manifest  # noqa: E402

from drimbox.launcher.ports import free_port  # noqa: E402
from drimbox.samples.reports import make_oru  # noqa: E402
from drimbox.sim.dmp.server import DmpSimulator  # noqa: E402
from drimbox.testing import BoxClient, start_box  # noqa: E402

pytestmark = pytest.mark.integration
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"


def simulator(data_dir: Path, port: int, pki) -> DmpSimulator:
    server = pki["servers"]["dmp-sim"]
    return DmpSimulator(str(data_dir), port=port, tls_cert=server["fullchain"], tls_key=server["key"],
                        client_ca=pki["ca_bundle"], signing_ca=pki["ca_bundle"]).start()


def dmp_status(operator: BoxClient, study_uid: str) -> str:
    return (operator.study(study_uid).get("kos") or {}).get("dmp_status", "")


def test_publications_wait_for_a_stopped_dmp_and_all_land_once(tmp_path, pki):
    port = free_port()
    sim = simulator(tmp_path / "dmp", port, pki)
    box = start_box(tmp_path / "box", pki=pki, dmp_url=sim.url,
                    settings={"Dmp": {"RetryInitialSeconds": 0.5, "RetryMaxSeconds": 2.0, "TimeoutSeconds": 3},
                              "Publication": {"ChangesPollSeconds": 1.0}})
    operator = BoxClient(box)
    try:
        # a first publication warms the box's kept-alive connections to the DMP
        first, folder = new_study(tmp_path, "before")
        store_scu(box, folder)
        assert mllp(box, make_oru(report_for(first)))[0] == "AA"
        wait_for(lambda: dmp_status(operator, first.study_uid) == "approved", timeout=30,
                 what="the first publication")
        sim.stop()

        during = []
        for n in range(3):
            content, folder = new_study(tmp_path, f"during-{n}")
            store_scu(box, folder)
            assert mllp(box, make_oru(report_for(content)))[0] == "AA"
            during.append((content, wait_manifest(operator, content.study_uid)["kos"]["kos_uid"]))
        wait_for(lambda: all(any(j["state"] == "queued" and j["attempts"] >= 2 and "unavailable" in j["last_error"]
                                 for j in operator.study(c.study_uid)["publications"]) for c, _ in during),
                 timeout=40, what="retries while the DMP is stopped")

        sim = simulator(tmp_path / "dmp", port, pki)  # same address, same registry
        for content, _kos_uid in during:
            wait_for(lambda c=content: dmp_status(operator, c.study_uid) == "approved", timeout=40,
                     what=f"{content.study_uid} Approved after the DMP came back")
        documents = [d.summary() for d in sim.store.all_documents() if d.summary()["kind"] == "KOS"]
        registered = [d["uniqueId"] for d in documents]
        first_kos = operator.study(first.study_uid)["kos"]["kos_uid"]
        assert sorted(registered) == sorted([kos for _, kos in during] + [first_kos])
        assert all(d["status"] == APPROVED for d in documents)
        assert len(set(registered)) == len(registered), "a manifest was registered twice"
    finally:
        box.stop()
        sim.stop()
