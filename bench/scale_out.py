"""Bench the box on SQLite, on PostgreSQL, and as two nodes on PostgreSQL: publication and peer WADO-RS.

For each configuration, in the same run (a fresh box, DMP simulator process and PSC simulator each time):
1. N small studies (--images per study, 128x128) are stored (for two nodes: half through each node's DICOM
   port) and the bench waits until the box saw every one stable.
2. Publication: the N reports sent back to back over MLLP (for two nodes: one connection per node). Lots per
   second = N / (last Approved - first both-present), p95 of the delay both-present -> Approved (as in
   publication_burst.py), and Orthanc's CPU seconds per lot, per node.
3. Peer WADO-RS: authorised instance requests through the db entry (nginx TLS with the whitelisted client
   certificate, PSC token, KOS header) from --clients clients for --seconds: requests/s, MB/s, p95, and Orthanc's
   CPU seconds per GB served, per node (nginx's CPU apart). Then the same for series requests (what a consumer
   box asks: one request per series of the KOS), which weigh the bytes moved more than the per-request work.
Ratios: PostgreSQL one node / SQLite, two nodes / one node on PostgreSQL.
Targets (issue 10): two nodes at least as fast as one; one node on PostgreSQL within 15% of SQLite.
Run: .venv/bin/python bench/scale_out.py [-n 20] [--images 8] [--seconds 8] [--clients 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import _common as c
import publication_burst as pb

RADIOLOGIST = "810002000015"
CONFIGS = (("sqlite, 1 node", None, 1), ("postgresql, 1 node", "pg", 1), ("postgresql, 2 nodes", "pg", 2))
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def node_cpu(box) -> list[float]:
    return [cpu_seconds(p.process.pid) for p in box.orthancs]


def transactions(postgres, databases: list[str]) -> list[int]:
    """Committed transactions so far per database (every autocommit statement counts one)."""
    import psycopg

    if postgres is None or not databases:
        return []
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as conn:
        rows = dict(conn.execute("SELECT datname, xact_commit FROM pg_stat_database").fetchall())
    return [int(rows.get(name, 0)) for name in databases]


def wado_rate(make_session, targets: list[tuple[str, dict]], seconds: float, clients: int) -> dict:
    stop = time.perf_counter() + seconds
    latencies: list[float] = []
    sizes: list[int] = []
    errors: list[tuple[int, str]] = []
    lock = threading.Lock()

    def worker(offset: int) -> None:
        session = make_session()
        index = offset
        while time.perf_counter() < stop:
            url, headers = targets[index % len(targets)]
            t0 = time.perf_counter()
            response = session.get(url, headers=headers, timeout=60)
            with lock:
                latencies.append(time.perf_counter() - t0)
                sizes.append(len(response.content))
                if response.status_code != 200:
                    errors.append((response.status_code, response.text[:200]))
            index += clients

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} peer requests failed, e.g. {errors[0]}")
    return {"rate": len(latencies) / elapsed, "mbs": sum(sizes) / elapsed / 1e6, "bytes": sum(sizes),
            "p95": c.percentile(latencies, 95) * 1000}


def run_config(label: str, engine: str | None, nodes: int, root: Path, pki: dict, whitelist: Path, psc, args,
               cleanup: c.Cleanup, postgres) -> dict:
    from drimbox.launcher.ports import BoxPorts, NodePorts
    from drimbox.reports.mllp import MllpConnection
    from drimbox.samples.reports import make_cda, make_oru
    from drimbox.testing import BoxClient, demo_order, demo_study, start_box

    slug = label.replace(",", "").replace(" ", "-")
    work = root / slug
    sim = cleanup.add(pb.DmpSimProcess(work / "dmp-sim", pki).start())
    extra: dict = {}
    databases: list[str] = []
    if engine == "pg":
        databases = [f"{slug.replace('-', '_')}_store", f"{slug.replace('-', '_')}_orthanc"]
        extra = {"store_url": postgres.create_database(databases[0]),
                 "orthanc_index_url": postgres.create_database(databases[1]),
                 "nodes": nodes, "node_ports": tuple(NodePorts.free() for _ in range(nodes - 1))}
    (work / "psc-secret").parent.mkdir(parents=True, exist_ok=True)
    (work / "psc-secret").write_text("bench-secret\n")
    box = cleanup.add(start_box(
        work / "box", pki=pki, dmp_url=sim.url, psc_issuer=psc.issuer, whitelist=str(whitelist),
        ports=BoxPorts.free(),
        settings={"Dmp": {"RetryInitialSeconds": 0.5, "RetryMaxSeconds": 2.0},
                  "Psc": {"ClientSecretFile": str(work / "psc-secret"), "ClientId": "drimbox-bench"}}, **extra))
    client = BoxClient(box)
    studies = []
    for n in range(args.studies):
        accession = f"ACCS{n:04d}"
        content = demo_study(work / "studies" / f"n{n % nodes}" / f"{n:04d}", accession=accession,
                             series=(("CT", args.images),), rows=128, cols=128)
        studies.append((content, accession))
    for node in range(nodes):
        c.storescu(box.aet, box.node(node).dicom, work / "studies" / f"n{node}",
                   sum(1 for i in range(args.studies) if i % nodes == node) * args.images)
    uids = {content.study_uid for content, _ in studies}
    c.wait_until(lambda: sum(1 for uid, r in pb.study_rows(client).items() if uid in uids and r["stable_at"])
                 == len(uids), 180, "every study stable in the box", interval=0.2)
    stable = {uid: r["stable_at"] for uid, r in pb.study_rows(client).items() if uid in uids}

    messages = [make_oru(make_cda(studies=[demo_order(content.study_uid, accession=accession)]))
                for content, accession in studies]
    refused: list[bytes] = []

    def sender(node: int, batch: list[bytes]) -> None:
        with MllpConnection("127.0.0.1", box.node(node).hl7, 30) as connection:
            for message in batch:
                ack = connection.send(message)
                if b"MSA|AA" not in ack:
                    refused.append(ack)

    cpu0, xact0 = node_cpu(box), transactions(postgres, databases)
    threads = [threading.Thread(target=sender, args=(node, messages[node::nodes])) for node in range(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if refused:
        raise RuntimeError(f"{len(refused)} reports refused, first: {refused[0][:300]!r}")
    c.wait_until(lambda: all(pb.published(client, content.study_uid) for content, _ in studies),
                 max(120.0, 5.0 * len(studies)), "every lot Approved", interval=0.2)
    cpu1 = node_cpu(box)
    time.sleep(0.6)  # PostgreSQL publishes its statistics at most twice a second
    xact1 = transactions(postgres, databases)
    lots = [pb.measure(client, content.study_uid, stable[content.study_uid]) for content, _ in studies]
    approved = [d for d in sim.get("documents") if d.get("status", "").endswith("Approved")
                and d.get("uniqueId") in {m["kos_uid"] for m in lots}]
    rate = len(lots) / (max(m["done"] for m in lots) - min(m["t0"] for m in lots))

    token = psc.mint_access_token(RADIOLOGIST)
    peer_cert = (pki["boxes"]["box-b"]["auth"]["cert"], pki["boxes"]["box-b"]["auth"]["key"])
    targets = []
    series_targets = []
    for (content, _), lot in zip(studies, lots, strict=True):
        headers = {"Authorization": f"Bearer {token}", "KOS-SOPInstanceUID": lot["kos_uid"],
                   "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
        for series in content.series:
            series_targets.append((f"{box.wado_rs_base}/studies/{content.study_uid}/series/{series.series_uid}",
                                   headers))
            for instance in series.instances:
                targets.append((f"{box.wado_rs_base}/studies/{content.study_uid}/series/{series.series_uid}"
                                f"/instances/{instance.sop_instance_uid}", headers))
    session_factory = lambda: pb_session(box.ca_bundle, peer_cert)  # noqa: E731
    operator = box.operator_session()
    c.wait_until(lambda: operator.get(box.admin_url + "/drimbox/status/health", timeout=10).json()["checks"][
        "whitelist"]["in_force"], 30, "the whitelist in force")
    wado_rate(session_factory, targets[:20], 1.0, 1)  # warm-up: token cache, page cache, connections
    cpu2, xact2 = node_cpu(box), transactions(postgres, databases)
    wado = wado_rate(session_factory, targets, args.seconds, args.clients)
    cpu3, xact3 = node_cpu(box), transactions(postgres, databases)
    time.sleep(0.6)  # PostgreSQL publishes its statistics at most twice a second
    xact3 = transactions(postgres, databases) or xact3
    requests_done = wado["rate"] * args.seconds
    cpu4 = node_cpu(box)
    wado_series = wado_rate(session_factory, series_targets, args.seconds, args.clients)
    cpu5 = node_cpu(box)
    box.stop()
    cleanup.discard(box)
    sim.stop()
    cleanup.discard(sim)
    gb = wado["bytes"] / 1e9
    return {"label": label, "lots": len(lots), "approved": len(approved), "rate": rate,
            "p95": c.percentile([m["delay"] for m in lots], 95),
            "cpu_per_lot": [(b - a) / len(lots) for a, b in zip(cpu0, cpu1, strict=True)],
            "wado": wado, "cpu_per_gb": [(b - a) / gb for a, b in zip(cpu2, cpu3, strict=True)],
            "series": wado_series,
            "series_cpu_per_gb": [(b - a) / (wado_series["bytes"] / 1e9) for a, b in zip(cpu4, cpu5, strict=True)],
            "xact_per_request": [(b - a) / requests_done for a, b in zip(xact2, xact3, strict=True)],
            "xact_per_lot": [(b - a) / len(lots) for a, b in zip(xact0, xact1, strict=True)]}


class RemovedFolder:
    def __init__(self, path: Path):
        self.path = path

    def stop(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def pb_session(verify: str, cert: tuple[str, str]):
    import requests

    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    session.cert = cert
    return session


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="\n".join(__doc__.splitlines()[2:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--studies", type=int, default=20,
                        help="studies per configuration (default: %(default)s)")
    parser.add_argument("--images", type=int, default=8, help="128x128 images per study (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=8.0, help="peer WADO-RS run length (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent peer clients (default: %(default)s)")
    parser.add_argument("--workdir", help="scratch directory, kept")
    parser.add_argument("--keep", action="store_true", help="keep the temporary scratch directory")
    parser.add_argument("--timeout", type=float, default=1200, help="overall limit, s (default: %(default)s)")
    args = parser.parse_args()

    from drimbox.crypto.pki import create_test_pki
    from drimbox.launcher.postgres import PostgresServer
    from drimbox.samples.whitelist import make_demo_whitelist
    from drimbox.sim.psc import PscSimulator

    print(c.machine_line())
    print(f"{args.studies} studies of {args.images} 128x128 images per configuration; {args.clients} peer clients "
          f"for {args.seconds:.0f} s")
    results = []
    with c.Cleanup(args.timeout) as cleanup, c.work_dir(args.workdir, args.keep) as root:
        run_dir = root / f"run-{time.time_ns()}"
        pki = create_test_pki(run_dir / "pki", hosts=("localhost", "127.0.0.1"), boxes=("box-a", "box-b"))
        whitelist = run_dir / "whitelist.xml"
        whitelist.write_bytes(make_demo_whitelist(pki, {
            "box-a": {"db": "localhost:443", "vi": "localhost:443"},
            "box-b": {"db": "box-b.example:443", "vi": "box-b.example:443"}}))
        psc_server = pki["servers"]["psc-sim"]
        psc = cleanup.add(PscSimulator(tls_cert=psc_server["fullchain"], tls_key=psc_server["key"],
                                       token_lifetime=3600).start())
        # its own folder: as root the server runs as the postgres account, which cannot enter the 0700 scratch
        pg_dir = Path(tempfile.mkdtemp(prefix="drimbox-bench-pg-"))
        cleanup.add(RemovedFolder(pg_dir))  # stopped last: after the server
        postgres = cleanup.add(PostgresServer(pg_dir, port=c.free_port()).start())
        for label, engine, nodes in CONFIGS:
            results.append(run_config(label, engine, nodes, run_dir, pki, whitelist, psc, args, cleanup, postgres))
            r = results[-1]
            print(f"  {label}: {r['rate']:.1f} lots/s, p95 {r['p95']:.2f} s; WADO {r['wado']['rate']:.0f} instance "
                  f"req/s, {r['series']['rate']:.0f} series req/s", flush=True)

    rows = []
    for r in results:
        rows.append([r["label"], f"{r['approved']}/{r['lots']}", c.fmt(r["rate"], 1), c.fmt(r["p95"], 2),
                     " + ".join(c.fmt(x, 3) for x in r["cpu_per_lot"]), c.fmt(r["wado"]["rate"], 0),
                     c.fmt(r["wado"]["mbs"], 1), c.fmt(r["wado"]["p95"], 1),
                     " + ".join(c.fmt(x, 1) for x in r["cpu_per_gb"])])
    c.print_table("Publication and peer WADO-RS (instance requests) per configuration",
                  ["", "Approved", "lots/s", "p95 delay s", "CPU s/lot per node", "WADO req/s", "MB/s",
                   "p95 ms", "CPU s/GB per node"], rows)
    c.print_table("Peer WADO-RS, series requests", ["", "req/s", "MB/s", "p95 ms", "CPU s/GB per node"],
                  [[r["label"], c.fmt(r["series"]["rate"], 0), c.fmt(r["series"]["mbs"], 1),
                    c.fmt(r["series"]["p95"], 1), " + ".join(c.fmt(x, 1) for x in r["series_cpu_per_gb"])]
                   for r in results])
    sqlite, pg1, pg2 = results

    def row(label: str, new: dict, base: dict, target: float) -> list:
        figures = (new["rate"] / base["rate"], new["wado"]["rate"] / base["wado"]["rate"],
                   new["series"]["rate"] / base["series"]["rate"])
        return [label, *(f"{x:.2f}x" for x in figures), f">= {target}",
                " / ".join("yes" if x >= target else "NO" for x in figures)]

    ratios = [row("postgresql 1 node / sqlite", pg1, sqlite, 0.85), row("postgresql 2 nodes / 1 node", pg2, pg1, 1.0)]
    notes = [f"{os.cpu_count()} CPUs shared by every process of the run (nodes, nginx, simulators, clients, "
             "PostgreSQL)"]
    for r in results:
        if r["xact_per_request"]:
            store, index = r["xact_per_request"]
            notes.append(f"{r['label']}: PostgreSQL transactions per peer instance request: store {store:.1f}, "
                         f"Orthanc index {index:.1f}")
        if r["xact_per_lot"]:
            store, index = r["xact_per_lot"]
            notes.append(f"{r['label']}: PostgreSQL transactions per lot (report to Approved, background work "
                         f"included): store {store:.0f}, Orthanc index {index:.0f}")
    c.print_table("Ratios", ["", "lots/s", "WADO instance req/s", "WADO series req/s", "target", "ok"], ratios,
                  notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
