"""Bench the KOS manifest inside a real box: build time, delay after the last image, Orthanc's memory.

For each study size (default 1,300 instances in 1 series and 10,000 in 8 series; small 16x16 uncompressed
images by default so that ingest stays bounded: the manifest only depends on the number of instances):

1. baseline: a bare Orthanc (same binary and options, DICOMweb plugin only, no Python) receives the study by
   C-STORE (dcmtk storescu); measured: its own stable delay (last image -> IsStable, net of StableAge) and the
   memory of its process (VmRSS/VmHWM) before and after;
2. the box (Orthanc + Python plugin + DICOMweb behind nginx): the report is sent over MLLP first, then the
   study; the stable study triggers the manifest. Measured from the store's timestamps (GET /drimbox/studies):
   build = manifests.created_at - max(studies.stable_at, reports.received_at) (reconcile time in the plugin),
   and KOS delay = created_at - (storescu end) - StableAge;
3. the box again, steady state: --builds corrected reports (RPLC), one after the other, for the stable study;
   build = created_at of the new manifest - received_at of the new report; Orthanc's RSS after each build
   (a leak shows as growth across builds);
4. reference: the pure builder (build_manifest + encode_manifest) on the same content in this process.

Targets: 1,300 instances in < 0.5 s, 10,000 in < 3 s, the plugin adding < 100 MB RSS to Orthanc.
Run: .venv/bin/python bench/kos_pipeline.py [--sizes 1300,10000] [--rows 16] [--no-bare] [--workdir DIR] [--nagle]
By default TCP_NODELAY=1 is set for storescu and Orthanc (see --nagle): ingest is then CPU-bound, about
1-2 minutes for the 10,000-instance study per server; with --nagle it takes ~90 ms per image (15 min per server).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import _common as c

TARGETS = {1300: 0.5, 10000: 3.0}  # seconds, from the assignment
SERIES = {1300: 1, 10000: 8}
RSS_TARGET_MB = 100.0


def pure_builder_seconds(study: c.GeneratedStudy, runs: int = 3) -> float:
    """build + encode on an in-memory study of the same shape (what bench/kos_build.py measures)."""
    from drimbox.kos.builder import build_manifest, encode_manifest
    from drimbox.samples.reports import make_cda
    from drimbox.reports.cda import parse_cda
    from drimbox.samples.studies import make_study_content
    from drimbox.testing import demo_order

    per_series = study.instances // study.series
    content = make_study_content(study.series, per_series, study_uid=study.study_uid)
    report = parse_cda(make_cda(studies=[demo_order(study.study_uid, accession=study.accession)]))
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        encode_manifest(build_manifest(report, content, retrieve_base="https://db.example.org/wado-rs",
                                       uid_root="1.2.826.0.1.3680043.8.498.77"))
        times.append(time.perf_counter() - started)
    return c.median(times[1:])


def run_bare(study: c.GeneratedStudy, data_dir: Path, stable_age: int, cleanup: c.Cleanup) -> dict:
    bare = cleanup.add(c.BareOrthanc(data_dir, stable_age=stable_age).start())
    try:
        time.sleep(1.0)
        idle = c.memory_mb(bare.pid)
        run = c.storescu(bare.aet, bare.dicom_port, study.path, study.instances)
        ingested = c.memory_mb(bare.pid)
        c.wait_until(lambda: bare.is_stable(study.study_uid), stable_age + 60, "the bare Orthanc's stable study")
        stable_seen = time.time()
        time.sleep(1.0)
        after = c.memory_mb(bare.pid)
        return {"ingest": run, "idle": idle, "ingested": ingested, "after": after,
                "stable_delay": stable_seen - run.ended - stable_age}
    finally:
        bare.stop()
        cleanup.discard(bare)


def _study_row(client, study_uid: str) -> dict | None:
    rows = client.get("/drimbox/studies", params={"limit": 1000}).json()
    return next((r for r in rows if r["study_uid"] == study_uid), None)


def wait_for_stable_at(client, study_uid: str, timeout: float = 120.0) -> dict:
    """The plugin's row for the study once its change follower has recorded the stable study."""
    return c.wait_until(lambda: (lambda r: r if r and r.get("stable_at") else None)(_study_row(client, study_uid)),
                        timeout, "the plugin's stable_at", interval=0.2)


