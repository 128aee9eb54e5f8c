"""Bench C-STORE ingest: a 1,300-instance study into the box vs into a bare Orthanc, alternating runs.

Each run starts a fresh server (fresh storage and index) and sends the whole study with dcmtk's storescu on
one association. Order: bare, box, bare, box... (--rounds pairs). The same files are read from the page cache
every time (read once before the first run). Measured per run: storescu wall time and images/s; CPU seconds
used by the Orthanc process (utime+stime from /proc) during the transfer; for the box, the time after the
last C-STORE-RSP until the plugin has caught up with Orthanc's change log (it reads the log's NewInstance
changes to know when the study can become stable: deferred work the modality does not wait for).

Target: the box adds under 5% to the ingest time of a bare Orthanc.
Default study: 1,300 CT images 512x512 JPEG-LS lossless (~200 MB, the national performance study's shape);
--small sends 1,300 16x16 uncompressed images instead (per-instance overhead only, the worst case).
By default TCP_NODELAY=1 is set for storescu and Orthanc (see --nagle).
Run: .venv/bin/python bench/ingest.py [--rounds 3] [--small] [--nagle] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import _common as c

TARGET_OVERHEAD = 0.05


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def warm_cache(path: Path) -> None:
    for file in path.iterdir():
        with open(file, "rb") as handle:
            while handle.read(1 << 20):
                pass


def run_bare(study: c.GeneratedStudy, data_dir: Path, cleanup: c.Cleanup) -> dict:
    bare = cleanup.add(c.BareOrthanc(data_dir).start())
    try:
        time.sleep(0.5)
        cpu0 = cpu_seconds(bare.pid)
        run = c.storescu(bare.aet, bare.dicom_port, study.path, study.instances, jpegls=study.jpegls)
        cpu1 = cpu_seconds(bare.pid)
        return {"run": run, "cpu": cpu1 - cpu0, "drain": 0.0, "cpu_drain": 0.0}
    finally:
        bare.stop()
        cleanup.discard(bare)


def run_box(study: c.GeneratedStudy, data_dir: Path, pki: dict, cleanup: c.Cleanup) -> dict:
    from drimbox.testing import BoxClient, start_box

    box = cleanup.add(start_box(data_dir, pki=pki))
    try:
        client = BoxClient(box)
        c.wait_until(lambda: client.get("/drimbox/status").status_code == 200, 30, "the box's status")
        time.sleep(0.5)
        pid = box.orthanc.process.pid
        cpu0 = cpu_seconds(pid)
        run = c.storescu(box.aet, box.ports.dicom, study.path, study.instances, jpegls=study.jpegls)
        cpu1 = cpu_seconds(pid)
        last = client.get("/changes", params={"last": ""}).json()["Last"]
        c.wait_until(lambda: client.get("/drimbox/status").json()["changes_cursor"] >= last, 600,
                     "the plugin to catch up with the change log", interval=0.05)
        drained = time.time()
        return {"run": run, "cpu": cpu1 - cpu0, "drain": drained - run.ended, "cpu_drain": cpu_seconds(pid) - cpu1}
    finally:
        box.stop()
        cleanup.discard(box)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="\n".join(__doc__.splitlines()[2:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs (bare, box) (default: %(default)s)")
    parser.add_argument("--instances", type=int, default=1300, help="default: %(default)s")
    parser.add_argument("--small", action="store_true", help="16x16 uncompressed images instead of 512x512 JPEG-LS")
    parser.add_argument("--workdir", help="scratch directory, kept (the generated study is reused from it)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary scratch directory")
    parser.add_argument("--timeout", type=float, default=1800, help="overall limit, s (default: %(default)s)")
    c.add_nagle_option(parser)
    args = parser.parse_args()
    nagle = c.apply_nagle_option(args)
    rows, jpegls = (16, False) if args.small else (512, True)

    from drimbox.crypto.pki import create_test_pki

    print(c.machine_line())
    runs: list[tuple[str, dict]] = []
    with c.Cleanup(args.timeout) as cleanup, c.work_dir(args.workdir, args.keep) as root:
        study = c.generated_study(root, args.instances, 1, rows=rows, cols=rows, jpegls=jpegls)
        print(f"study: {study.label}; {nagle}", flush=True)
        warm_cache(study.path)
        pki = create_test_pki(root / "pki", hosts=("localhost", "127.0.0.1"), boxes=("box-a",))
        for n in range(args.rounds):
            for kind in ("bare", "box"):
                data_dir = root / f"{kind}-{n}-{time.time_ns()}"
                result = (run_bare(study, data_dir, cleanup) if kind == "bare"
                          else run_box(study, data_dir, pki, cleanup))
                runs.append((kind, result))
                print(f"  run {len(runs)}: {kind:4} {result['run'].seconds:6.1f} s  {result['run'].rate:6.1f} img/s",
                      flush=True)

    bare_times = [r["run"].seconds for k, r in runs if k == "bare"]
    box_times = [r["run"].seconds for k, r in runs if k == "box"]
    bare_cpu = [r["cpu"] for k, r in runs if k == "bare"]
    box_cpu = [r["cpu"] for k, r in runs if k == "box"]
    reference = c.median(bare_times)
    rows_out = []
    for index, (kind, result) in enumerate(runs, start=1):
        run = result["run"]
        rows_out.append([f"{index} {kind}", c.fmt(run.seconds, 2), c.fmt(run.rate, 1), c.ratio(run.seconds, reference),
                         c.fmt(result["cpu"], 2), c.fmt(result["drain"], 2) if kind == "box" else "-",
                         c.fmt(result["cpu_drain"], 2) if kind == "box" else "-"])
    c.print_table(f"C-STORE ingest of {study.label}, one association, storescu",
                  ["run", "seconds", "img/s", "x bare median", "Orthanc CPU s", "plugin catch-up s",
                   "catch-up CPU s"], rows_out,
                  ["plugin catch-up: last C-STORE-RSP -> the plugin's change cursor reaches Orthanc's last change"])

    overhead = c.median(box_times) / reference - 1
    cpu_overhead = c.median(box_cpu) / c.median(bare_cpu) - 1 if c.median(bare_cpu) else float("nan")
    summary = [
        ["bare (baseline)", c.fmt(reference, 2), c.fmt(study.instances / reference, 1), "1.00", "-", "-", "-"],
        ["box", c.fmt(c.median(box_times), 2), c.fmt(study.instances / c.median(box_times), 1),
         c.ratio(c.median(box_times), reference), f"{overhead * 100:+.1f}%",
         c.ratio(max(overhead, 0.0), TARGET_OVERHEAD),
         "yes" if overhead < TARGET_OVERHEAD else "NO"],
        ["box CPU vs bare CPU", c.fmt(c.median(box_cpu), 2), "-", c.ratio(c.median(box_cpu), c.median(bare_cpu)),
         f"{cpu_overhead * 100:+.1f}%", "-", "-"],
    ]
    c.print_table("Summary (medians)", ["", "seconds", "img/s", "x bare", "added", "x target (5%)", "ok"], summary,
                  [f"target: under {TARGET_OVERHEAD * 100:.0f}% added to the bare Orthanc's ingest time",
                   c.NAGLE_NOTE])
    return 0


if __name__ == "__main__":
    sys.exit(main())
