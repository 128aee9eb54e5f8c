"""Fault injection, admin API, patients endpoint, TLS with client certificates, the CLI, throughput."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests
from lxml import etree

from drimbox.crypto.pki import cert_pem, issue_certificate, key_pem, make_name
from drimbox.sim.dmp import DmpSimulator

from dmp_sim_fixtures import HL7, INS, INS_OID, SUCCESS, DmpTestClient, build_lot, q, sub

pytestmark = pytest.mark.integration
PYTHON = sys.executable


def _faults(sim, **body):
    resp = requests.post(f"{sim.url}/_sim/faults", json=body, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_fault_modes(simulator, client):
    assert _faults(simulator, mode="http500", count=1) == {"mode": "http500", "delay_seconds": 0.0, "count": 1}
    answer = requests.post(f"{simulator.url}/repository", data=b"x", timeout=5)
    assert answer.status_code == 500
    assert client.submit(build_lot()).response_status() == SUCCESS  # count exhausted

    _faults(simulator, mode="soap_fault", count=1)
    faulted = client.submit(build_lot())
    assert faulted.status == 500
    assert "simulated" in faulted.fault_reason()
    assert faulted.root.findtext(".//{http://www.w3.org/2003/05/soap-envelope}Code/"
                                 "{http://www.w3.org/2003/05/soap-envelope}Value") == "soap:Receiver"

    _faults(simulator, mode="drop", count=1)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{simulator.url}/repository", data=b"x", timeout=5)

    _faults(simulator, mode="slow", delay_seconds=0.4, count=None)
    started = time.monotonic()
    assert client.submit(build_lot()).response_status() == SUCCESS
    assert client.submit(build_lot()).response_status() == SUCCESS
    assert time.monotonic() - started >= 0.8
    assert requests.get(f"{simulator.url}/_sim/faults", timeout=5).json()["count"] is None

    assert requests.post(f"{simulator.url}/_sim/reset", timeout=5).json() == {"reset": True}
    assert requests.get(f"{simulator.url}/_sim/faults", timeout=5).json()["mode"] == "none"
    assert client.documents() == []
    bad = requests.post(f"{simulator.url}/_sim/faults", json={"mode": "explode"}, timeout=5)
    assert bad.status_code == 400 and "explode" in bad.json()["error"]


def test_request_log_records_verdicts(simulator, client):
    lot = build_lot()
    lot.set_slot("DocumentKOS", "hash", "0" * 40)
    client.submit(lot)
    client.submit(build_lot())
    log = requests.get(f"{simulator.url}/_sim/requests", timeout=5).json()
    assert [e["verdict"] for e in log] == ["failure", "success"]
    assert log[0]["errors"][0]["code"] == "XDSNonIdenticalHash"
    assert log[1]["action"] == "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
    last = requests.get(f"{simulator.url}/_sim/requests?limit=1", timeout=5).json()
    assert [e["verdict"] for e in last] == ["success"]


def _patient_query(ins: str) -> etree._Element:
    root = etree.Element(q(HL7, "PRPA_IN201307UV02"), {"ITSVersion": "XML_1.0"}, nsmap={None: HL7})
    sub(root, HL7, "id", root="1.2.3", extension="msg1")
    act = sub(root, HL7, "controlActProcess", classCode="CACT", moodCode="EVN")
    sub(act, HL7, "reasonCode", code="TEST_EXST")
    query = sub(act, HL7, "queryByParameter")
    sub(query, HL7, "queryId", root="1.2.3", extension="q1")
    sub(sub(sub(query, HL7, "parameterList"), HL7, "patientIdentifier"), HL7, "value", root=INS_OID, extension=ins)
    return root


def test_patients_endpoint(simulator, client):
    answer = client.post("patients", "urn:hl7-org:v3:PRPA_IN201307UV02", _patient_query(INS), use_mtom=False)
    assert answer.status == 200
    assert etree.QName(answer.payload).localname == "PRPA_IN201308UV02"
    assert answer.payload.find(f".//{q(HL7, 'queryResponseCode')}").get("code") == "OK"
    requests.post(f"{simulator.url}/_sim/patients", json={"patientId": f"222222222222222^^^&{INS_OID}&ISO^NH",
                                                          "exists": False}, timeout=5)
    absent = client.post("patients", "urn:hl7-org:v3:PRPA_IN201307UV02", _patient_query("222222222222222"),
                         use_mtom=False)
    assert absent.payload.find(f".//{q(HL7, 'queryResponseCode')}").get("code") == "NF"


@pytest.fixture(scope="module")
def tls_files(pki, tmp_path_factory):
    out = tmp_path_factory.mktemp("dmp-tls")
    server = issue_certificate(pki.intermediate, make_name("dmp-sim"), profile="server", sans=["127.0.0.1",
                                                                                              "localhost"])
    box = issue_certificate(pki.intermediate, make_name("AUTH_CLI box", ou="499700367909006"), profile="client")
    files = {
        "server_cert": cert_pem(server.cert, pki.intermediate.cert), "server_key": key_pem(server.key),
        "ca": cert_pem(pki.root.cert, pki.intermediate.cert), "client_cert": cert_pem(box.cert),
        "client_key": key_pem(box.key), "root": cert_pem(pki.root.cert),
    }
    paths = {}
    for name, data in files.items():
        (out / f"{name}.pem").write_bytes(data)
        paths[name] = str(out / f"{name}.pem")
    return paths


def test_tls_requires_client_certificate(tmp_path, tls_files, signing_ca_file, pki):
    with DmpSimulator(str(tmp_path / "tls"), tls_cert=tls_files["server_cert"], tls_key=tls_files["server_key"],
                      client_ca=tls_files["ca"], signing_ca=signing_ca_file) as sim:
        assert sim.url.startswith("https://")
        refused = requests.post(sim.repository_url, data=b"<x/>", verify=tls_files["ca"], timeout=5)
        assert refused.status_code == 403 and "client certificate" in refused.text
        # a person may read the admin views without a certificate
        assert requests.get(sim.url + "/_sim/documents", verify=tls_files["ca"], timeout=5).json() == []
        client = DmpTestClient(sim.url, pki.signer, cert=(tls_files["client_cert"], tls_files["client_key"]),
                               verify=tls_files["ca"])
        assert client.submit(build_lot()).response_status() == SUCCESS
        assert len(client.documents()) == 2


def test_cli_runs_until_sigterm(tmp_path):
    proc = subprocess.Popen([PYTHON, "-c", "import sys; from drimbox.cli import main; sys.exit(main())", "dmp-sim",
                             "--port", "0", "--json", "--data-dir", str(tmp_path / "cli")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert requests.get(info["url"], timeout=5).json()["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert os.path.exists(tmp_path / "cli" / "dmp-sim.sqlite")


def test_sustains_twenty_lots_per_second(client, pki):
    from dmp_sim_fixtures import build_vihf

    lots = [build_lot() for _ in range(60)]
    vihfs = [build_vihf(pki.signer) for _ in lots]
    failures: list[str] = []

    def worker(indexes):
        session_client = DmpTestClient(client.base_url, pki.signer)
        for i in indexes:
            answer = session_client.submit(lots[i], vihf=vihfs[i])
            if answer.response_status() != SUCCESS:
                failures.append(str(answer.errors() or answer.fault_reason()))

    threads = [threading.Thread(target=worker, args=(range(k, len(lots), 4),)) for k in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert not failures, failures[:3]
    assert len(lots) / elapsed >= 20, f"{len(lots) / elapsed:.1f} lots/s"
