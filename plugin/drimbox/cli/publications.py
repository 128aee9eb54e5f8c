"""``drimbox publications list|show|retry|cancel``: the DMP publication queue of a running box.

Talks to the box's operator (admin) entry over HTTPS with the operator's password, like an operator's browser:
either ``--box-url URL --password-file FILE [--user NAME] [--ca-bundle PEM]``, or ``--data-dir DIR`` naming the
data directory of a box started by the launcher (its ``operator-password`` file, its CA bundle and the admin port
of its generated nginx configuration). Explicit options win over what the data directory gives.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

DEFAULT_USER = "operator"
ENV_URL = "DRIMBOX_ADMIN_URL"


class CliError(RuntimeError):
    pass


def register(subparsers) -> None:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("box")
    where.add_argument("--box-url", default=None,
                       help=f"the box's admin entry, e.g. https://localhost:8443 (env {ENV_URL})")
    where.add_argument("--user", default=None, help=f"operator user name (default: {DEFAULT_USER})")
    where.add_argument("--password-file", type=Path, default=None, help="file holding the operator's password")
    where.add_argument("--ca-bundle", default=None, help="CA bundle verifying the box's TLS certificate")
    where.add_argument("--data-dir", type=Path, default=None,
                       help="data directory of a box started by the launcher (URL, password and CA from there)")
    where.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds (default 30)")

    parser = subparsers.add_parser(
        "publications", help="see, retry or cancel the box's DMP publications",
        description="The DMP publication queue of a running box, through its operator entry.")
    actions = parser.add_subparsers(dest="publications_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", parents=[common], help="list publications (newest first)")
    listing.add_argument("--state", choices=("queued", "done", "failed", "cancelled", "superseded", "skipped"),
                         help="only this state")
    listing.add_argument("--study", help="only this Study Instance UID")
    listing.add_argument("--limit", type=int, default=200)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=run_list)

    for name, helptext, func in (("show", "show one publication", run_show),
                                 ("retry", "run a failed, cancelled or waiting publication again now", run_retry),
                                 ("cancel", "cancel a waiting or failed publication", run_cancel)):
        action = actions.add_parser(name, parents=[common], help=helptext)
        action.add_argument("id", type=int, help="publication id (see 'list')")
        action.add_argument("--json", action="store_true", help="print JSON")
        action.set_defaults(func=func)


# --- connection -----------------------------------------------------------------------------------------


@dataclass
class Target:
    url: str
    user: str
    password: str
    ca_bundle: str | None
    timeout: float

    def session(self):
        import requests

        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override verify
        session.auth = (self.user, self.password)
        session.verify = self.ca_bundle if self.ca_bundle else True
        return session

    def call(self, method: str, path: str, **params):
        import requests

        try:
            response = self.session().request(method, self.url + path, params=params or None, timeout=self.timeout)
        except requests.exceptions.SSLError as error:
            raise CliError(f"TLS error talking to {self.url} (wrong --ca-bundle?): {error}") from error
        except requests.RequestException as error:
            raise CliError(f"cannot reach the box at {self.url}: {error}") from error
        if response.status_code == 401:
            raise CliError(f"the box refused user {self.user!r}: wrong user or password (401)")
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text.strip()[:500]}
        if response.status_code >= 400:
            message = body.get("error") if isinstance(body, dict) else None
            raise CliError(message or f"the box answered {response.status_code}")
        return body


def target_of(args: argparse.Namespace) -> Target:
    url, password, ca_bundle = args.box_url or os.environ.get(ENV_URL), None, args.ca_bundle
    if args.data_dir is not None:
        data = args.data_dir
        if not data.is_dir():
            raise CliError(f"--data-dir {data} is not a directory")
        url = url or _admin_url_of(data)
        ca_bundle = ca_bundle or _ca_bundle_of(data)
        if args.password_file is None:
            password = _read_password(data / "operator-password")
    if args.password_file is not None:
        password = _read_password(args.password_file)
    if not url:
        raise CliError("say which box: --box-url URL (or --data-dir DIR)")
    if password is None:
        raise CliError("the operator's password is needed: --password-file FILE (or --data-dir DIR)")
    return Target(url.rstrip("/"), args.user or DEFAULT_USER, password, ca_bundle, args.timeout)


def _read_password(path: Path) -> str:
    try:
        password = path.read_text().strip()
    except OSError as error:
        raise CliError(f"cannot read the password file {path}: {error.strerror or error}") from error
    if not password:
        raise CliError(f"the password file {path} is empty")
    return password


_LISTEN = re.compile(r"^\s*listen\s+(\S+?):(\d+)\s+ssl\b", re.MULTILINE)
_ADMIN_MARK = "/_drimbox_operator_authz"  # the operator access decision, only in the admin server block


def _admin_url_of(data: Path) -> str:
    """The admin entry of a launcher-made box: the nginx server block that asks for the operator's login."""
    conf = data / "nginx.conf"
    try:
        blocks = conf.read_text().split("server {")
    except OSError as error:
        raise CliError(f"{conf} cannot be read ({error.strerror}); give --box-url") from error
    match = next((m for m in (_LISTEN.search(b) for b in blocks if _ADMIN_MARK in b) if m), None)
    if match is None:
        raise CliError(f"no operator entry found in {conf}; give --box-url")
    host = match.group(1)
    if host in ("0.0.0.0", "*", "[::]", "127.0.0.1"):
        host = "localhost"
    return f"https://{host}:{match.group(2)}"


