"""Bench DMP publication: a burst of N studies, each with its report, from a box to the DMP simulator.

Set-up (loopback only): the DMP simulator in its own process (`drimbox dmp-sim`, HTTPS with client
certificates, VIHF signatures checked, as in tests/integration/conftest.py) and a box publishing to it.

1. The N studies (small: --images 16x16 images each) are stored first, and the bench waits until the box has
   seen every one of them stable (state waiting_report).
2. Baseline (same session): --solo reports sent one at a time, each waiting for its lot to be Approved before
   the next: the unloaded latency.
3. Burst: the N reports sent back to back over MLLP (--senders connections, each message waiting for its ACK;
   with one connection the RIS's sending rate, bounded by the box's synchronous intake, caps the throughput).

Per study, from the box's store (GET /drimbox/studies, /drimbox/studies/{uid}):
  t0 = max(studies.stable_at, reports.received_at)  (report and stable study both present)
  build = manifests.created_at - t0; queue+send = publications.done_at - manifests.created_at;
  delay = publications.done_at - t0 (Approved in the DMP: done is set after the DMP answered Success).
Throughput: N / (last done_at - first t0). Server side: ITI-41 durations from the simulator's request log.
Targets: >= 10 lots/s sustained, p95 delay under 1 s.
Run: .venv/bin/python bench/publication_burst.py [-n 30] [--solo 3] [--senders 1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import requests

import _common as c

TARGET_RATE = 10.0
TARGET_P95 = 1.0


class DmpSimProcess:
    """`drimbox dmp-sim` as a child process (HTTPS + client certificates)."""

    def __init__(self, data_dir: Path, pki: dict):
        from drimbox.launcher.processes import ManagedProcess

        server = pki["servers"]["dmp-sim"]
        self.port = c.free_port()
        self.data_dir = data_dir
        self.ca_bundle = pki["ca_bundle"]
        argv = [str(c.REPO / ".venv" / "bin" / "drimbox"), "dmp-sim", "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(data_dir / "state"), "--tls-cert", server["fullchain"], "--tls-key", server["key"],
                "--client-ca", pki["ca_bundle"], "--signing-ca", pki["ca_bundle"], "--json"]
        self.process = ManagedProcess("dmp-sim", argv, log_path=data_dir / "dmp-sim.log")
        client = pki["boxes"]["box-a"]["auth"]
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        self.session.verify = self.ca_bundle
        self.session.cert = (client["cert"], client["key"])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dmp"

    def start(self) -> "DmpSimProcess":
        self.process.start()
        self.process.wait_until(lambda: '"url"' in self.process.log_path.read_text(errors="replace"), 30,
                                "printing its URL")
        return self

    def stop(self) -> None:
        self.process.stop(timeout=15)

    def get(self, name: str):
        response = self.session.get(f"{self.url}/_sim/{name}", timeout=30)
        response.raise_for_status()
        return response.json()


def study_rows(client) -> dict[str, dict]:
    return {r["study_uid"]: r for r in client.get("/drimbox/studies", params={"limit": 10000}).json()}


def measure(client, study_uid: str, stable_at: float) -> dict:
    state = client.study(study_uid)
    report = next(r for r in state["reports"] if r["state"] == "active")
    manifest = state["kos"]
    publication = next(p for p in state["publications"] if p["kos_uid"] == manifest["kos_uid"]
                       and p["action"] == "register")
    t0 = max(stable_at, report["received_at"])
    return {"study": study_uid, "t0": t0, "received": report["received_at"], "manifest": manifest["created_at"],
            "done": publication["done_at"], "attempts": publication["attempts"], "state": publication["state"],
            "kos_uid": manifest["kos_uid"], "build": manifest["created_at"] - t0,
            "send": publication["done_at"] - manifest["created_at"], "delay": publication["done_at"] - t0}


def published(client, study_uid: str) -> bool:
    state = client.study(study_uid)
    return any(p["action"] == "register" and p["state"] in ("done", "failed") for p in state.get("publications", []))


def stats_row(label: str, values: list[float], reference: float | None = None, target: float | None = None) -> list:
    p50, p95 = c.percentile(values, 50), c.percentile(values, 95)
    return [label, len(values), c.fmt(min(values)), c.fmt(p50), c.fmt(p95), c.fmt(max(values)),
            c.ratio(p95, reference) if reference else "-", c.fmt(target, 1) if target else "-",
            c.ratio(p95, target) if target else "-", ("yes" if p95 < target else "NO") if target else "-"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="\n".join(__doc__.splitlines()[2:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--studies", type=int, default=30, help="studies in the burst (default: %(default)s)")
    parser.add_argument("--solo", type=int, default=3, help="baseline studies published one at a time "
                                                             "(default: %(default)s)")
    parser.add_argument("--senders", type=int, default=1, help="parallel MLLP connections sending the burst "
                                                                 "(default: %(default)s)")
    parser.add_argument("--images", type=int, default=5, help="images per study (default: %(default)s)")
    parser.add_argument("--workdir", help="scratch directory, kept")
    parser.add_argument("--keep", action="store_true", help="keep the temporary scratch directory")
    parser.add_argument("--timeout", type=float, default=900, help="overall limit, s (default: %(default)s)")
    c.add_nagle_option(parser)
    args = parser.parse_args()
    nagle = c.apply_nagle_option(args)

    from drimbox.crypto.pki import create_test_pki
    from drimbox.reports.mllp import MllpConnection, send_message
    from drimbox.samples.reports import make_cda, make_oru
    from drimbox.testing import BoxClient, demo_order, demo_study, start_box

    print(c.machine_line())
    print(f"{args.solo} baseline + {args.studies} burst studies of {args.images} 16x16 images; burst sent over "
          f"{args.senders} MLLP connection(s); {nagle}")
    total = args.solo + args.studies
    with c.Cleanup(args.timeout) as cleanup, c.work_dir(args.workdir, args.keep) as root:
        run_dir = root / f"run-{time.time_ns()}"
        pki = create_test_pki(run_dir / "pki", hosts=("localhost", "127.0.0.1"), boxes=("box-a",))
        sim = cleanup.add(DmpSimProcess(run_dir / "dmp-sim", pki).start())
        box = cleanup.add(start_box(run_dir / "box", pki=pki, dmp_url=sim.url,
                                    settings={"Dmp": {"RetryInitialSeconds": 0.5, "RetryMaxSeconds": 2.0}}))
        client = BoxClient(box)

        studies = []
        started = time.monotonic()
        for n in range(total):
            accession = f"ACCB{n:04d}"
            content = demo_study(run_dir / "studies" / f"{n:04d}", accession=accession,
                                 series=(("CT", args.images),), rows=16, cols=16)
            studies.append((content.study_uid, accession))
        run = c.storescu(box.aet, box.ports.dicom, run_dir / "studies", total * args.images)
        uids = {uid for uid, _ in studies}
        c.wait_until(lambda: sum(1 for uid, r in study_rows(client).items() if uid in uids and r["stable_at"]) == total,
                     120, "every study stable in the box", interval=0.2)
        stable = {uid: r["stable_at"] for uid, r in study_rows(client).items() if uid in uids}
        print(f"  {total} studies stored ({run.seconds:.1f} s) and stable ({time.monotonic() - started:.1f} s)",
              flush=True)

        messages = [make_oru(make_cda(studies=[demo_order(uid, accession=accession)])) for uid, accession in studies]

        solo = []
        for (uid, _), message in zip(studies[:args.solo], messages[:args.solo], strict=True):
            ack = send_message("127.0.0.1", box.ports.hl7, message)
            if b"MSA|AA" not in ack:
                raise RuntimeError(f"report refused: {ack[:300]!r}")
            c.wait_until(lambda uid=uid: published(client, uid), 60, f"the publication of {uid}", interval=0.02)
            solo.append(measure(client, uid, stable[uid]))

        burst_studies = studies[args.solo:]
        sent_at: list[float] = []
        refused: list[bytes] = []

        def sender(batch: list[bytes]) -> None:
            with MllpConnection("127.0.0.1", box.ports.hl7, 30) as connection:
                for message in batch:
                    ack = connection.send(message)
                    sent_at.append(time.time())
                    if b"MSA|AA" not in ack:
                        refused.append(ack)

        burst_messages = messages[args.solo:]
        threads = [threading.Thread(target=sender, args=(burst_messages[k::args.senders],))
                   for k in range(args.senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if refused:
            raise RuntimeError(f"{len(refused)} reports refused, first: {refused[0][:300]!r}")
        sent_at.sort()
        c.wait_until(lambda: all(published(client, uid) for uid, _ in burst_studies),
                     max(120.0, 10.0 * len(burst_studies)), "every lot of the burst Approved", interval=0.2)
        burst = [measure(client, uid, stable[uid]) for uid, _ in burst_studies]
        documents = sim.get("documents")
        log = sim.get("requests")

    # --- tables ---------------------------------------------------------------------------------------
    failed = [m for m in solo + burst if m["state"] != "done"]
    kos_uids = {m["kos_uid"] for m in solo + burst}
    approved = [d for d in documents if d.get("uniqueId") in kos_uids and d.get("status", "").endswith("Approved")]
    iti41 = [e for e in log if "ITI-41" in e.get("action", "") or "ProvideAndRegister" in e.get("action", "")]
    server_ms = [e["durationMs"] / 1000 for e in iti41 if "durationMs" in e]

    first_t0 = min(m["t0"] for m in burst)
    last_done = max(m["done"] for m in burst)
    rate = len(burst) / (last_done - first_t0)
    send_rate = len(burst) / (sent_at[-1] - min(m["received"] for m in burst)) if len(burst) > 1 else float("nan")
    solo_delay = c.median([m["delay"] for m in solo]) if solo else None
    solo_build = c.median([m["build"] for m in solo]) if solo else None
    solo_send = c.median([m["send"] for m in solo]) if solo else None

    headers = ["", "n", "min s", "p50 s", "p95 s", "max s", "p95 x solo", "target s", "x target", "ok"]
    rows = []
    if solo:
        rows.append(stats_row("solo: delay both present -> Approved", [m["delay"] for m in solo]))
    rows.append(stats_row("burst: delay both present -> Approved", [m["delay"] for m in burst], solo_delay, TARGET_P95))
    rows.append(stats_row("burst: of which build (-> manifest)", [m["build"] for m in burst], solo_build))
    rows.append(stats_row("burst: of which queue + DMP send", [m["send"] for m in burst], solo_send))
    if server_ms:
        rows.append(stats_row("DMP simulator ITI-41 time (all)", server_ms))
    c.print_table(f"Publication latency ({len(burst)}-study burst, {len(solo)} solo baseline)", headers, rows)

    c.print_table("Throughput", ["", "value", "x target", "target", "ok"], [
        ["lots/s (burst: N / (last done - first both-present))", c.fmt(rate, 1), c.ratio(rate, TARGET_RATE),
         f">= {TARGET_RATE:.0f}", "yes" if rate >= TARGET_RATE else "NO"],
        ["reports/s accepted over MLLP during the burst", c.fmt(send_rate, 1), "-", "-", "-"],
        ["solo: lots/s if sent one at a time (1 / median delay)", c.fmt(1 / solo_delay, 1) if solo_delay else "-",
         "-", "-", "-"],
    ], [f"Approved in the simulator: {len(approved)} of {len(solo) + len(burst)} lots; not done: {len(failed)}; "
        f"publication attempts > 1: {sum(1 for m in solo + burst if m['attempts'] > 1)}"])

    timeline = sorted(burst, key=lambda m: m["t0"])
    rows = [[i + 1, c.fmt(m["received"] - first_t0), c.fmt(m["manifest"] - first_t0), c.fmt(m["done"] - first_t0),
             c.fmt(m["delay"])] for i, m in enumerate(timeline)]
    c.print_table("Burst timeline (s after the first report)", ["#", "report in", "manifest", "Approved", "delay"],
                  rows)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
