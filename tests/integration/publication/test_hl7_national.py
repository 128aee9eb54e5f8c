"""Issue 7 end to end: the national HL7 messages through one running box, from MLLP to the DMP simulator.

One box and one simulator of its own for the module. What the DMP holds is read on the simulator's admin JSON
view (``/_sim/documents``), as an integrator would; every test uses its own studies.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "box"))

from source_helpers import mllp, new_study, order_for, report_for, store_scu, wait_for, wait_manifest  # noqa: E402

from drimbox.reports.ack import read_ack  # noqa: E402
from drimbox.reports.mllp import FrameReader, frame, send_message  # noqa: E402
from drimbox.reports.v2 import parse_er7  # noqa: E402
from drimbox.samples.reports import DEMO_ORGANIZATION, make_cda, make_mdm, make_omi_cancel, make_oru, new_uid  # noqa: E402
from support.dmp import APPROVED, DEPRECATED, DELETED, start_dmp_simulator
from drimbox.testing import BoxClient, demo_order, start_box  # noqa: E402

pytestmark = pytest.mark.integration

MAX_MESSAGE_BYTES = 200_000
PER_SOURCE = 4


@pytest.fixture(scope="module")
def sim(tmp_path_factory, pki):
    simulator = start_dmp_simulator(tmp_path_factory.mktemp("dmp-sim-hl7"), pki)
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def box(tmp_path_factory, pki, sim):
    instance = start_box(tmp_path_factory.mktemp("hl7-box"), pki=pki, dmp_url=sim.url,
                         settings={"Dmp": {"RetryInitialSeconds": 0.5, "RetryMaxSeconds": 2.0, "TimeoutSeconds": 3},
                                   "Publication": {"ChangesPollSeconds": 1.0},
                                   "Hl7": {"MaxMessageBytes": MAX_MESSAGE_BYTES, "MaxConnections": 16,
                                           "MaxConnectionsPerSource": PER_SOURCE, "IdleTimeoutSeconds": 30,
                                           "FrameDeadlineSeconds": 10}})
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def operator(box) -> BoxClient:
    return BoxClient(box)


@pytest.fixture(scope="module")
def dmp_view(sim, pki) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = pki["ca_bundle"]
    return session


# --- what the DMP simulator holds -------------------------------------------------------------------


def kos_documents(dmp_view, sim, study_uid: str) -> list[dict]:
    """The KOS entries of one study in the simulator's JSON view, oldest first."""
    response = dmp_view.get(f"{sim.url}/_sim/documents", timeout=10)
    assert response.status_code == 200, response.text
    return [d for d in response.json() if d["kind"] == "KOS" and any(study_uid in r for r in d["referenceIds"])]


def wait_entry(dmp_view, sim, study_uid: str, kos_uid: str, status: str, timeout: float = 30.0) -> dict:
    def found():
        return next((d for d in kos_documents(dmp_view, sim, study_uid)
                     if d["uniqueId"] == kos_uid and d["status"] == status), None)
    return wait_for(found, timeout=timeout, what=f"KOS {kos_uid} {status} in the DMP simulator")


def problems(operator: BoxClient) -> list[dict]:
    return operator.get("/drimbox/messages?problems=1&limit=100").json()


def ack_err(raw_ack: bytes) -> tuple[str, str, str]:
    """(MSA-1, ERR-3.1 error code, ERR-4 severity) of an ACK."""
    ack = parse_er7(raw_ack.decode())
    msa, err = ack.first("MSA"), ack.first("ERR")
    assert msa is not None and err is not None, raw_ack
    return msa.field(1), err.component(3, 1), err.field(4)


def send(box, message: bytes) -> bytes:
    return send_message("127.0.0.1", box.ports.hl7, message, timeout=30)


