"""Issue 10: two box nodes behind one nginx, sharing PostgreSQL (store and Orthanc's index) and the DICOM storage.

A burst of studies and reports arrives through both nodes, one study's series split between them; one node is
killed right after (SIGKILL: no clean shutdown). Every study ends with exactly one Approved manifest in the DMP
simulator, covering all its images, and requests through nginx keep working with at most one client retry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "box"))

from source_helpers import kos_of, new_study, referenced_sops, report_for, study_sops  # noqa: E402

from drimbox.launcher.box_instance import BoxInstance  # noqa: E402
from drimbox.reports.ack import read_ack  # noqa: E402
from drimbox.reports.mllp import send_message  # noqa: E402
from drimbox.samples.reports import make_oru  # noqa: E402
from drimbox.testing import BoxClient, storescu_proposal, wait_for  # noqa: E402

pytestmark = pytest.mark.integration

APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
STUDIES = 6


def store_to(box: BoxInstance, node: int, files: list[Path]) -> None:
    """C-STORE with dcmtk's storescu to one node's DICOM port."""
    argv = ["storescu", "-aet", box.sender_aet, "-aec", box.aet, *storescu_proposal(files[0]), "127.0.0.1",
            str(box.node(node).dicom), *map(str, files)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=dict(os.environ, TCP_NODELAY="1"))
    assert result.returncode == 0, result.stderr[-2000:]


def send_report(box: BoxInstance, node: int, message: bytes) -> str:
    code, _, text = read_ack(send_message("127.0.0.1", box.node(node).hl7, message, timeout=30))
    assert code == "AA", text
    return code


def approved_kos(sim, study_uid: str) -> list[dict]:
    return [d for d in (x.summary() for x in sim.store.all_documents())
            if d["kind"] == "KOS" and d["status"] == APPROVED and any(study_uid in r for r in d["referenceIds"])]


def get_with_one_retry(session: requests.Session, url: str) -> requests.Response:
    """A client that retries once on a failed request (what a peer's DICOMweb client does)."""
    try:
        response = session.get(url, timeout=10)
        if response.status_code < 500:
            return response
    except requests.ConnectionError:
        pass
    return session.get(url, timeout=10)


def test_burst_through_two_nodes_one_killed_publishes_each_study_once(two_nodes, dmp_sim, tmp_path):
    box = two_nodes
    operator = BoxClient(box)
    contents = []
    for i in range(STUDIES):
        content, folder = new_study(tmp_path, f"s{i}", series=(("CT", 2),))
        store_to(box, i % 2, sorted(folder.glob("*.dcm")))
        contents.append((content, i % 2))
    split, folder = new_study(tmp_path, "split", series=(("CT", 2), ("CT", 2)))
    store_to(box, 0, sorted(folder.glob("001_*.dcm")))
    store_to(box, 1, sorted(folder.glob("002_*.dcm")))
    contents.append((split, 1))

    for content, node in contents:
        send_report(box, node, make_oru(report_for(content)))
    box.kill_node(1)  # its reports and images are acknowledged; its publications may be in flight

    peer = requests.Session()
    peer.trust_env = False
    peer.verify = box.ca_bundle
    for _ in range(20):  # nginx sends each request to the surviving node, at worst after one failed try
        assert get_with_one_retry(operator.session, box.admin_url + "/drimbox/status").status_code == 200
        health = get_with_one_retry(peer, box.wado_rs_base)  # the peers' entry (its public health check)
        assert health.status_code == 200 and health.json()["status"] in ("ok", "degraded")
        time.sleep(0.1)

    for content, _ in contents:
        wait_for(lambda c=content: approved_kos(dmp_sim, c.study_uid), timeout=150,
                 what=f"an Approved manifest of {content.study_uid} in the DMP")
    time.sleep(3)  # a second, late registration would show now
    for content, _ in contents:
        approved = approved_kos(dmp_sim, content.study_uid)
        assert len(approved) == 1, (content.study_uid, approved)
        kos = kos_of(operator, content.study_uid)
        assert approved[0]["uniqueId"] == str(kos.SOPInstanceUID)
        assert referenced_sops(kos) == study_sops(content)
        state = operator.study(content.study_uid)
        registered = [p for p in state["publications"] if p["action"] == "register" and p["state"] == "done"]
        assert [p["kos_uid"] for p in registered][-1] == str(kos.SOPInstanceUID)


def test_a_registration_in_flight_on_a_killed_node_is_not_sent_twice(two_nodes, dmp_sim, tmp_path):
    """The node dies while the DMP is registering its lot: the other node takes the job over when the lease
    ends, finds the lot already registered and records it; the DMP holds it once."""
    box = two_nodes
    operator = BoxClient(box)
    content, folder = new_study(tmp_path, "in-flight", series=(("CT", 2),))
    store_to(box, 1, sorted(folder.glob("*.dcm")))
    dmp_sim.faults.configure("slow", delay_seconds=2.5, count=1)  # under the box's DMP timeout
    try:
        send_report(box, 1, make_oru(report_for(content)))

        def claimed() -> dict | None:
            jobs = operator.study(content.study_uid).get("publications", [])
            return next((j for j in jobs if j["action"] == "register" and j.get("claimed_by")), None)

        job = wait_for(claimed, timeout=60, interval=0.05, what="a node claiming the registration")
        pid = int(job["claimed_by"].split(":")[1])
        node = next(n for n, process in enumerate(box.orthancs) if process.process.pid == pid)
        wait_for(lambda: dmp_sim.faults.state()["count"] == 0, timeout=30, interval=0.02,
                 what="the registration reaching the DMP")
        time.sleep(0.5)  # its body read, the DMP is waiting its 2.5 s
        box.kill_node(node)  # the lot gets registered, the node never hears of it
        killed_at = time.monotonic()
    finally:
        dmp_sim.faults.configure("none")

    wait_for(lambda: approved_kos(dmp_sim, content.study_uid), timeout=30, what="the lot Approved in the DMP")
    done = wait_for(lambda: next((j for j in operator.study(content.study_uid)["publications"]
                                  if j["action"] == "register" and j["state"] == "done"), None),
                    timeout=120, what="the surviving node recording the registration")
    assert time.monotonic() - killed_at < 50  # the lease lapsed without the dead node's heartbeat
    assert done["attempts"] == 2 and done["id"] == job["id"]
    documents = [d for d in (x.summary() for x in dmp_sim.store.all_documents())
                 if d["kind"] == "KOS" and any(content.study_uid in r for r in d["referenceIds"])]
    assert len(documents) == 1 and documents[0]["status"] == APPROVED
    assert documents[0]["entryUUID"] == done["dmp_entry_uuid"]
