"""``drimbox backup`` (while the box runs) and ``drimbox restore`` (into a stopped box); see docs/operations.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers) -> None:
    backup = subparsers.add_parser(
        "backup", help="copy the store and every DICOM instance of a running box into a new directory",
        description="Backs up a running box: its store (SQLite online backup) then every instance Orthanc holds "
                    "(read through the operator entry), and a copy of its configuration directory.")
    backup.add_argument("out", type=Path, help="the backup directory to create (must not exist)")
    _where(backup)
    backup.add_argument("--box-url", default=None, help="the box's admin (operator) entry, e.g. https://localhost:8440")
    backup.add_argument("--user", default=None, help="operator user name (default operator)")
    backup.add_argument("--password-file", type=Path, default=None, help="file holding the operator's password")
    backup.add_argument("--ca-bundle", default=None, help="CA bundle verifying the admin entry's certificate")
    backup.add_argument("--timeout", type=float, default=120.0, help="HTTP timeout in seconds (default 120)")
    backup.set_defaults(func=run_backup)

    restore = subparsers.add_parser(
        "restore", help="put a backup back into a stopped box (store, then Orthanc's index rebuilt by Orthanc)")
    restore.add_argument("backup", type=Path, help="a directory written by drimbox backup")
    _where(restore)
    restore.add_argument("--force", action="store_true", help="replace the data the box holds now")
    restore.set_defaults(func=run_restore)


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="the box's Orthanc configuration directory (production: /etc/drimbox/orthanc.d)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory of a box started by the launcher (its orthanc.d, password and CA)")


def _configuration(args: argparse.Namespace) -> tuple[Path, dict[str, Any], str]:
    from drimbox.cli.config import read_configuration
    from drimbox.config import load_settings

    config_dir = args.config or (args.data_dir / "orthanc.d" if args.data_dir else None)
    if config_dir is None:
        raise SystemExit("say which box: --config DIR (or --data-dir DIR)")
    configuration = read_configuration(config_dir)
    return config_dir, configuration, load_settings(configuration).store_url


class _AdminEntry:
    """Orthanc's REST API as the operator sees it, through the admin entry."""

    def __init__(self, target) -> None:
        self.target = target
        self.session = target.session()

    def json(self, path: str, **params: Any) -> Any:
        return self.target.call("GET", path, **params)

    def file(self, path: str) -> bytes | None:
        from drimbox.backup.archive import BackupError

        answer = self.session.get(self.target.url + path, timeout=self.target.timeout)
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise BackupError(f"{path}: the box answered {answer.status_code}")
        return answer.content


def _progress(label: str):
    interactive = sys.stderr.isatty()

    def show(done: int, total: int) -> None:
        if interactive and (done == total or done % 100 == 0):
            print(f"\r{label}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
    return show


def run_backup(args: argparse.Namespace) -> int:
    from drimbox.backup.archive import BackupError, backup
    from drimbox.cli.publications import CliError, target_of

    try:
        config_dir, _, store_url = _configuration(args)
        report = backup(_AdminEntry(target_of(args)), store_url, args.out, config_dir=config_dir,
                        progress=_progress("instances"))
    except (BackupError, CliError, ValueError) as error:
        print(f"drimbox backup: {error}", file=sys.stderr)
        return 1
    print(f"backup written to {report.out}: the store and {report.instances} instances "
          f"({report.bytes / 1e6:.1f} MB) in {report.seconds:.1f} s")
    if report.vanished:
        print(f"{len(report.vanished)} instances were deleted from Orthanc while the backup ran (not in it)")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from drimbox.backup.archive import BackupError
    from drimbox.backup.restore import restore

    try:
        _, configuration, store_url = _configuration(args)
        report = restore(args.backup, configuration, store_url, force=args.force, progress=_progress("imported"))
    except (BackupError, ValueError) as error:
        print(f"drimbox restore: {error}", file=sys.stderr)
        return 1
    print(f"restored the store and {report.instances} instances ({report.studies} studies) in "
          f"{report.seconds:.1f} s; start the box: it reads Orthanc's rebuilt change log from the start")
    return 0
