"""Peer WADO-RS through the DRIMbox (nginx TLS + access decision + Orthanc DICOMweb) against Orthanc's own
DICOMweb on loopback, on the national performance study (1,300 CT 512x512 JPEG-LS lossless, about 200 MB).

Run: .venv/bin/python bench/peer_wado.py [--cache DIR] [--images N] [--repeat N] [--seconds S]

It generates the study once (cached under --cache), starts a PSC simulator and a box, stores the study,
publishes a manifest, mints a PSC token, starts a second bare Orthanc (DICOMweb plugin only) holding the same
files, then measures, in the same run:
- a series retrieve, once with ``transfer-syntax=*`` and once with the national validator's ten-item Accept:
  time to the first complete part, total time, throughput, against the same request to the bare Orthanc;
- authorised instance requests per second through the peer endpoint (1 and 4 concurrent clients);
- the access decision's own p50/p95 as the box measured it (operator health details, ``access_decision_ms``).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from drimbox.launcher.ports import free_port
from drimbox.launcher.processes import ManagedProcess, wait_for_port
from drimbox.samples.reports import make_cda, make_oru
from drimbox.samples.whitelist import make_demo_whitelist
from drimbox.sim.psc import PscSimulator
from drimbox.testing import ANY_SYNTAX, NATIONAL_ACCEPT, BoxClient, demo_order, demo_study, start_box, wait_for

RADIOLOGIST = "810002000015"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the study ---------------------------------------------------------------------------------------------


def cached_study(cache: Path, images: int) -> dict:
    folder = cache / f"peer-ct-{images}-jpegls"
    index = folder / "study.json"
    if index.exists():
        return json.loads(index.read_text())
    if folder.exists():
        shutil.rmtree(folder)
    log(f"generating {images} CT 512x512 JPEG-LS images under {folder} (once)")
    started = time.perf_counter()
    content = demo_study(folder / "files", series=(("CT", images),), rows=512, cols=512, jpegls=True)
    files = sorted(str(p) for p in (folder / "files").rglob("*.dcm"))
    size = sum(os.path.getsize(p) for p in files)
    series = content.series[0]
    data = {"study_uid": content.study_uid, "series_uid": series.series_uid, "files": files, "bytes": size,
            "instances": [i.sop_instance_uid for i in series.instances]}
    index.write_text(json.dumps(data))
    log(f"generated in {time.perf_counter() - started:.0f} s, {size / 1e6:.0f} MB")
    return data


def upload(base: str, files: list[str], session_factory, threads: int = 4) -> None:
    local = threading.local()

    def send(path: str) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = session_factory()
        with open(path, "rb") as handle:
            data = handle.read()
        for _attempt in range(5):
            # nginx may reuse an upstream connection Orthanc just closed (its keep-alive is 1 s) and does not
            # retry a POST on its own: 502, retried here.
            response = session.post(base + "/instances", data=data, headers={"Content-Type": "application/dicom"},
                                    timeout=120)
            if response.status_code != 502:
                break
            time.sleep(0.2)
        response.raise_for_status()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, files))


# --- a bare Orthanc with DICOMweb only ----------------------------------------------------------------------


def start_bare_orthanc(folder: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "bare", "HttpPort": port, "DicomPort": free_port(), "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "HttpCompressionEnabled": False, "KeepAlive": True, "TcpNoDelay": True,
        "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
        "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    process = ManagedProcess("bare Orthanc", ["/usr/sbin/Orthanc", str(folder / "orthanc.json")],
                             log_path=folder / "orthanc.log")
    process.start()
    process.wait_until(lambda: wait_for_port("127.0.0.1", port), 60, "listening")
    return process, f"http://127.0.0.1:{port}"


# --- measuring -------------------------------------------------------------------------------------------


def plain_session(verify=True, cert: tuple[str, str] | None = None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = verify
    session.cert = cert
    return session


def retrieve(session: requests.Session, url: str, headers: dict) -> dict:
    """One multipart retrieve, streamed: time to the first complete part, total time, bytes, parts."""
    started = time.perf_counter()
    first_part = None
    total = 0
    parts = 0
    with session.get(url, headers=headers, stream=True, timeout=600) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
        content_type = response.headers["Content-Type"]
        boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip('"')
        delimiter = b"--" + boundary.encode()
        tail = b""
        for chunk in response.iter_content(1 << 20):
            total += len(chunk)
            window = tail + chunk
            found = window.count(delimiter)
            parts += found
            if first_part is None and parts >= 2:  # the second delimiter closes the first part
                first_part = time.perf_counter() - started
            tail = window[-(len(delimiter) - 1):]
        syntax = response.headers.get("X-Transfer-Syntax", "")
    elapsed = time.perf_counter() - started
    return {"first_part": first_part or elapsed, "total": elapsed, "bytes": total, "parts": parts - 1,
            "syntax": syntax}


def median_run(runs: list[dict]) -> dict:
    out = dict(runs[0])
    for key in ("first_part", "total", "bytes"):
        out[key] = statistics.median(r[key] for r in runs)
    return out


def instance_rate(make_session, urls: list[str], headers: dict, seconds: float, clients: int) -> dict:
    stop = time.perf_counter() + seconds
    counts, latencies, errors = [], [], []

    def worker(offset: int) -> None:
        session = make_session()
        done = 0
        index = offset
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            response = session.get(urls[index % len(urls)], headers=headers, timeout=60)
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                errors.append((response.status_code, response.text[:200]))
            done += 1
            index += clients
        counts.append(done)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    if errors:
        log(f"{len(errors)} errors, e.g. {errors[0]}")
    return {"rate": sum(counts) / elapsed, "p50": latencies[len(latencies) // 2] * 1000,
            "p95": latencies[int(len(latencies) * 0.95)] * 1000, "errors": len(errors), "count": sum(counts)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="/tmp/drimbox-bench", help="where the generated study is kept")
    parser.add_argument("--images", type=int, default=1300)
    parser.add_argument("--repeat", type=int, default=3, help="retrieves per configuration (median reported)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each instance-rate run")
    parser.add_argument("--keep", action="store_true", help="keep the box's working directory")
    args = parser.parse_args()

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    study = cached_study(cache, args.images)
    work = Path(tempfile.mkdtemp(prefix="peer-wado-", dir=cache))
    from drimbox.crypto.pki import create_test_pki

    pki = create_test_pki(cache / "pki", hosts=("localhost", "127.0.0.1"), boxes=("box-a", "box-b"))
    psc_server = pki["servers"]["psc-sim"]
    psc = PscSimulator(tls_cert=psc_server["fullchain"], tls_key=psc_server["key"], token_lifetime=3600).start()
    (work / "psc-secret").write_text("bench-secret\n")
    # The peer presents box-b's organisation certificate, whose DN the whitelist names (PeerAccess default).
    whitelist = work / "whitelist.xml"
    whitelist.write_bytes(make_demo_whitelist(pki, {"box-a": {"db": "localhost:443", "vi": "localhost:443"},
                                                    "box-b": {"db": "box-b.example:443", "vi": "box-b.example:443"}}))
    peer_cert = (pki["boxes"]["box-b"]["auth"]["cert"], pki["boxes"]["box-b"]["auth"]["key"])
    box = bare = None
    try:
        log("starting the box and a bare Orthanc")
        box = start_box(work / "box", pki=pki, psc_issuer=psc.issuer, whitelist=str(whitelist),
                        settings={"Psc": {"ClientSecretFile": str(work / "psc-secret"), "ClientId": "drimbox-bench"}})
        bare, bare_url = start_bare_orthanc(work / "bare")
        operator = BoxClient(box)

        log(f"storing {len(study['files'])} files into both ({study['bytes'] / 1e6:.0f} MB each)")
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            to_box = pool.submit(upload, box.admin_url, study["files"], box.operator_session)
            to_bare = pool.submit(upload, bare_url, study["files"], plain_session)
            to_box.result()
            to_bare.result()
        log(f"stored in {time.perf_counter() - started:.0f} s")
        cda = make_cda(studies=[demo_order(study["study_uid"])])
        response = operator.post("/drimbox/reports", data=make_oru(cda), headers={"Content-Type": "application/hl7-v2"})
        response.raise_for_status()
        status = operator.wait_study(study["study_uid"], lambda s: bool(s.get("kos")), timeout=300, what="manifest")
        kos_uid = status["kos"]["kos_uid"]
        log(f"manifest {kos_uid} ({status['kos']['instance_count']} instances)")
        if status["kos"]["instance_count"] != len(study["instances"]):
            raise SystemExit(f"the manifest covers {status['kos']['instance_count']} instances, not "
                             f"{len(study['instances'])}")
        token = psc.mint_access_token(RADIOLOGIST)

        peer = plain_session(box.ca_bundle, peer_cert)
        wait_for(lambda: peer.get(box.wado_rs_base, timeout=10).json()["checks"]["whitelist"]["in_force"],
                 timeout=30, what="the whitelist in force")
        peer_headers = {"Authorization": f"Bearer {token}", "KOS-SOPInstanceUID": kos_uid}
        series_path = f"/studies/{study['study_uid']}/series/{study['series_uid']}"
        targets = {"peer (nginx TLS + decision)": (peer, box.wado_rs_base + series_path, peer_headers),
                   "bare Orthanc DICOMweb (loopback)": (plain_session(), bare_url + "/dicom-web" + series_path, {})}
        results: dict[tuple[str, str], dict] = {}
        for accept_name, accept in (("transfer-syntax=*", ANY_SYNTAX), ("national 10-item Accept", NATIONAL_ACCEPT)):
            for target, (session, url, headers) in targets.items():
                headers = dict(headers, Accept=accept)
                retrieve(session, url, headers)  # warm-up: page cache, caches, connections
                runs = [retrieve(session, url, headers) for _ in range(args.repeat)]
                results[(accept_name, target)] = run = median_run(runs)
                log(f"{accept_name:24} {target:34} {run['total']:.2f} s, {run['parts']} parts")

        instance_urls = [box.wado_rs_base + f"{series_path}/instances/{uid}" for uid in study["instances"]]
        bare_urls = [bare_url + f"/dicom-web{series_path}/instances/{uid}" for uid in study["instances"]]
        rates = {}
        decisions = {}
        for clients in (1, 4):
            rates[("peer", clients)] = instance_rate(lambda: plain_session(box.ca_bundle, peer_cert), instance_urls,
                                                     dict(peer_headers, Accept=ANY_SYNTAX), args.seconds, clients)
            decisions[clients] = box.operator_session().get(
                box.admin_url + "/drimbox/status/health", params={"window": args.seconds}, timeout=30).json()[
                "access_decision_ms"]
            rates[("bare", clients)] = instance_rate(plain_session, bare_urls, {"Accept": ANY_SYNTAX},
                                                     args.seconds, clients)
        print()
        print(f"Study: {len(study['instances'])} CT 512x512 JPEG-LS lossless, {study['bytes'] / 1e6:.0f} MB stored, "
              f"{os.cpu_count()} CPUs, median of {args.repeat} runs after a warm-up")
        print()
        header = f"{'Accept':24} {'endpoint':34} {'parts':>5} {'syntax sent':>24} {'1st part':>9} {'total':>8} " \
                 f"{'MB sent':>8} {'Mbit/s':>8}"
        print(header)
        print("-" * len(header))
        for (accept_name, target), run in results.items():
            mbits = run["bytes"] * 8 / run["total"] / 1e6
            print(f"{accept_name:24} {target:34} {run['parts']:>5} {run['syntax'] or '(Orthanc choice)':>24} "
                  f"{run['first_part'] * 1000:>7.0f}ms {run['total']:>7.2f}s {run['bytes'] / 1e6:>8.0f} {mbits:>8.0f}")
        print()
        for accept_name in ("transfer-syntax=*", "national 10-item Accept"):
            p = results[(accept_name, "peer (nginx TLS + decision)")]
            b = results[(accept_name, "bare Orthanc DICOMweb (loopback)")]
            print(f"{accept_name:24} peer/bare: total x{p['total'] / b['total']:.2f}, "
                  f"first part x{p['first_part'] / b['first_part']:.2f}")
        print()
        print(f"{'instance requests':24} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}")
        for (name, clients), rate in rates.items():
            label = "peer (authorised)" if name == "peer" else "bare Orthanc"
            print(f"{label:24} {clients:>7} {rate['rate']:>8.0f} {rate['p50']:>8.1f} {rate['p95']:>8.1f} "
                  f"{rate['errors']:>7}")
        print()
        for clients, decision in decisions.items():
            print(f"access decision inside the box, {clients} client(s), {decision.get('count', 0)} instance "
                  f"requests, cached token: p50 {decision.get('decision_p50')} ms, p95 {decision.get('decision_p95')}"
                  f" ms; whole authz answer with the audit row: p50 {decision.get('with_audit_p50')} ms, "
                  f"p95 {decision.get('with_audit_p95')} ms")
        return 0
    finally:
        if bare:
            bare.stop()
        if box:
            box.stop()
        psc.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
