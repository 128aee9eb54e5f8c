"""``drimbox link``: the viewer link of a published study (for the RIS), or a patient link (tests, demos).

Either asks a running box over its admin entry (``--box-url`` + operator credentials), or reads a box's data
directory (``--data-dir``: its ``orthanc.d/drimbox.json`` and its store), which works with the box stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("link", help="print the viewer link of a published study (or a patient link)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--box-url", help="admin entry of a running box, e.g. https://localhost:8440")
    where.add_argument("--data-dir", type=Path, help="a box's data directory (read directly, box running or not)")
    parser.add_argument("--user", default="operator", help="operator user (with --box-url; default: %(default)s)")
    parser.add_argument("--password-file", type=Path, help="file holding the operator's password (with --box-url)")
    parser.add_argument("--ca", help="CA bundle to verify the box's TLS certificate (default: the system's)")
    parser.add_argument("--study", required=True, help="Study Instance UID")
    parser.add_argument("--patient", action="store_true",
                        help="a link for the patient, carrying a signed access token (needs Viewer.LocalPatientLinks)")
    parser.add_argument("--subject", default="patient", help="the patient token's sub (with --patient)")
    parser.add_argument("--hours", type=float, default=None, help="lifetime of the patient token (with --patient)")
    parser.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        answer = _from_box(args) if args.box_url else _from_data_dir(args)
    except LinkCommandError as error:
        print(f"drimbox link: {error}", file=sys.stderr)
        return error.code
    print(json.dumps(answer, indent=1) if args.json else answer["url"])
    return 0


class LinkCommandError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _from_box(args: argparse.Namespace) -> dict:
    import requests

    if not args.password_file:
        raise LinkCommandError("--box-url needs --password-file", 2)
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = args.ca or True
    session.auth = (args.user, args.password_file.read_text(encoding="utf-8").strip())
    base = args.box_url.rstrip("/") + f"/drimbox/studies/{args.study}"
    try:
        if args.patient:
            body = {"subject": args.subject, **({"hours": args.hours} if args.hours is not None else {})}
            response = session.post(base + "/patient-link", json=body, timeout=30)
        else:
            response = session.get(base + "/viewer-link", timeout=30)
    except requests.RequestException as error:
        raise LinkCommandError(f"cannot reach {args.box_url}: {error}") from error
    if response.status_code != 200:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text[:300]
        raise LinkCommandError(f"the box answered {response.status_code}: {message}")
    return response.json()


def _from_data_dir(args: argparse.Namespace) -> dict:
    from drimbox.config import SettingsError, load_settings
    from drimbox.store import Store
    from drimbox.web.links import LinkService

    config = args.data_dir / "orthanc.d" / "drimbox.json"
    try:
        settings = load_settings(json.loads(config.read_text(encoding="utf-8")))
    except (OSError, ValueError, SettingsError) as error:
        raise LinkCommandError(f"cannot read the box configuration {config}: {error}") from error
    links = LinkService.from_settings(Store.open(settings.store_url), settings)
    try:
        answer = (links.patient_link(args.study, subject=args.subject, hours=args.hours) if args.patient
                  else links.viewer_link(args.study))
    except PermissionError as error:
        raise LinkCommandError(str(error)) from error
    if answer is None:
        raise LinkCommandError(f"no current manifest for study {args.study}: nothing published, no link")
    return answer
