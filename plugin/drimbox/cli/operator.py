"""``drimbox operator passwd``: set an operator's password in the admin entry's users file (``Operator.UsersFile``).

The password is read from ``--password-file`` or, without it, asked twice on the terminal (or one line on stdin
when stdin is not a terminal). Only its scrypt hash is written; the file is created with mode 0600. A running
box reads the file again when it changes.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from pathlib import Path

from drimbox.trust.operator_password import hash_password

USER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MIN_LENGTH = 12


def register(subparsers) -> None:
    parser = subparsers.add_parser("operator", help="operator accounts of the admin entry")
    actions = parser.add_subparsers(dest="operator_command", metavar="ACTION", required=True)
    passwd = actions.add_parser("passwd", help="set (or add) an operator's password in the users file")
    passwd.add_argument("--users-file", type=Path, required=True, help="the file named by DRIMbox.Operator.UsersFile")
    passwd.add_argument("--user", default="operator", help="user name (default: operator)")
    passwd.add_argument("--password-file", type=Path, help="read the password from this file's first line")
    passwd.set_defaults(func=run_passwd)


def run_passwd(args) -> int:
    if not USER_NAME.match(args.user):
        print(f"error: user names are 1-64 letters, digits, '.', '_' or '-': {args.user!r}", file=sys.stderr)
        return 2
    password = _read_password(args.password_file)
    if len(password) < MIN_LENGTH:
        print(f"error: the password must have at least {MIN_LENGTH} characters", file=sys.stderr)
        return 2
    path: Path = args.users_file
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if line.partition(":")[0] != args.user]
    kept.append(f"{args.user}:{hash_password(password)}")
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write("\n".join(kept) + "\n")
    os.replace(temporary, path)
    print(f"password of {args.user!r} set in {path}")
    return 0


def _read_password(password_file: Path | None) -> str:
    if password_file is not None:
        lines = password_file.read_text().splitlines()
        return lines[0] if lines else ""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        print("error: the two passwords differ", file=sys.stderr)
        return ""
    return first