def national_msh(raw: bytes) -> bytes:
    """The MSH of the national test messages, template placeholders left in (MSH-3..6, MSH-7, MSH-10)."""
    first, _, rest = raw.partition(b"\r")
    assert first.startswith(b"MSH|")
    return (b"MSH|^~\\&|{{applicationSupplier}}|{{facilitySupplier}}|{{applicationReceiver}}|{{facilityReceiver}}|"
            b"{{dateMessage}}||ORU^R01^ORU_R01|{{idMessage}}|P|2.5|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\r"
            + rest)


# --- PRT-8, conflicts ----------------------------------------------------------------------------------


def test_national_message_with_another_prt8_is_accepted_with_a_warning_and_published_as_the_cda_author(
        box, operator, sim, dmp_view, tmp_path):
    content, folder = new_study(tmp_path, "n1", series=(("CT", 2),))
    store_scu(box, folder)
    sending = "1999999999"
    assert sending.removeprefix("1") != DEMO_ORGANIZATION.id.removeprefix("1")
    report_id = new_uid()
    raw_ack = send(box, national_msh(make_oru(report_for(content, report_id=report_id), sending_structure=sending)))
    code, error_code, severity = ack_err(raw_ack)
    text = read_ack(raw_ack)[2]
    assert (code, severity) == ("AA", "W"), text
    assert read_ack(raw_ack)[1] == "{{idMessage}}"
    assert sending in text and DEMO_ORGANIZATION.id in text

    kos = wait_manifest(operator, content.study_uid)["kos"]
    entry = wait_entry(dmp_view, sim, content.study_uid, kos["kos_uid"], APPROVED)
    assert entry["authorStructure"] == DEMO_ORGANIZATION.id
    (stored,) = [d for d in sim.store.all_documents() if d.unique_id == kos["kos_uid"]]
    assert f"IDNST^^^{DEMO_ORGANIZATION.id}".encode() in stored.xml
    assert sending.encode() not in stored.xml

    (listed,) = [m for m in problems(operator) if m["report_id"] == report_id]
    assert listed["ack_code"] == "AA" and listed["errors"] == [] and listed["control_id"] == "{{idMessage}}"
    assert any(sending in w and "PRT-8" in w for w in listed["warnings"])
    page = operator.get("/drimbox/ui")
    assert page.status_code == 200 and f'href="/drimbox/messages/{listed["id"]}"' in page.text
    assert "PRT-8" in page.text


def test_a_changed_cda_under_a_known_report_id_is_a_conflict_kept_for_the_operator(
        box, operator, sim, dmp_view, tmp_path):
    content, folder = new_study(tmp_path, "n2", series=(("CT", 2),))
    store_scu(box, folder)
    report_id = new_uid()
    assert mllp(box, make_oru(report_for(content, report_id=report_id)))[0] == "AA"
    kos = wait_manifest(operator, content.study_uid)["kos"]
    wait_entry(dmp_view, sim, content.study_uid, kos["kos_uid"], APPROVED)

    changed = report_for(content, report_id=report_id, body_text="Compte rendu modifie sans nouvel identifiant.")
    control_id = f"CONFLICT-{new_uid()[-12:]}"
    raw_ack = send(box, make_oru(changed, control_id=control_id))
    code, error_code, _ = ack_err(raw_ack)
    text = read_ack(raw_ack)[2]
    assert (code, error_code) == ("AE", "205"), text
    assert "conflict" in text and report_id in text

    (kept,) = [m for m in problems(operator) if m["control_id"] == control_id]
    assert kept["ack_code"] == "AE" and "conflict" in kept["errors"][0]
    raw = operator.get(f"/drimbox/messages/{kept['id']}?format=raw")
    assert raw.status_code == 200 and raw.content == make_oru(changed, control_id=control_id)
    # the first content stays the report, its manifest and its DMP entry are untouched
    stored = operator.get(f"/drimbox/reports/{report_id}?format=cda")
    assert stored.status_code == 200 and b"sans nouvel identifiant" not in stored.content
    time.sleep(2)  # a poll and a worker round: nothing must happen
    assert operator.study(content.study_uid)["kos"]["kos_uid"] == kos["kos_uid"]
    assert [(d["uniqueId"], d["status"]) for d in kos_documents(dmp_view, sim, content.study_uid)] == [
        (kos["kos_uid"], APPROVED)]