def run_box(study: c.GeneratedStudy, data_dir: Path, pki: dict, stable_age: int, cleanup: c.Cleanup,
            wait_seconds: float, rebuilds: int = 1) -> dict:
    from drimbox.reports.mllp import send_message
    from drimbox.samples.reports import make_cda, make_oru
    from drimbox.testing import BoxClient, demo_order, start_box

    box = cleanup.add(start_box(data_dir, pki=pki, stable_age=stable_age))
    try:
        client = BoxClient(box)
        c.wait_until(lambda: client.get("/drimbox/status").status_code == 200, 30, "the box's status")
        time.sleep(1.0)
        pid = box.orthanc.process.pid
        idle = c.memory_mb(pid)

        order = demo_order(study.study_uid, accession=study.accession)
        first_cda = make_cda(studies=[order])
        ack = send_message("127.0.0.1", box.ports.hl7, make_oru(first_cda))
        if b"MSA|AA" not in ack:
            raise RuntimeError(f"the box refused the report: {ack[:300]!r}")

        run = c.storescu(box.aet, box.ports.dicom, study.path, study.instances)
        ingested = c.memory_mb(pid)
        # Orthanc's own "stable" moment, observed from outside (the plugin's stable_at can lag behind it)
        orthanc_id = client.get(f"/drimbox/studies/{study.study_uid}").json().get("orthanc_id") or \
            next(m["ID"] for m in client.post("/tools/lookup", data=study.study_uid).json() if m["Type"] == "Study")
        orthanc_stable = None
        state: dict = {}
        deadline = time.monotonic() + wait_seconds
        next_state_poll = 0.0
        while time.monotonic() < deadline:
            if orthanc_stable is None and client.get(f"/studies/{orthanc_id}").json().get("IsStable"):
                orthanc_stable = time.time()
            if time.monotonic() >= next_state_poll:
                state = client.study(study.study_uid)
                next_state_poll = time.monotonic() + 0.2
                if state.get("kos") and orthanc_stable is not None:
                    break
            time.sleep(0.05)
        else:
            raise TimeoutError(f"no manifest for {study.study_uid} within {wait_seconds:.0f} s")
        after = c.memory_mb(pid)
        manifest = state["kos"]
        report = next(r for r in state["reports"] if r["state"] == "active")
        row = wait_for_stable_at(client, study.study_uid)
        stable_at = row["stable_at"]
        both_present = max(stable_at, report["received_at"])
        first = {
            "ingest": run, "idle": idle, "ingested": ingested, "after": after, "instances": manifest["instance_count"],
            "build": manifest["created_at"] - both_present if both_present <= manifest["created_at"] else None,
            "stable_at_late": stable_at - manifest["created_at"] if stable_at > manifest["created_at"] else 0.0,
            "orthanc_stable": orthanc_stable - run.ended - stable_age,
            "stable_delay": stable_at - run.ended - stable_age,
            "from_orthanc_stable": manifest["created_at"] - orthanc_stable,
            "kos_delay": manifest["created_at"] - run.ended - stable_age,
        }

        # steady state: corrected reports for the stable study (instances already known to the plugin), each
        # replacing the previous one: one more manifest build each, Orthanc's memory read after every build
        from drimbox.reports.cda import parse_cda

        previous_id = parse_cda(first_cda).report_id
        builds = []
        for version in range(2, 2 + max(1, rebuilds)):
            cda = make_cda(studies=[order], replaces_report_id=previous_id, version=version)
            ack = send_message("127.0.0.1", box.ports.hl7, make_oru(cda, event="replace"))
            if b"MSA|AA" not in ack:
                raise RuntimeError(f"the box refused the corrected report: {ack[:300]!r}")
            report_id = parse_cda(cda).report_id
            state = client.wait_study(study.study_uid,
                                      lambda s, rid=report_id: bool(s.get("kos")) and s["kos"]["report_id"] == rid,
                                      timeout=wait_seconds, what="the replacement manifest")
            report = next(r for r in state["reports"] if r["report_id"] == report_id)
            time.sleep(0.5)  # the reconcile thread gives freed pages back once the queue is empty
            builds.append({"build": state["kos"]["created_at"] - report["received_at"], "after": c.memory_mb(pid),
                           "instances": state["kos"]["instance_count"]})
            previous_id = report_id
        second = builds[0]
        return {"first": first, "second": second, "builds": builds}
    finally:
        box.stop()
        cleanup.discard(box)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="\n".join(__doc__.splitlines()[2:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1300,10000", help="instance counts (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=16, help="image rows and columns (default: %(default)s)")
    parser.add_argument("--stable-age", type=int, default=2, help="Orthanc StableAge, s (default: %(default)s)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare Orthanc baseline")
    parser.add_argument("--builds", type=int, default=20,
                        help="successive corrected reports (one manifest build each) after the first manifest, "
                             "Orthanc's RSS read after each: a leak shows as growth (default: %(default)s)")
    parser.add_argument("--workdir", help="scratch directory, kept (generated studies are reused from it)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary scratch directory")
    parser.add_argument("--timeout", type=float, default=3600, help="overall limit, s (default: %(default)s)")
    c.add_nagle_option(parser)
    args = parser.parse_args()
    nagle = c.apply_nagle_option(args)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    from drimbox.crypto.pki import create_test_pki

    print(c.machine_line())
    print(f"images: {args.rows}x{args.rows} uncompressed (small on purpose: the manifest depends on the instance "
          f"count, not on pixel data); StableAge {args.stable_age} s; report sent before the images; {nagle}")
    results = []
    with c.Cleanup(args.timeout) as cleanup, c.work_dir(args.workdir, args.keep) as root:
        pki = create_test_pki(root / "pki", hosts=("localhost", "127.0.0.1"), boxes=("box-a",))
        for size in sizes:
            series = SERIES.get(size, max(1, size // 1250))
            print(f"\n== {size} instances in {series} series", flush=True)
            study = c.generated_study(root, size, series, rows=args.rows, cols=args.rows)
            pure = pure_builder_seconds(study)
            print(f"  pure builder: {pure:.3f} s", flush=True)
            bare = None
            if not args.no_bare:
                bare = run_bare(study, root / f"bare-{size}-{time.time_ns()}", args.stable_age, cleanup)
                print(f"  bare Orthanc: ingest {bare['ingest'].seconds:.1f} s, "
                      f"RSS after {bare['after']['VmRSS']:.0f} MB", flush=True)
            wait = max(120.0, size / 20)
            box = run_box(study, root / f"box-{size}-{time.time_ns()}", pki, args.stable_age, cleanup, wait,
                          rebuilds=args.builds)
            print(f"  box: ingest {box['first']['ingest'].seconds:.1f} s, manifest of {box['first']['instances']} "
                  f"instances, {box['first']['from_orthanc_stable']:.3f} s after Orthanc's IsStable", flush=True)
            results.append((size, study, pure, bare, box))

    rows = []
    for size, _study, pure, _bare, box in results:
        target = TARGETS.get(size, 3.0 * size / 10000)
        first = box["first"]
        cases = (("stable_at->KOS", first["build"]), ("IsStable->KOS", first["from_orthanc_stable"]),
                 ("RPLC->KOS", box["second"]["build"]))
        for label, build in cases:
            rows.append([f"{size} {label}", c.fmt(build), c.fmt(pure), c.ratio(build, pure), c.fmt(target, 1),
                         c.ratio(build, target), "-" if build is None else ("yes" if build < target else "NO")])
    c.print_table("Manifest build inside the plugin (s): both present -> manifest stored (manifests.created_at)",
                  ["case", "build s", "pure builder s", "x pure", "target s", "x target", "ok"], rows,
                  ["stable_at->KOS: report first; created_at - max(studies.stable_at, reports.received_at)",
                   "  ('-' when the plugin recorded stable_at after the manifest: a reconcile triggered by new",
                   "  instances found Orthanc's study already stable before the change follower reached StableStudy)",
                   "IsStable->KOS: created_at - the moment the bench saw Orthanc's IsStable (polled every 50 ms)",
                   "RPLC->KOS: corrected report for the stable study; created_at - its received_at (steady state)",
                   "pure builder: build_manifest+encode_manifest in this process on the same shape"])

    rows = []
    for size, _study, _pure, bare, box in results:
        first = box["first"]
        rows.append([size, c.fmt(first["kos_delay"]), c.fmt(first["orthanc_stable"]), c.fmt(first["stable_delay"]),
                     c.fmt(first["from_orthanc_stable"]), c.fmt(bare["stable_delay"]) if bare else "-",
                     c.fmt(first["kos_delay"] - bare["stable_delay"]) if bare else "-"])
    c.print_table("Delay from the last stored instance to the KOS, net of StableAge (s)",
                  ["instances", "KOS delay", "Orthanc IsStable", "plugin stable_at", "IsStable->KOS",
                   "bare IsStable", "KOS delay - bare"], rows,
                  ["last stored instance = storescu exit (every C-STORE-RSP received); StableAge subtracted",
                   "Orthanc IsStable / bare IsStable: when the bench saw IsStable (polled every 50 ms), "
                   "net of StableAge",
                   "plugin stable_at: when the plugin's change follower recorded the StableStudy change"])

    rows = []
    for size, _study, _pure, bare, box in results:
        first = box["first"]
        for phase, key in (("idle", "idle"), ("after ingest", "ingested"), ("after KOS", "after")):
            box_mem = first[key]
            bare_mem = bare[key] if bare else None
            added = box_mem["VmRSS"] - bare_mem["VmRSS"] if bare_mem else None
            rows.append([f"{size} {phase}", c.fmt(box_mem["VmRSS"], 0), c.fmt(box_mem["VmHWM"], 0),
                         c.fmt(bare_mem["VmRSS"], 0) if bare_mem else "-",
                         c.fmt(bare_mem["VmHWM"], 0) if bare_mem else "-",
                         c.fmt(added, 0), c.ratio(box_mem["VmRSS"], bare_mem["VmRSS"]) if bare_mem else "-",
                         c.ratio(added, RSS_TARGET_MB) if added is not None else "-",
                         ("yes" if added < RSS_TARGET_MB else "NO") if added is not None else "-"])
        mem = box["second"]["after"]
        rows.append([f"{size} after RPLC", c.fmt(mem["VmRSS"], 0), c.fmt(mem["VmHWM"], 0),
                     "-", "-", "-", "-", "-", "-"])
    c.print_table("Orthanc process memory (MB): box (with the plugin) vs bare Orthanc holding the same study",
                  ["case", "box RSS", "box HWM", "bare RSS", "bare HWM", "added RSS", "x bare", "x target",
                   "ok"], rows, [f"target: the plugin adds < {RSS_TARGET_MB:.0f} MB RSS ('x target' = added / 100 MB)"])

    rows = []
    for size, _study, _pure, bare, box in results:
        builds = box["builds"]
        base = bare["after"]["VmRSS"] if bare else None
        for index in sorted({0, len(builds) // 2 - 1, len(builds) - 1} - {-1}):
            mem = builds[index]["after"]
            rows.append([size, index + 1, c.fmt(builds[index]["build"]), c.fmt(mem["VmRSS"], 0),
                         c.fmt(mem["VmRSS"] - base, 0) if base else "-",
                         c.fmt(mem["VmRSS"] - builds[0]["after"]["VmRSS"], 1)])
        growth = [b["after"]["VmRSS"] for b in builds]
        print(f"  {size}: RSS after each build (MB): {' '.join(f'{g:.0f}' for g in growth)}")
        half = len(growth) // 2
        second_half = growth[-1] - growth[half] if half else 0.0
        rows.append([size, f"{len(builds)} builds", f"max build {max(b['build'] for b in builds):.3f}",
                     f"peak {max(growth):.0f}", "-", f"2nd half {second_half:+.1f}"])
    c.print_table("Successive manifest builds (corrected reports) on the same study: Orthanc RSS after each (MB)",
                  ["instances", "build #", "build s", "box RSS", "added vs bare", "vs build 1"], rows,
                  ["a leak grows with every build; '2nd half' = RSS after the last build - after the middle one"])

    rows = []
    for size, study, _pure, bare, box in results:
        ingest = box["first"]["ingest"]
        rows.append([size, study.label, c.fmt(ingest.seconds, 1), c.fmt(ingest.rate, 1),
                     c.fmt(bare["ingest"].seconds, 1) if bare else "-", c.fmt(bare["ingest"].rate, 1) if bare else "-",
                     c.ratio(ingest.seconds, bare["ingest"].seconds) if bare else "-"])
    c.print_table("Ingest during this bench (one run each; see bench/ingest.py for the fair comparison)",
                  ["instances", "study", "box s", "box img/s", "bare s", "bare img/s", "x bare"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
