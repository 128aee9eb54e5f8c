"""Two boxes: A publishes a patient's exam in the DMP; on B the appel contextuel lists it and opening it moves
its series from A into B's Orthanc (Orthanc's DICOMweb client, the professional's PSC token and the KOS UID),
then B's viewer session reaches that study and no other."""

from __future__ import annotations

import dataclasses
import time

import pytest
import requests

from drimbox.launcher.ports import BoxPorts
from drimbox.samples.reports import make_cda, make_oru
from drimbox.samples.whitelist import make_demo_whitelist
from drimbox.testing import BoxClient, demo_order, start_box, wait_for

from .conftest import PATIENT_1, RADIOLOGIST, browser, publish
from .test_appel_contextuel import give_reason, open_context

pytestmark = pytest.mark.integration

PATIENT_3 = dataclasses.replace(PATIENT_1, ins="279107512300377", ipp="IPPC0003", family="DEUX-BOITES",
                                given="JEANNE")


def whitelist_in_force(box) -> bool:
    session = requests.Session()
    session.trust_env = False
    answer = session.get(box.wado_rs_base, verify=box.ca_bundle, timeout=10)
    return answer.json().get("checks", {}).get("whitelist", {}).get("in_force", False)


@pytest.fixture(scope="module")
def network(tmp_path_factory, pki, dmp_sim, psc_sim):
    root = tmp_path_factory.mktemp("two-boxes")
    secret = root / "psc-secret"
    secret.write_text("any-secret\n")
    ports = {"box-a": BoxPorts.free(), "box-b": BoxPorts.free()}
    whitelist = root / "whitelist.xml"
    whitelist.write_bytes(make_demo_whitelist(pki, {name: {"db": f"localhost:{p.db}", "vi": f"localhost:{p.vi}"}
                                                    for name, p in ports.items()}))
    boxes = {}
    try:
        for name in ("box-a", "box-b"):
            boxes[name] = start_box(
                root / name, name=name, pki=pki, ports=ports[name], psc_issuer=psc_sim.issuer, dmp_url=dmp_sim.url,
                whitelist=str(whitelist), aet=name.upper().replace("-", ""),
                # A accepts only whitelisted callers' certificates: B's retrieval must present its own
                settings={"Psc": {"ClientId": f"drimbox-{name}", "ClientSecretFile": str(secret)},
                          "PeerAccess": {"RequireClientCertificate": name == "box-a"}})
        for box in boxes.values():
            wait_for(lambda b=box: whitelist_in_force(b), timeout=30, what="the whitelist in force")
        yield boxes
    finally:
        for box in boxes.values():
            box.stop()


def test_open_an_exam_published_by_another_box(network, tmp_path, psc_sim):
    a, b = network["box-a"], network["box-b"]
    exam = publish(a, BoxClient(a), tmp_path / "study", PATIENT_3, "ACCAB1", when="20240402")
    session = browser(b)
    context_url, page = open_context(session, b, PATIENT_3, RADIOLOGIST)
    history = give_reason(session, context_url, page)
    assert exam.kos_uid in history.text, history.text[:3000]

    exam_url = f"{context_url}/exams/{exam.kos_uid}"
    started = time.monotonic()
    first = session.get(exam_url, timeout=30)
    assert first.status_code == 200 and 'id="progress"' in first.text
    pages = []

    def retrieved():
        pages.append(session.get(exam_url, timeout=30))
        return "open-viewer" in pages[-1].text and "(1 série(s))." in pages[-1].text or pages[-1].status_code != 200

    wait_for(retrieved, timeout=60, what="the exam retrieved into box B")
    done = pages[-1]
    assert done.status_code == 200 and 'id="open-viewer"' in done.text, done.text
    print(f"exam retrieved into B in {time.monotonic() - started:.2f} s")

    # the study is in B's Orthanc, marked foreign and cached; the operator sees it
    operator_b = BoxClient(b)
    cache = operator_b.get("/drimbox/consumer/cache").json()
    entry = next(e for e in cache if e["study_uid"] == exam.study_uid)
    assert entry["state"] == "cached" and entry["kos_uid"] == exam.kos_uid and entry["patient_ins"] == PATIENT_3.ins
    assert entry["source_host"] == f"localhost:{a.ports.db}" and entry["expires_at"] > time.time()
    # the viewer session B set reaches that study through B's vi host, and nothing else
    uid = exam.study_uid
    series = session.get(b.vi_url + f"/dicom-web/studies/{uid}/series", timeout=30,
                         headers={"Accept": "application/dicom+json"})
    assert series.status_code == 200 and len(series.json()) == 1
    assert session.get(b.vi_url + "/dicom-web/studies", timeout=30).status_code == 403
    assert browser(b).get(b.vi_url + f"/dicom-web/studies/{uid}/series", timeout=30).status_code == 401
    # a foreign study is never served to B's own peers
    peer = requests.Session()
    peer.trust_env = False
    peer.verify = b.ca_bundle
    peer.cert = (b.pki["boxes"]["box-a"]["auth"]["cert"], b.pki["boxes"]["box-a"]["auth"]["key"])
    relayed = peer.get(b.wado_rs_base + f"/studies/{uid}", timeout=30, headers={
        "Authorization": f"Bearer {psc_sim.mint_access_token(RADIOLOGIST)}", "KOS-SOPInstanceUID": exam.kos_uid,
        "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    assert relayed.status_code == 404
    # nor published by B, even when B's RIS sends a report naming it
    cda = make_cda(patient=PATIENT_3, studies=[demo_order(uid, accession="ACCAB1", order="ORD-ACCAB1")])
    assert operator_b.post("/drimbox/reports", data=make_oru(cda, patient=PATIENT_3),
                           headers={"Content-Type": "application/hl7-v2"}).status_code < 300
    status = operator_b.wait_study(uid, lambda s: s["state"] == "foreign" and s["reports"], what="foreign state")
    time.sleep(3)  # past StableAge: a manifest would have been built by now
    assert operator_b.study(uid)["kos"] is None and status["publications"] == []
    # A saw B's professional token and KOS: its audit names the retrieval of each series
    served = [e for e in BoxClient(a).get(f"/drimbox/audit?study={uid}").json() if e["outcome_status"] == 200]
    assert served and all(e["professional_id"] == RADIOLOGIST and "box-b" in e["caller_dn"] for e in served), served
    # B's audit: the consultation, with the source, the patient and the bytes
    opened = [e for e in operator_b.get(f"/drimbox/audit?study={uid}").json() if e["action"] == "consumer-open-exam"]
    assert opened and opened[0]["outcome_status"] == 200 and opened[0]["patient_id"] == PATIENT_3.ins
    assert opened[0]["bytes_sent"] > 0 and f"localhost:{a.ports.db}" in opened[0]["reason"]
