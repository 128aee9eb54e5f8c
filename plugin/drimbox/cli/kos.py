"""``drimbox kos build`` and ``drimbox kos dump``: KOS manifests without a server."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    kos = subparsers.add_parser("kos", help="build or read KOS manifests")
    commands = kos.add_subparsers(dest="kos_command", metavar="ACTION", required=True)

    build = commands.add_parser(
        "build", help="build the manifest of every study of a report found in a DICOM folder",
        description="Build one KOS manifest per study of the report found in DIR. Refuses (exit 1) when "
                    "the report and the images disagree or when DIR holds no study of the report. With "
                    "several studies, --out FILE becomes FILE-1.dcm, FILE-2.dcm...; an existing "
                    "directory receives <study UID>.kos.dcm files.")
    build.add_argument("--report", required=True, type=Path, help="CR-IMG CDA (XML)")
    build.add_argument("--dicom-dir", required=True, type=Path, help="folder of DICOM files (searched recursively)")
    build.add_argument("--retrieve-base", required=True,
                       help="public WADO-RS base of this box, e.g. https://db.example.org/wado-rs")
    build.add_argument("--out", required=True, type=Path, help="output file (or existing directory)")
    build.add_argument("--uid-root", default=None, help="OID root of the new UIDs (default: the box default)")
    build.add_argument("--institution", default="", help="InstitutionName written in the manifest")
    build.add_argument("--json", action="store_true", help="print a JSON summary")
    build.set_defaults(func=run_build)

    dump = commands.add_parser("dump", help="print what a KOS manifest references")
    dump.add_argument("file", type=Path)
    dump.add_argument("--json", action="store_true")
    dump.set_defaults(func=run_dump)


def run_build(args: argparse.Namespace) -> int:
    from drimbox.config.sections import IdentitySettings
    from drimbox.kos.builder import ManifestError, build_manifest, encode_manifest, referenced_series
    from drimbox.kos.consistency import find_conflicts
    from drimbox.kos.files import studies_from_files
    from drimbox.reports.cda import parse_cda

    try:
        report = parse_cda(args.report.read_bytes())
    except OSError as exc:
        return _fail(f"cannot read the report: {exc}")
    except ValueError as exc:
        return _fail(f"unusable report {args.report}: {exc}")
    if not args.dicom_dir.is_dir():
        return _fail(f"{args.dicom_dir} is not a directory")
    found = studies_from_files([args.dicom_dir])
    studies = [s for s in found if s.study_uid in report.study_uids]
    if not studies:
        return _fail(f"{args.dicom_dir} holds no study of report {report.report_id} "
                     f"(report: {', '.join(report.study_uids) or 'none'}; "
                     f"folder: {', '.join(s.study_uid for s in found) or 'no DICOM instance'})")
    conflicts = [problem for study in studies for problem in find_conflicts(report, study)]
    if conflicts:
        return _fail("the report and the images disagree:\n  " + "\n  ".join(conflicts))

    uid_root = args.uid_root or IdentitySettings().oid_root
    results = []
    for position, study in enumerate(studies, start=1):
        try:
            ds = build_manifest(report, study, retrieve_base=args.retrieve_base, uid_root=uid_root,
                                institution_name=args.institution)
        except ManifestError as exc:
            return _fail(str(exc))
        referenced = referenced_series(study)
        out = _out_path(args.out, study.study_uid, position, len(studies))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(encode_manifest(ds))
        summary = {
            "kos_sop_instance_uid": str(ds.SOPInstanceUID),
            "study_uid": study.study_uid,
            "series": len(referenced),
            "instances": sum(len(s.instances) for s in referenced),
            "out": str(out),
        }
        results.append(summary)
        if not args.json:
            print(f"{out}: KOS {summary['kos_sop_instance_uid']} for study {study.study_uid}, "
                  f"{summary['series']} series, {summary['instances']} instances")
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    return 0


def run_dump(args: argparse.Namespace) -> int:
    from drimbox.kos.reader import read_manifest

    try:
        summary = read_manifest(args.file.read_bytes())
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read {args.file}: {exc}")
    if args.json:
        print(json.dumps(summary.to_json(), indent=2, ensure_ascii=False))
        return 0
    print(f"KOS {summary.sop_instance_uid} (title {summary.title})")
    print(f"Patient {summary.patient_id} ({summary.patient_id_issuer}) {summary.patient_name} "
          f"{summary.patient_birth_date} {summary.patient_sex}")
    print(f"Study {summary.study_uid}, accessions: {', '.join(a for a in summary.accessions if a) or '-'}")
    for series in summary.series:
        print(f"  series {series.series_uid}: {len(series.instances)} instance(s) {series.retrieve_url}")
    if summary.description:
        print("Description:")
        for line in summary.description.splitlines():
            print(f"  {line}")
    return 0


def _out_path(out: Path, study_uid: str, position: int, count: int) -> Path:
    if out.is_dir():
        return out / f"{study_uid}.kos.dcm"
    if count == 1:
        return out
    return out.with_name(f"{out.stem}-{position}{out.suffix or '.dcm'}")


def _fail(message: str) -> int:
    print(f"drimbox kos: {message}", file=sys.stderr)
    return 1
