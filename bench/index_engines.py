"""Bench a bare Orthanc (DICOMweb plugin only, no DRIMbox) on its SQLite index and on its PostgreSQL index.

The baseline that scale_out.py's "one node on PostgreSQL / SQLite" ratio is read against: what Orthanc 1.10.1
with Debian's orthanc-postgresql 4.0 costs by itself, with the same Orthanc options and PostgreSQL server as a
box node. Same studies (--studies x --images 128x128), same loopback HTTP clients (no TLS, no nginx, no access
decision), alternating engines for --rounds rounds: C-STORE ingest time, then WADO-RS instance and series
requests for --seconds from --clients clients (requests/s and Orthanc's CPU seconds per request).
Run: .venv/bin/python bench/index_engines.py [--rounds 2] [--studies 20] [--images 8] [--seconds 6]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _common as c
import requests
from scale_out import cpu_seconds, wado_rate

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def plain_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def request_rate(urls: list[str], seconds: float, clients: int) -> float:
    return wado_rate(plain_session, [(url, {"Accept": ACCEPT}) for url in urls], seconds, clients)["rate"]


def run_engine(label: str, index_url: str | None, studies: list, folder: Path, args, cleanup: c.Cleanup) -> dict:
    orthanc = cleanup.add(c.BareOrthanc(folder, index_url=index_url).start())
    try:
        total = sum(len(s.series[0].instances) for s in studies)
        store = c.storescu(orthanc.aet, orthanc.dicom_port, args.files, total)
        base = f"{orthanc.url}/dicom-web/studies"
        series_urls = [f"{base}/{s.study_uid}/series/{s.series[0].series_uid}" for s in studies]
        instance_urls = [f"{url}/instances/{i.sop_instance_uid}" for s, url in zip(studies, series_urls, strict=True)
                         for i in s.series[0].instances]
        request_rate(instance_urls[:20], 1.0, 1)  # warm-up
        figures = {"label": label, "ingest": store.seconds}
        for kind, urls in (("instance", instance_urls), ("series", series_urls)):
            cpu0 = cpu_seconds(orthanc.pid)
            rate = request_rate(urls, args.seconds, args.clients)
            figures[kind] = rate
            figures[f"{kind}_cpu_ms"] = (cpu_seconds(orthanc.pid) - cpu0) / (rate * args.seconds) * 1000
        return figures
    finally:
        orthanc.stop()
        cleanup.discard(orthanc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="\n".join(__doc__.splitlines()[2:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs (sqlite, postgresql)")
    parser.add_argument("--studies", type=int, default=20, help="default: %(default)s")
    parser.add_argument("--images", type=int, default=8, help="128x128 images per study (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each request run (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--workdir", help="scratch directory, kept")
    parser.add_argument("--keep", action="store_true", help="keep the temporary scratch directory")
    parser.add_argument("--timeout", type=float, default=1200, help="overall limit, s (default: %(default)s)")
    c.add_nagle_option(parser)
    args = parser.parse_args()
    nagle = c.apply_nagle_option(args)

    from drimbox.launcher.postgres import PostgresServer
    from drimbox.testing import demo_study

    print(c.machine_line())
    print(f"bare Orthanc + DICOMweb; {args.studies} studies of {args.images} 128x128 images; {args.clients} clients "
          f"for {args.seconds:.0f} s per request kind; {args.rounds} rounds; {nagle}")
    results: list[dict] = []
    with c.Cleanup(args.timeout) as cleanup, c.work_dir(args.workdir, args.keep) as root:
        run_dir = root / f"run-{time.time_ns()}"
        args.files = run_dir / "files"
        studies = [demo_study(args.files / f"{n:04d}", accession=f"ACCE{n:04d}", series=(("CT", args.images),),
                              rows=128, cols=128) for n in range(args.studies)]
        pg_dir = Path(tempfile.mkdtemp(prefix="drimbox-bench-pg-"))
        try:
            postgres = cleanup.add(PostgresServer(pg_dir, port=c.free_port()).start())
            for round_ in range(args.rounds):
                for label in ("sqlite", "postgresql"):
                    url = postgres.create_database(f"orthanc_{round_}") if label == "postgresql" else None
                    results.append(run_engine(label, url, studies, run_dir / f"{label}-{round_}", args, cleanup))
                    r = results[-1]
                    print(f"  round {round_ + 1} {label}: ingest {r['ingest']:.2f} s, {r['instance']:.0f} instance "
                          f"req/s, {r['series']:.0f} series req/s", flush=True)
            postgres.stop()
            cleanup.discard(postgres)
        finally:
            shutil.rmtree(pg_dir, ignore_errors=True)

    def median(label: str, key: str) -> float:
        return c.median([r[key] for r in results if r["label"] == label])

    rows = []
    for key, title in (("ingest", "C-STORE ingest s"), ("instance", "instance req/s"), ("series", "series req/s"),
                       ("instance_cpu_ms", "Orthanc CPU ms per instance request"),
                       ("series_cpu_ms", "Orthanc CPU ms per series request")):
        sqlite, pg = median("sqlite", key), median("postgresql", key)
        rows.append([title, c.fmt(sqlite, 2), c.fmt(pg, 2), f"{pg / sqlite:.2f}x"])
    c.print_table("Bare Orthanc, medians", ["", "sqlite", "postgresql", "postgresql / sqlite"], rows,
                  [f"{os.cpu_count()} CPUs shared by Orthanc, PostgreSQL and the clients"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
