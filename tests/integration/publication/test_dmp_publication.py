"""Issue 3 end to end: a real box publishes its manifests to the DMP simulator (mutual TLS, VIHF, ITI-41/57).

The module shares one box and one simulator of its own (so it may stop and restart it); every test uses its own
studies and looks only at the simulator documents of those studies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "box"))

from source_helpers import mllp, new_study, report_for, store_scu, wait_for, wait_manifest  # noqa: E402

from drimbox.reports.model import Organization  # noqa: E402
from drimbox.samples.reports import DEMO_ORGANIZATION, make_mdm, make_omi_cancel, make_oru, new_uid  # noqa: E402
from support.dmp import APPROVED, DEPRECATED, DELETED, kos_summaries, start_dmp_simulator
from drimbox.testing import BoxClient, demo_study, start_box  # noqa: E402

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def sim(tmp_path_factory, pki):
    simulator = start_dmp_simulator(tmp_path_factory.mktemp("dmp-sim-pub"), pki)
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def box(tmp_path_factory, pki, sim):
    instance = start_box(tmp_path_factory.mktemp("publishing-box"), pki=pki, dmp_url=sim.url,
                         settings={"Dmp": {"RetryInitialSeconds": 0.5, "RetryMaxSeconds": 2.0, "TimeoutSeconds": 3},
                                   "Publication": {"ChangesPollSeconds": 1.0}})
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def operator(box) -> BoxClient:
    return BoxClient(box)


@pytest.fixture(autouse=True)
def no_faults(sim):
    sim.faults.configure("none")
    yield
    sim.faults.configure("none")


# --- helpers --------------------------------------------------------------------------------------


def documents(sim, study_uid: str) -> list[dict]:
    return kos_summaries(sim, study_uid)


def by_unique_id(sim, study_uid: str) -> dict[str, dict]:
    return {d["uniqueId"]: d for d in documents(sim, study_uid)}


def wait_status(sim, study_uid: str, kos_uid: str, status: str, timeout: float = 20.0) -> dict:
    return wait_for(lambda: (lambda d: d if d and d["status"] == status else None)(
        by_unique_id(sim, study_uid).get(kos_uid)), timeout=timeout, what=f"KOS {kos_uid} {status} in the DMP")


def publications(operator, study_uid: str) -> list[dict]:
    return sorted(operator.get(f"/drimbox/publications?study={study_uid}").json(), key=lambda p: p["id"])


def wait_publication(operator, study_uid: str, kos_uid: str, action: str = "register", state: str = "done",
                     timeout: float = 20.0) -> dict:
    def found():
        for job in publications(operator, study_uid):
            if job["kos_uid"] == kos_uid and job["action"] == action and job["state"] == state:
                return job
        return None
    return wait_for(found, timeout=timeout, what=f"{action} publication of {kos_uid} {state}")


def approved(sim, study_uid: str) -> list[dict]:
    return [d for d in documents(sim, study_uid) if d["status"] == APPROVED]


def published_study(box, operator, sim, tmp_path, name: str, *, series=(("CT", 2),), report_id=None, **kwargs):
    """Store a study, send its report; returns (content, report id, manifest json) once Approved in the DMP."""
    content, folder = new_study(tmp_path, name, series=series)
    store_scu(box, folder)
    report_id = report_id or new_uid()
    code, text = mllp(box, make_oru(report_for(content, report_id=report_id), **kwargs))
    assert code == "AA", text
    kos = wait_manifest(operator, content.study_uid)["kos"]
    wait_status(sim, content.study_uid, kos["kos_uid"], APPROVED)
    return content, report_id, kos


# --- the nominal path -------------------------------------------------------------------------------


def test_kos_is_approved_in_the_dmp_within_seconds(box, operator, sim, tmp_path):
    content, folder = new_study(tmp_path, "p1")
    store_scu(box, folder)
    assert mllp(box, make_oru(report_for(content)))[0] == "AA"
    kos = wait_manifest(operator, content.study_uid)["kos"]
    seen = time.time()
    document = wait_status(sim, content.study_uid, kos["kos_uid"], APPROVED, timeout=5)
    assert time.time() - seen < 3
    assert document["patientId"] == "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
    assert document["mimeType"] == "application/dicom"
    assert document["typeCode"] == "IMG-KOS^^1.2.250.1.213.1.1.4.12"
    assert document["classCode"] == "31^^1.2.250.1.213.1.1.4.1"
    assert document["authorStructure"] == "1012355550"
    refs = document["referenceIds"]
    assert f"{content.study_uid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID" in refs
    assert "ACC0001^^^&1.2.250.1.999.1.2&ISO^urn:ihe:iti:xds:2013:accession" in refs
    assert "ORD0001^^^&1.2.250.1.999.1.3&ISO^urn:ihe:iti:xds:2013:order" in refs
    assert [c[0] for c in document["confidentialityCodes"]] == ["N"]
    job = wait_publication(operator, content.study_uid, kos["kos_uid"], timeout=5)
    assert job["dmp_entry_uuid"] == document["entryUUID"] and job["attempts"] == 1
    assert job["done_at"] - kos["created_at"] < 3
    manifest = operator.get(f"/drimbox/manifests/{kos['kos_uid']}?format=json").json()
    assert manifest["dmp_status"] == "approved" and manifest["dmp_entry_uuid"] == document["entryUUID"]
    assert len(documents(sim, content.study_uid)) == 1


def test_images_added_later_replace_the_entry(box, operator, sim, tmp_path):
    content, _, first = published_study(box, operator, sim, tmp_path, "p2")
    demo_study(tmp_path / "p2-more", study_uid=content.study_uid, accession=content.accession, series=(("CT", 2),))
    store_scu(box, tmp_path / "p2-more")
    second = wait_manifest(operator, content.study_uid, after=first["kos_uid"])["kos"]
    new = wait_status(sim, content.study_uid, second["kos_uid"], APPROVED)
    old = by_unique_id(sim, content.study_uid)[first["kos_uid"]]
    assert old["status"] == DEPRECATED
    assert new["replaces"] == old["entryUUID"]
    assert len(approved(sim, content.study_uid)) == 1
    job = wait_publication(operator, content.study_uid, second["kos_uid"])
    assert job["replaces_entry_uuid"] == old["entryUUID"]


def test_replacement_report_replaces_the_entry(box, operator, sim, tmp_path):
    content, first_id, first = published_study(box, operator, sim, tmp_path, "p3")
    cda = report_for(content, replaces_report_id=first_id, version=2)
    code, text = mllp(box, make_mdm(cda, trigger="T10"))
    assert code == "AA", text
    second = wait_manifest(operator, content.study_uid, after=first["kos_uid"])["kos"]
    wait_status(sim, content.study_uid, second["kos_uid"], APPROVED)
    assert by_unique_id(sim, content.study_uid)[first["kos_uid"]]["status"] == DEPRECATED
    assert len(approved(sim, content.study_uid)) == 1


@pytest.mark.parametrize("how", ["oru_ca", "mdm_t04", "omi_cancel"])
def test_withdrawal_and_cancellation_delete_the_entry(box, operator, sim, tmp_path, how):
    content, report_id, kos = published_study(box, operator, sim, tmp_path, f"p4-{how}")
    if how == "oru_ca":
        message = make_oru(None, event="withdraw", report_id=report_id)
    elif how == "mdm_t04":
        message = make_mdm(None, trigger="T04", report_id=report_id)
    else:
        message = make_omi_cancel(accession=content.accession, study_uid=content.study_uid)
    code, text = mllp(box, message)
    assert code == "AA", text
    wait_status(sim, content.study_uid, kos["kos_uid"], DELETED)
    job = wait_publication(operator, content.study_uid, kos["kos_uid"], action="delete")
    assert job["dmp_entry_uuid"] == by_unique_id(sim, content.study_uid)[kos["kos_uid"]]["entryUUID"]
    assert approved(sim, content.study_uid) == []
    assert operator.study(content.study_uid)["manifests"][-1]["dmp_status"] == "deleted"


def test_destdmp_n_sends_nothing(box, operator, sim, tmp_path):
    content, folder = new_study(tmp_path, "p5")
    store_scu(box, folder)
    assert mllp(box, make_oru(report_for(content), flags={"DESTDMP": False}))[0] == "AA"
    kos = wait_manifest(operator, content.study_uid)["kos"]
    jobs = wait_for(lambda: publications(operator, content.study_uid), what="a publication record")
    assert [(j["kos_uid"], j["state"]) for j in jobs] == [(kos["kos_uid"], "skipped")]
    assert "DESTDMP" in jobs[0]["last_error"]
    assert kos["dmp_status"] == "not_sent"
    time.sleep(1.5)
    assert documents(sim, content.study_uid) == []


def test_metadmpmss_flags_give_confidentiality_codes(box, operator, sim, tmp_path):
    content, _, kos = published_study(box, operator, sim, tmp_path, "p6",
                                      flags={"MASQUE_PS": True, "INVISIBLE_PATIENT": True,
                                             "INVISIBLE_REP_LEGAUX": True})
    document = by_unique_id(sim, content.study_uid)[kos["kos_uid"]]
    codes = {tuple(c) for c in document["confidentialityCodes"]}
    assert ("N", "2.16.840.1.113883.5.25") in codes
    assert {c for c, _ in codes} == {"N", "MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"}
    assert all(s == "1.2.250.1.213.1.1.4.13" for c, s in codes if c != "N")


# --- outages ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["http500", "drop"])
def test_outage_then_recovery_publishes_everything_once_in_order(box, operator, sim, tmp_path, mode):
    sim.faults.configure(mode)
    studies = []
    for n in range(3):
        content, folder = new_study(tmp_path, f"p7-{mode}-{n}")
        store_scu(box, folder)
        assert mllp(box, make_oru(report_for(content)))[0] == "AA"
        studies.append(content)
    firsts = [wait_manifest(operator, c.study_uid)["kos"] for c in studies]
    # one study gets more images during the outage: two manifests queued for it
    grown = studies[0]
    demo_study(tmp_path / f"p7-{mode}-more", study_uid=grown.study_uid, accession=grown.accession,
               series=(("CT", 1),))
    store_scu(box, tmp_path / f"p7-{mode}-more")
    second = wait_manifest(operator, grown.study_uid, after=firsts[0]["kos_uid"])["kos"]
    # the box keeps trying, says why, loses nothing
    wait_for(lambda: all(any(j["attempts"] >= 2 and j["state"] == "queued" and "unavailable" in j["last_error"]
                             for j in publications(operator, c.study_uid)) for c in studies),
             timeout=30, what="retries during the outage")
    assert all(documents(sim, c.study_uid) == [] for c in studies)
    sim.faults.configure("none")
    for content, kos in zip(studies, firsts, strict=True):
        wait_publication(operator, content.study_uid, kos["kos_uid"], timeout=30)
    wait_status(sim, grown.study_uid, second["kos_uid"], APPROVED, timeout=30)
    for content in studies:
        docs = documents(sim, content.study_uid)
        assert len(approved(sim, content.study_uid)) == 1
        assert len({d["uniqueId"] for d in docs}) == len(docs), "a KOS was registered twice"
    grown_docs = documents(sim, grown.study_uid)
    # in order: the first manifest was registered, then replaced by the second
    assert [d["uniqueId"] for d in grown_docs] == [firsts[0]["kos_uid"], second["kos_uid"]]
    assert grown_docs[0]["status"] == DEPRECATED and grown_docs[1]["replaces"] == grown_docs[0]["entryUUID"]
    # the DMP approved the second lot; the box records its answer a moment later
    wait_for(lambda: [j["state"] for j in publications(operator, grown.study_uid)] == ["done", "done"],
             timeout=30, what="both publications of the grown study done")


def test_lost_answer_is_not_registered_twice(box, operator, sim, tmp_path):
    """The DMP registers the lot but the answer comes after the box's timeout: the retry finds it."""
    content, folder = new_study(tmp_path, "p8")
    store_scu(box, folder)
    sim.faults.configure("slow", delay_seconds=5, count=1)
    assert mllp(box, make_oru(report_for(content)))[0] == "AA"
    kos = wait_manifest(operator, content.study_uid)["kos"]
    job = wait_publication(operator, content.study_uid, kos["kos_uid"], timeout=40)
    assert job["attempts"] >= 2
    docs = documents(sim, content.study_uid)
    assert len(docs) == 1 and docs[0]["status"] == APPROVED and docs[0]["entryUUID"] == job["dmp_entry_uuid"]