def _ca_bundle_of(data: Path) -> str | None:
    own = data / "pki" / "ca-bundle.pem"
    if own.exists():
        return str(own)
    try:  # a box started with a shared PKI names its CA bundle in its generated configuration
        section = json.loads((data / "orthanc.d" / "drimbox.json").read_text())["DRIMbox"]
    except (OSError, ValueError, KeyError):
        return None
    for key in ("Dmp", "Psc"):
        bundle = (section.get(key) or {}).get("CaBundle")
        if bundle and Path(bundle).exists():
            return bundle
    return None


# --- commands --------------------------------------------------------------------------------------------


def _run(args: argparse.Namespace, action) -> int:
    try:
        return action(target_of(args))
    except CliError as error:
        print(f"drimbox publications: {error}", file=sys.stderr)
        return 1


def run_list(args: argparse.Namespace) -> int:
    def action(target: Target) -> int:
        params = {"limit": args.limit}
        if args.state:
            params["state"] = args.state
        if args.study:
            params["study"] = args.study
        jobs = target.call("GET", "/drimbox/publications", **params)
        if args.json:
            print(json.dumps(jobs, indent=1))
            return 0
        if not jobs:
            print("no publication")
            return 0
        header = ("ID", "STATE", "ACTION", "TRIES", "UPDATED", "STUDY", "DMP ENTRY / LAST ERROR")
        rows = [(str(j["id"]), j["state"], j["action"], str(j["attempts"]), _time(j.get("updated_at")),
                 _short(j["study_uid"], 28), j.get("last_error") or j.get("dmp_entry_uuid") or "") for j in jobs]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
        for row in [header, *rows]:
            cells = zip(row[:-1], widths, strict=True)
            print("  ".join(value.ljust(width) for value, width in cells) + "  " + row[-1])
        return 0
    return _run(args, action)


def _job_command(method: str, suffix: str, done: str = ""):
    """show / retry / cancel: one call on one publication, then the job printed."""
    def command(args: argparse.Namespace) -> int:
        def action(target: Target) -> int:
            job = target.call(method, f"/drimbox/publications/{args.id}{suffix}")
            if done and not args.json:
                print(f"publication {args.id} {done}")
            _print_job(job, args.json)
            return 0
        return _run(args, action)
    return command


run_show = _job_command("GET", "")
run_retry = _job_command("POST", "/retry", "queued again")
run_cancel = _job_command("POST", "/cancel", "cancelled")


_FIELDS = (("id", "id"), ("state", "state"), ("action", "action"), ("study_uid", "study"), ("kos_uid", "KOS"),
           ("attempts", "attempts"), ("last_error", "last error"), ("dmp_entry_uuid", "DMP entry"),
           ("replaces_entry_uuid", "replaces entry"), ("created_at", "created"), ("updated_at", "updated"),
           ("next_attempt_at", "next attempt"), ("done_at", "finished"))


def _print_job(job: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(job, indent=1))
        return
    for key, label in _FIELDS:
        value = job.get(key)
        if value in (None, ""):
            continue
        if key.endswith("_at"):
            value = _time(value)
        print(f"{label + ':':16} {value}")


def _time(value) -> str:
    if not value:
        return "-"
    return datetime.fromtimestamp(float(value)).strftime("%Y-%m-%d %H:%M:%S")


def _short(value: str, width: int) -> str:
    return value if len(value) <= width else "…" + value[-(width - 1):]