# --- MLLP limits on the box's listener -----------------------------------------------------------------


def connect(box, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", box.ports.hl7), timeout=10, source_address=(source, 0))


def read_frame(sock: socket.socket) -> bytes:
    reader = FrameReader()
    while True:
        data = sock.recv(65536)
        assert data, "the box closed the connection without answering"
        for kind, payload in reader.feed(data):
            if kind == "message":
                return payload


def closed_by_box(sock: socket.socket, within: float = 5.0) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def exchange(sock: socket.socket, message: bytes) -> tuple[str, str, str]:
    sock.sendall(frame(message))
    return read_ack(read_frame(sock))


def test_idle_connections_from_one_source_do_not_lock_out_another(box, operator, tmp_path):
    content, _ = new_study(tmp_path, "n3", series=(("CT", 1),))
    message = make_oru(report_for(content))
    idle = [connect(box, "127.0.0.1") for _ in range(PER_SOURCE)]
    try:
        with connect(box, "127.0.0.1") as extra:
            code, _, text = read_ack(read_frame(extra))
            assert code == "AR" and f"too many MLLP connections from 127.0.0.1 ({PER_SOURCE} open)" in text
            assert closed_by_box(extra)
        with connect(box, "127.0.0.2") as ris:
            code, _, text = exchange(ris, message)
            assert code == "AA", text
        assert any("127.0.0.1: too many MLLP connections" in m["ack_text"] for m in problems(operator))
    finally:
        for sock in idle:
            sock.close()

    def accepted_again():
        try:
            with connect(box, "127.0.0.1") as sock:
                return exchange(sock, message)[0] == "AA"
        except OSError:  # refused and closed while we were sending
            return False
    wait_for(accepted_again, timeout=10, what="the per-source limit to free once the idle connections close")


def test_a_frame_over_the_size_limit_gets_ar_then_close(box, operator):
    with connect(box, "127.0.0.1") as sock:
        try:
            sock.sendall(b"\x0bMSH|^~\\&|RIS|X|DRIMBOX|X|20240101||ORU^R01|BIG-1|P|2.5\r"
                         + b"A" * (MAX_MESSAGE_BYTES + 100_000))
        except (BrokenPipeError, ConnectionResetError):
            pass
        code, _, text = read_ack(read_frame(sock))
        assert code == "AR" and f"larger than {MAX_MESSAGE_BYTES} bytes" in text and "MaxMessageBytes" in text
        assert closed_by_box(sock)
    recorded = [m for m in problems(operator) if f"larger than {MAX_MESSAGE_BYTES} bytes" in m["ack_text"]]
    assert recorded and recorded[0]["channel"] == "mllp" and recorded[0]["ack_code"] == "AR"
    # the listener goes on serving
    with connect(box, "127.0.0.1") as sock:
        code, _, text = exchange(sock, make_oru(make_cda(report_id=new_uid(), studies=[demo_order(new_uid())])))
        assert code == "AA", text


# --- the national scenario ---------------------------------------------------------------------------------


def test_the_national_scenario_through_one_box(box, operator, sim, dmp_view, tmp_path):
    """A report for two studies; updates by ORU (RPLC only in the CDA, ORC NW) and by MDM^T10; withdrawals by
    ORC CA and by MDM^T04; an order cancelled by OMI^O23. Each gives its lot in the DMP: register, RPLC, deletion."""
    a, folder_a = new_study(tmp_path, "nat-a", accession="ACCNAT1", series=(("CT", 2),))
    b, folder_b = new_study(tmp_path, "nat-b", accession="ACCNAT2", series=(("MR", 1),))
    store_scu(box, folder_a)
    store_scu(box, folder_b)
    studies = (a, b)

    def cda(report_id: str, **kwargs) -> bytes:
        return make_cda(report_id=report_id, studies=[order_for(a, "ORDNAT1"), order_for(b, "ORDNAT2")],
                        modalities=("CT", "MR"), **kwargs)

    def sent(message: bytes) -> None:
        code, text = mllp(box, message)
        assert code == "AA", text

    def manifests(after: dict | None = None) -> dict:
        return {s.study_uid: wait_manifest(operator, s.study_uid, after=(after or {}).get(s.study_uid))["kos"]
                ["kos_uid"] for s in studies}

    def registered(kos: dict, replaced: dict | None = None) -> None:
        for study in studies:
            entry = wait_entry(dmp_view, sim, study.study_uid, kos[study.study_uid], APPROVED)
            entries = {d["uniqueId"]: d for d in kos_documents(dmp_view, sim, study.study_uid)}
            if replaced is None:
                assert entry["replaces"] is None
            else:
                old = entries[replaced[study.study_uid]]
                assert old["status"] == DEPRECATED and entry["replaces"] == old["entryUUID"]
            assert [d["uniqueId"] for d in entries.values() if d["status"] == APPROVED] == [kos[study.study_uid]]

    def deleted(kos: dict, which=studies) -> None:
        for study in which:
            wait_entry(dmp_view, sim, study.study_uid, kos[study.study_uid], DELETED)
            assert [d for d in kos_documents(dmp_view, sim, study.study_uid) if d["status"] == APPROVED] == []

    # a report for two studies (ORU^R01, ORC NW): one lot per study
    r1 = new_uid()
    first_message = make_oru(cda(r1))
    sent(first_message)
    kos1 = manifests()
    registered(kos1)

    # an update by ORU^R01 whose ORC-1 stays NW and whose CDA (version 2) replaces r1: RPLC lots
    r2 = new_uid()
    update = make_oru(cda(r2, replaces_report_id=r1, version=2), event="publish")
    assert b"ORC|NW" in update
    code, text = mllp(box, update)
    assert (code, text) == ("AA", ""), text
    assert [m["event"] for m in operator.get("/drimbox/messages?limit=20").json() if m["report_id"] == r2] == [
        "replace"]
    kos2 = manifests(after=kos1)
    registered(kos2, replaced=kos1)

    # an update by MDM^T10 (TXA-13 and the CDA's RPLC): RPLC lots again
    r3 = new_uid()
    sent(make_mdm(cda(r3, replaces_report_id=r2, version=3), trigger="T10"))
    kos3 = manifests(after=kos2)
    registered(kos3, replaced=kos2)

    # the RIS sends the first version again (a retransmission): nothing changes
    code, text = mllp(box, first_message)
    assert code == "AA" and "replaced by" in text, text

    # a withdrawal by ORU^R01 ORC CA: deletion of both entries (not a return of the first version)
    sent(make_oru(None, event="withdraw", report_id=r3))
    deleted(kos3)

    # a new report (MDM^T02) then its withdrawal by MDM^T04
    r4 = new_uid()
    sent(make_mdm(cda(r4), trigger="T02"))
    kos4 = manifests(after=kos3)
    registered(kos4)
    sent(make_mdm(None, trigger="T04", report_id=r4))
    deleted(kos4)

    # a new report, then one order cancelled by OMI^O23: only that study's entry is deleted
    r5 = new_uid()
    sent(make_oru(cda(r5)))
    kos5 = manifests(after=kos4)
    registered(kos5)
    sent(make_omi_cancel(accession=a.accession, study_uid=a.study_uid, order="ORDNAT1"))
    deleted(kos5, which=(a,))
    assert [d["uniqueId"] for d in kos_documents(dmp_view, sim, b.study_uid) if d["status"] == APPROVED] == [
        kos5[b.study_uid]]
    assert {d["status"] for d in kos_documents(dmp_view, sim, a.study_uid)} == {DEPRECATED, DELETED}
