"""``drimbox demo``: a two-box DRIM-M network on this machine and the source role played end to end.

box-a (the source) receives a study by C-STORE and its report over MLLP, builds the manifest and registers it
in the DMP simulator; box-b (a peer) then retrieves a series from box-a's WADO-RS with a Pro Santé Connect
token, the manifest UID and its own organisation certificate (whose DN the signed whitelist names as an operator
DN); the same request with a forged token gets 401, and without a client certificate 403. Then box-a publishes
the exams of three more patients (several modalities, dates and regions each; one with a key image note, one
withdrawn after publication), the site's RIS registers each exam's report in the DMP, and the demo prints
box-b's test launch page, prefilled for each patient: posting it is the appel contextuel a RIS would send
(drimbox.cli.demo_consumer). Everything stays up
afterwards for clicking.
"""

from __future__ import annotations

import signal
import tempfile
import threading
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="two boxes, the simulators, and the source scenario end to end")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where everything is written (default: a new temporary directory)")
    parser.add_argument("--no-wait", action="store_true", help="stop everything once the scenario has run")
    parser.add_argument("--free-ports", action="store_true", help="use free loopback ports instead of the fixed ones")
    parser.set_defaults(func=run)


def run(args) -> int:
    from drimbox.cli.demo_consumer import prepare_consumer_scenario
    from drimbox.launcher.network import LocalNetwork
    from drimbox.launcher.ports import BoxPorts, SimulatorPorts

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="drimbox-demo-"))
    if args.free_ports:
        ports = {"box-a": BoxPorts.free(), "box-b": BoxPorts.free()}
        sim_ports = SimulatorPorts.free()
    else:
        ports = {"box-a": BoxPorts.shifted(1000), "box-b": BoxPorts.shifted(1100)}
        sim_ports = SimulatorPorts()
    network = LocalNetwork(data_dir, box_names=("box-a", "box-b"), stable_age=2, box_ports=ports,
                           sim_ports=sim_ports)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"Starting a two-box network in {data_dir} ...", flush=True)
    network.start()
    try:
        print(network.describe(), "\n", flush=True)
        ok = play_source_scenario(network, data_dir)
        ok = prepare_consumer_scenario(network, data_dir, step) and ok
        if not args.no_wait:
            print("\nEverything is still running: Ctrl-C stops it.", flush=True)
            stop.wait()
        return 0 if ok else 1
    finally:
        network.stop()


def step(text: str) -> None:
    print(f"-> {text}", flush=True)


def play_source_scenario(network, data_dir: Path) -> bool:
    import requests

    from drimbox.reports.ack import read_ack
    from drimbox.reports.mllp import send_message
    from drimbox.samples.reports import make_cda, make_oru
    from drimbox.testing import BoxClient, demo_order, demo_study, store_scu

    source, peer = network.boxes["box-a"], network.boxes["box-b"]
    operator = BoxClient(source)

    step("box-a receives a CT study by C-STORE (dcmtk storescu)")
    study = demo_study(data_dir / "demo-study")
    store_scu(source, data_dir / "demo-study")
    step("box-a receives the validated report (ORU^R01 over MLLP)")
    code, _, text = read_ack(send_message(source.bind, source.ports.hl7,
                                          make_oru(make_cda(studies=[demo_order(study.study_uid)]))))
    print(f"   ACK {code} {text}")
    step("box-a builds the KOS manifest and registers it in the DMP")
    status = operator.wait_study(
        study.study_uid, lambda s: any(p["state"] in ("done", "failed") for p in s["publications"]),
        timeout=60, what="the DMP publication")
    kos = status["kos"]
    print(f"   manifest {kos['kos_uid']}: {kos['series_count']} series, {kos['instance_count']} instances; "
          f"DMP {kos['dmp_status']} as {kos['dmp_entry_uuid']}")

    step("box-b retrieves a series from box-a (RAD-107 WADO-RS, PSC token, KOS UID, mutual TLS)")
    ca = network.pki["ca_bundle"]
    psc = requests.Session()
    psc.trust_env = False
    token = psc.post(network.psc_issuer + "/sim/tokens", json={"idNat": "810002000015"}, verify=ca,
                     timeout=10).json()["access_token"]
    series = next(iter(study.series))
    auth = network.pki["boxes"][peer.name]["auth"]
    retrieve = requests.Session()
    retrieve.trust_env = False
    retrieve.verify = ca
    retrieve.cert = (auth["cert"], auth["key"])  # box-b's organisation certificate, named by the whitelist
    series_url = f"{source.wado_rs_base}/studies/{study.study_uid}/series/{series.series_uid}"
    answer = retrieve.get(
        series_url, timeout=60,
        headers={"Authorization": f"Bearer {token}", "KOS-SOPInstanceUID": kos["kos_uid"],
                 "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    parts = answer.content.count(b"Content-Type: application/dicom")
    print(f"   HTTP {answer.status_code}, {parts} DICOM part(s), {len(answer.content)} bytes, "
          f"transfer syntax {answer.headers.get('X-Transfer-Syntax', '?')}")
    refused = retrieve.get(f"{source.wado_rs_base}/studies/{study.study_uid}", timeout=30,
                           headers={"Authorization": "Bearer forged", "KOS-SOPInstanceUID": kos["kos_uid"]})
    print(f"   with a forged token: HTTP {refused.status_code} {refused.json().get('error', '')}")
    anonymous = requests.Session()
    anonymous.trust_env = False
    unidentified = anonymous.get(series_url, verify=ca, timeout=30,
                                 headers={"Authorization": f"Bearer {token}", "KOS-SOPInstanceUID": kos["kos_uid"]})
    print(f"   without a client certificate: HTTP {unidentified.status_code} {unidentified.json().get('error', '')}")

    link = operator.get(f"/drimbox/studies/{study.study_uid}/viewer-link")
    if link.status_code == 200:
        step("the link to print in the report (opens the viewer after a PSC login)")
        print(f"   {link.json()['url']}")
    return (answer.status_code == 200 and refused.status_code == 401 and unidentified.status_code == 403
            and kos["dmp_status"] == "approved")