def test_publications_survive_an_orthanc_restart(box, operator, sim, tmp_path):
    # (DmpSimulator.stop() leaves kept-alive connections served, so the outage is a fault, not a stop)
    sim.faults.configure("http500")
    content, folder = new_study(tmp_path, "p9")
    store_scu(box, folder)
    assert mllp(box, make_oru(report_for(content)))[0] == "AA"
    kos = wait_manifest(operator, content.study_uid)["kos"]
    wait_for(lambda: any(j["attempts"] >= 1 and "unavailable" in j["last_error"]
                         for j in publications(operator, content.study_uid)), what="a failed attempt")
    box.restart_orthanc()
    sim.faults.configure("none")
    wait_status(sim, content.study_uid, kos["kos_uid"], APPROVED, timeout=30)
    assert len(documents(sim, content.study_uid)) == 1
    job = wait_publication(operator, content.study_uid, kos["kos_uid"])
    assert job["attempts"] >= 2


# --- refusals and the operator ----------------------------------------------------------------------------

OTHER_ORGANIZATION = Organization(id="1099999999", name="Autre centre", sector=DEMO_ORGANIZATION.sector,
                                  facility_type=DEMO_ORGANIZATION.facility_type)


def refused_publication(box, operator, sim, tmp_path, name):
    """A replacement report from another structure: the DMP refuses the RPLC (only the author may replace)."""
    content, first_id, first = published_study(box, operator, sim, tmp_path, name)
    cda = report_for(content, replaces_report_id=first_id, version=2, organization=OTHER_ORGANIZATION)
    code, text = mllp(box, make_oru(cda, event="replace"))
    assert code == "AA", text
    second = wait_manifest(operator, content.study_uid, after=first["kos_uid"])["kos"]
    job = wait_publication(operator, content.study_uid, second["kos_uid"], state="failed")
    return content, first, second, job


