"""``drimbox config check|reference``: validate a configuration; list every key with its default and meaning."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("config", help="check a DRIMbox configuration, or list every key")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    check = actions.add_parser("check", help="validate the DRIMbox section of an Orthanc configuration file or "
                                             "directory (and the Orthanc keys it depends on)")
    check.add_argument("path", type=Path, help="a JSON file, or a directory of *.json files (merged like Orthanc does)")
    check.add_argument("--production", action="store_true",
                       help="also refuse what a production box must not keep from the demo (simulators, demo "
                            "whitelist, test PKI), as DRIMbox.Deployment \"production\" does")
    check.set_defaults(func=run_check)
    reference = actions.add_parser("reference", help="print every key with its type, default and description "
                                                     "(Markdown)")
    mode = reference.add_mutually_exclusive_group()
    mode.add_argument("--write", type=Path, metavar="DOC",
                      help="replace the generated block of DOC (e.g. docs/configuration.md) instead of printing")
    mode.add_argument("--check", type=Path, metavar="DOC",
                      help="exit 1 when the generated block of DOC differs from the code")
    reference.set_defaults(func=run_reference)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def read_configuration(path: Path) -> dict:
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    merged: dict = {}
    for file in files:
        merged.update(json.loads(file.read_text()))
    return merged


def run_check(args) -> int:
    from drimbox.config import SettingsError, check_deployment, load_settings

    try:
        configuration = read_configuration(args.path)
        settings = load_settings(configuration)
        check_deployment(settings, configuration)
        settings.store_url  # noqa: B018 - validates DataDir/Store
        if args.production and settings.deployment != "production":
            from drimbox.config.production import production_problems

            problems = production_problems(settings)
            if problems:
                raise SettingsError("not ready for production:\n  - " + "\n  - ".join(problems))
    except (SettingsError, ValueError) as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 1
    print("configuration OK")
    return 0


def run_reference(args) -> int:
    from drimbox.config import Settings
    from drimbox.config.reference import StaleReference, generated_block, render, with_block

    table = render(Settings)
    if args.write is None and args.check is None:
        print(table)
        return 0
    path = args.write or args.check
    try:
        document = path.read_text()
        if args.write is not None:
            path.write_text(with_block(document, table))
            print(f"{path}: reference written")
            return 0
        if generated_block(document) != table:
            raise StaleReference(f"{path} is stale: run drimbox config reference --write {path}")
    except (OSError, StaleReference) as error:
        print(f"configuration reference: {error}", file=sys.stderr)
        return 1
    print(f"{path}: reference up to date")
    return 0
