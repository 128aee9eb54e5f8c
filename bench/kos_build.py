"""Bench the KOS manifest builder: build + encode time and peak memory for 1,300 and 10,000 instances.

Run: .venv/bin/python bench/kos_build.py [--runs N]
Targets (from the assignment): 1,300 instances in 0.5 s, 10,000 in 3 s. Ratio < 1 means within target.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

from drimbox.kos.builder import build_manifest, encode_manifest
from drimbox.reports.model import Code, PatientIdentity, Report, StudyOrder
from drimbox.samples.studies import make_study_content

CASES = ((1300, 1, 0.5), (10000, 8, 3.0))  # (instances, series, target seconds)
UID_ROOT = "1.2.826.0.1.3680043.8.498.77"


def _report(study_uid: str) -> Report:
    return Report(
        report_id="1.2.250.1.999.2.1",
        patient=PatientIdentity(ins="279035121518989", ins_oid="1.2.250.1.213.1.4.10", family="DUPONT",
                                given="Marie", sex="F", birth_date="19790315"),
        studies=(StudyOrder(study_uid, "ACC1", "1.2.250.1.999.1.1", "ORD1", "1.2.250.1.999.1.2"),),
        act=Code("24727-0", "2.16.840.1.113883.6.1", "CT Head W contrast IV"),
    )


def _once(report, study) -> tuple[float, int]:
    started = time.perf_counter()
    data = encode_manifest(build_manifest(report, study, retrieve_base="https://db.example.org/wado-rs",
                                          uid_root=UID_ROOT))
    return time.perf_counter() - started, len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'instances':>9} {'series':>6} {'median s':>9} {'min s':>7} {'peak MB':>8} {'KOS MB':>7} "
          f"{'target s':>8} {'ratio':>6}")
    for instances, n_series, target in CASES:
        study = make_study_content(n_series, instances // n_series)
        report = _report(study.study_uid)
        _once(report, study)  # warm-up (imports, caches)
        times = []
        size = 0
        for _ in range(args.runs):
            elapsed, size = _once(report, study)
            times.append(elapsed)
        tracemalloc.start()
        _once(report, study)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        median = statistics.median(times)
        print(f"{instances:>9} {n_series:>6} {median:>9.3f} {min(times):>7.3f} {peak / 1e6:>8.1f} "
              f"{size / 1e6:>7.2f} {target:>8.1f} {median / target:>6.3f}")


if __name__ == "__main__":
    main()
