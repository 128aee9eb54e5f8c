"""Backup of a running box, then restore into the same box wiped: the study, its manifest and its DMP
publication are back, nothing is published again, and a peer retrieves the study with the same KOS."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "peer"))

from peer_helpers import NATIONAL_ACCEPT, PeerWorld, dicom_parts  # noqa: E402

from drimbox.launcher.ports import BoxPorts  # noqa: E402
from drimbox.samples.reports import make_cda, make_oru  # noqa: E402
from drimbox.samples.whitelist import make_demo_whitelist  # noqa: E402
from drimbox.sim.psc import PscSimulator  # noqa: E402
from drimbox.store import Store  # noqa: E402
from drimbox.testing import BoxClient, demo_order, demo_study, start_box, store_scu, wait_for  # noqa: E402

pytestmark = pytest.mark.integration

DRIMBOX = str(Path(sys.executable).parent / "drimbox")
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"


def _kos_documents(dmp_sim, study_uid: str) -> list[dict]:
    return [d for d in (x.summary() for x in dmp_sim.store.all_documents())
            if d["kind"] == "KOS" and any(study_uid in r for r in d["referenceIds"])]


@pytest.fixture
def world(tmp_path, pki, dmp_sim):
    psc_server = pki["servers"]["psc-sim"]
    psc = PscSimulator(tls_cert=psc_server["fullchain"], tls_key=psc_server["key"], host="127.0.0.1").start()
    ports = BoxPorts.free()
    secret = tmp_path / "psc-client-secret"
    secret.write_text("any-secret\n")
    whitelist = tmp_path / "whitelist.xml"
    whitelist.write_bytes(make_demo_whitelist(pki, {
        "box-a": {"db": f"localhost:{ports.db}", "vi": f"localhost:{ports.vi}"},
        "box-b": {"db": "box-b.example:443", "vi": "box-b-vi.example:443"}}))
    box = start_box(tmp_path / "box", pki=pki, ports=ports, psc_issuer=psc.issuer, whitelist=str(whitelist),
                    dmp_url=dmp_sim.url, settings={
                        "Psc": {"ClientSecretFile": str(secret), "ClientId": "drimbox-box-a"},
                        "Dmp": {"RetryInitialSeconds": 0.5, "RetryMaxSeconds": 2.0},
                        "Publication": {"ChangesPollSeconds": 1.0}})
    try:
        operator = BoxClient(box)
        study = demo_study(tmp_path / "study", series=(("CT", 3), ("MR", 2)))
        store_scu(box, tmp_path / "study")
        report = make_oru(make_cda(studies=[demo_order(study.study_uid)]))
        answer = operator.post("/drimbox/reports", data=report, headers={"Content-Type": "application/hl7-v2"})
        assert answer.status_code < 300, answer.text
        kos_uid = operator.wait_study(study.study_uid, lambda s: bool(s.get("kos")), timeout=90,
                                      what="a manifest")["kos"]["kos_uid"]
        wait_for(lambda: [d for d in _kos_documents(dmp_sim, study.study_uid) if d["status"] == APPROVED],
                 timeout=30, what="the KOS approved in the DMP")
        operator.wait_study(study.study_uid, lambda s: s["manifests"][-1]["dmp_status"] == "approved",
                            timeout=30, what="the publication recorded")
        yield PeerWorld(box=box, psc=psc, operator=operator, study=study, kos_uid=kos_uid, pki=pki,
                        study_dir=tmp_path / "study", tmp=tmp_path)
    finally:
        box.stop()
        psc.stop()


def _retrieve_series(world: PeerWorld, index: int) -> list:
    answer = world.session().get(world.wado + world.series_path(index),
                                 headers=world.headers(accept=NATIONAL_ACCEPT), timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    return dicom_parts(answer)


def _state(world: PeerWorld) -> dict:
    study = world.operator.study(world.study.study_uid)
    jobs = world.operator.get(f"/drimbox/publications?study={world.study.study_uid}").json()
    return {"state": study["state"], "kos": [(m["kos_uid"], m["version"], m["dmp_status"], m["dmp_entry_uuid"])
                                             for m in study["manifests"]],
            "publications": sorted((j["id"], j["action"], j["state"], j["dmp_entry_uuid"]) for j in jobs)}


def test_backup_of_a_running_box_restores_study_publication_and_peer_access(world, dmp_sim):
    box = world.box
    before = _state(world)
    assert before["kos"] and before["kos"][-1][2] == "approved", before
    documents = _kos_documents(dmp_sim, world.study.study_uid)
    sent = {tuple(sorted(p.file_meta.MediaStorageSOPInstanceUID for p in _retrieve_series(world, i)))
            for i in range(len(world.study.series))}

    # a study stored then deleted: the box's change log is now longer than the one a restore rebuilds
    gone = demo_study(world.tmp / "deleted", accession="ACC0003", series=(("CT", 12),))
    store_scu(box, world.tmp / "deleted")
    deleted = world.operator.post("/tools/lookup", data=gone.study_uid).json()[0]["ID"]
    assert world.operator.session.delete(box.admin_url + f"/studies/{deleted}", timeout=30).status_code == 200

    backup = world.tmp / "backup"
    result = subprocess.run([DRIMBOX, "backup", str(backup), "--data-dir", str(box.data_dir)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    instances = sum(len(s.instances) for s in world.study.series)
    assert f"the store and {instances} instances" in result.stdout

    box.stop()
    shutil.rmtree(box.data_dir / "orthanc")
    shutil.rmtree(box.data_dir / "state")
    result = subprocess.run([DRIMBOX, "restore", str(backup), "--data-dir", str(box.data_dir)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"{instances} instances (1 studies)" in result.stdout

    box.start()
    world.operator = BoxClient(box)
    # the follower's position is inside Orthanc's rebuilt change log (else it would skip the next changes)
    last = world.operator.get("/changes?last").json()["Last"]
    cursor = Store.open(f"sqlite:///{box.data_dir}/state/drimbox.db").get_fact("orthanc_changes_cursor", "0")
    assert int(cursor or 0) <= last, (cursor, last)
    after = world.operator.wait_study(world.study.study_uid, lambda s: s.get("state") == before["state"],
                                      timeout=60, what="the restored study")
    assert after["state"] == before["state"]
    assert _state(world) == before
    assert _kos_documents(dmp_sim, world.study.study_uid) == documents  # nothing published again
    restored = {tuple(sorted(p.file_meta.MediaStorageSOPInstanceUID for p in _retrieve_series(world, i)))
                for i in range(len(world.study.series))}
    assert restored == sent

    # the restored box follows Orthanc's new change log: a report, then its images, get their manifest
    later = demo_study(world.tmp / "later", accession="ACC0002")
    report = make_oru(make_cda(studies=[demo_order(later.study_uid, accession="ACC0002")]))
    answer = world.operator.post("/drimbox/reports", data=report, headers={"Content-Type": "application/hl7-v2"})
    assert answer.status_code < 300, answer.text
    store_scu(box, world.tmp / "later")
    world.operator.wait_study(later.study_uid, lambda s: bool(s.get("kos")), timeout=60, what="a manifest")


def test_restore_refuses_a_running_box_and_an_occupied_one(world):
    box = world.box
    backup = world.tmp / "backup"
    assert subprocess.run([DRIMBOX, "backup", str(backup), "--data-dir", str(box.data_dir)],
                          capture_output=True, timeout=300).returncode == 0
    again = subprocess.run([DRIMBOX, "backup", str(backup), "--data-dir", str(box.data_dir)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and "already exists" in again.stderr
    running = subprocess.run([DRIMBOX, "restore", str(backup), "--data-dir", str(box.data_dir)],
                             capture_output=True, text=True, timeout=60)
    assert running.returncode == 1 and "stop the box" in running.stderr
    box.stop()
    occupied = subprocess.run([DRIMBOX, "restore", str(backup), "--data-dir", str(box.data_dir)],
                              capture_output=True, text=True, timeout=60)
    assert occupied.returncode == 1 and "--force" in occupied.stderr
    (backup / "dicom").rename(world.tmp / "elsewhere")
    broken = subprocess.run([DRIMBOX, "restore", str(backup), "--data-dir", str(box.data_dir), "--force"],
                            capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1 and "the backup is incomplete" in broken.stderr
    assert (box.data_dir / "state" / "drimbox.db").exists()  # refused before anything was replaced