def test_a_refused_lot_is_failed_with_its_reason_and_not_retried(box, operator, sim, tmp_path):
    content, first, second, job = refused_publication(box, operator, sim, tmp_path, "p10")
    assert "refused by the DMP" in job["last_error"] and "author structure" in job["last_error"], job
    assert job["attempts"] == 1
    requests_before = len([r for r in list(sim.request_log) if r.get("action", "").endswith("RegisterDocumentSet-b")])
    time.sleep(3)  # several backoff periods: nothing happens
    again = operator.get(f"/drimbox/publications/{job['id']}").json()
    assert again["state"] == "failed" and again["attempts"] == 1
    assert len([r for r in list(sim.request_log)
                if r.get("action", "").endswith("RegisterDocumentSet-b")]) == requests_before
    # the previous entry stays the only Approved one
    assert [d["uniqueId"] for d in approved(sim, content.study_uid)] == [first["kos_uid"]]
    manifest = operator.get(f"/drimbox/manifests/{second['kos_uid']}?format=json").json()
    assert manifest["dmp_status"] == "rejected"
    failed = operator.get("/drimbox/status").json()["publications"]["failed"]
    assert failed >= 1


def test_operator_retry_and_cancel_over_rest(box, operator, sim, tmp_path):
    content, first, second, job = refused_publication(box, operator, sim, tmp_path, "p11")
    response = operator.post(f"/drimbox/publications/{job['id']}/retry")
    assert response.status_code == 202, response.text
    retried = wait_for(lambda: (lambda j: j if j["state"] == "failed" and j["attempts"] == 2 else None)(
        operator.get(f"/drimbox/publications/{job['id']}").json()), what="the retried job to fail again")
    assert "author structure" in retried["last_error"]
    response = operator.post(f"/drimbox/publications/{job['id']}/cancel")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert operator.post(f"/drimbox/publications/{job['id']}/cancel").status_code == 409
    done = publications(operator, content.study_uid)[0]
    assert done["state"] == "done"
    assert operator.post(f"/drimbox/publications/{done['id']}/retry").status_code == 409
    assert operator.post("/drimbox/publications/999999/retry").status_code == 404
    assert [d["uniqueId"] for d in approved(sim, content.study_uid)] == [first["kos_uid"]]


