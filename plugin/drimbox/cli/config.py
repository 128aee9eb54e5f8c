"""``drimbox config check|reference``: validate a configuration; list every key with its default."""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
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
    reference = actions.add_parser("reference", help="print every key with its type and default (Markdown)")
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

    print("| key | type | default |\n|---|---|---|")
    _rows(Settings, "DRIMbox")
    return 0


def _rows(cls, prefix: str) -> None:
    from drimbox.config.fields import camel

    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        key = f"{prefix}.{field.metadata.get('key') or camel(field.name)}"
        nested = field.metadata.get("section")
        if nested is not None:
            _rows(nested, key)
            continue
        default = field.default if field.default is not dataclasses.MISSING else (
            field.default_factory() if field.default_factory is not dataclasses.MISSING else "(required)")
        kind = getattr(hints[field.name], "__name__", str(hints[field.name])).replace("typing.", "")
        print(f"| `{key}` | {kind} | `{json.dumps(default, default=str, ensure_ascii=False)}` |")
