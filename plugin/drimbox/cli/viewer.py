"""``drimbox viewer``: fetch the pinned OHIF dist and write its app-config.js."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from drimbox.web.ohif import DEFAULT_LOCK, REPO_VIEWER_DIR, OhifFetchError, fetch_ohif, render_app_config


def register(subparsers) -> None:
    viewer = subparsers.add_parser("viewer", help="the OHIF viewer: fetch it, configure it")
    commands = viewer.add_subparsers(dest="viewer_command", metavar="ACTION", required=True)

    fetch = commands.add_parser("fetch", help="npm pack the locked @ohif/app, verify its sha512, unpack dist/")
    fetch.add_argument("--dest", type=Path, default=REPO_VIEWER_DIR / "dist",
                       help="where dist/ goes (default: %(default)s)")
    fetch.add_argument("--lock", type=Path, default=DEFAULT_LOCK, help="the lock file (default: %(default)s)")
    fetch.add_argument("--cache", type=Path, default=None,
                       help="where the tarball is kept (default: next to --dest, in cache/)")
    fetch.add_argument("--keep-ai-runtime", action="store_true",
                       help="also unpack ort/ (about 136 MB, only used by OHIF's optional AI tools)")
    fetch.add_argument("--json", action="store_true", help="print the result as JSON")
    fetch.set_defaults(func=run_fetch)

    config = commands.add_parser("config", help="print (or write) app-config.js for Orthanc DICOMweb")
    config.add_argument("--dicomweb-root", default="/dicom-web",
                        help="same-origin path of DICOMweb on the viewer host (default: %(default)s)")
    config.add_argument("--friendly-name", default="DRIMbox")
    config.add_argument("--show-study-list", action="store_true")
    config.add_argument("--out", type=Path, default=None, help="file to write (default: standard output)")
    config.set_defaults(func=run_config)


def run_fetch(args: argparse.Namespace) -> int:
    try:
        dest = fetch_ohif(args.dest, args.lock, args.cache, keep_ai_runtime=args.keep_ai_runtime)
    except OhifFetchError as error:
        print(f"drimbox viewer fetch: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"dest": str(dest), "lock": str(args.lock)}))
    else:
        print(f"OHIF dist ready in {dest}")
    return 0


def run_config(args: argparse.Namespace) -> int:
    try:
        text = render_app_config(dicomweb_root=args.dicomweb_root, friendly_name=args.friendly_name,
                                 show_study_list=args.show_study_list)
    except ValueError as error:
        print(f"drimbox viewer config: {error}", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0