def drimbox_cli(*args: str) -> subprocess.CompletedProcess:
    """The installed console script (REQUESTS_CA_BUNDLE of the environment left in place on purpose)."""
    return subprocess.run([str(Path(sys.executable).parent / "drimbox"), "publications", *args],
                          capture_output=True, text=True, timeout=60)


def test_operator_cli(box, operator, sim, tmp_path):
    content, first, second, job = refused_publication(box, operator, sim, tmp_path, "p12")
    data = ["--data-dir", str(box.data_dir)]
    listed = drimbox_cli("list", "--json", *data)
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows[job["id"]]["state"] == "failed"

    human = drimbox_cli("list", "--state", "failed", *data)
    assert human.returncode == 0, human.stderr
    assert str(job["id"]) in human.stdout and "failed" in human.stdout and "author structure" in human.stdout

    shown = drimbox_cli("show", str(job["id"]), *data)
    assert shown.returncode == 0 and second["kos_uid"] in shown.stdout and "author structure" in shown.stdout
    shown_json = json.loads(drimbox_cli("show", str(job["id"]), "--json", *data).stdout)
    assert shown_json["id"] == job["id"] and shown_json["state"] == "failed"

    # explicit URL, user, password file and CA bundle
    password_file = tmp_path / "password"
    password_file.write_text(box.operator_password + "\n")
    explicit = ["--box-url", box.admin_url, "--user", "operator", "--password-file", str(password_file),
                "--ca-bundle", box.ca_bundle]
    retried = drimbox_cli("retry", str(job["id"]), *explicit)
    assert retried.returncode == 0, retried.stderr
    wait_for(lambda: operator.get(f"/drimbox/publications/{job['id']}").json()["attempts"] == 2
             and operator.get(f"/drimbox/publications/{job['id']}").json()["state"] == "failed",
             what="the job retried by the CLI")
    cancelled = drimbox_cli("cancel", str(job["id"]), *data)
    assert cancelled.returncode == 0, cancelled.stderr
    assert operator.get(f"/drimbox/publications/{job['id']}").json()["state"] == "cancelled"
    again = drimbox_cli("cancel", str(job["id"]), *data)
    assert again.returncode != 0 and "cancel" in again.stderr
    missing = drimbox_cli("show", "999999", *data)
    assert missing.returncode != 0 and "999999" in missing.stderr
    wrong = drimbox_cli("list", "--box-url", box.admin_url, "--password-file", str(tmp_path / "nope"),
                        "--ca-bundle", box.ca_bundle)
    assert wrong.returncode != 0 and "password" in wrong.stderr.lower()
