"""``drimbox pki init``: write a test PKI (CAs, box, server and whitelist-signer certificates, CRLs)."""

from __future__ import annotations

import argparse
import json

from drimbox.crypto.pki import create_test_pki


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pki", help="test PKI for development and demos")
    actions = parser.add_subparsers(dest="pki_command", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="create (or complete) a test PKI in a directory")
    init.add_argument("--out", required=True, help="directory receiving the PEM files and pki.json")
    init.add_argument("--host", action="append", dest="hosts", metavar="HOST",
                      help="server certificate SAN (repeatable; default localhost and 127.0.0.1)")
    init.add_argument("--box", action="append", dest="boxes", metavar="NAME",
                      help="box name (repeatable; default box-a and box-b)")
    init.add_argument("--crl-url", default=None, help="CRL distribution point URL (default: file URL of the CRL)")
    init.add_argument("--force", action="store_true", help="regenerate every file")
    init.add_argument("--json", action="store_true", help="print the pki.json index")
    init.set_defaults(func=run_init)


def run_init(args: argparse.Namespace) -> int:
    index = create_test_pki(
        args.out,
        hosts=tuple(args.hosts or ("localhost", "127.0.0.1")),
        boxes=tuple(args.boxes or ("box-a", "box-b")),
        crl_url=args.crl_url,
        force=args.force,
    )
    if args.json:
        print(json.dumps(index, indent=2))
        return 0
    print(f"Test PKI in {index['out_dir']} (index: pki.json)")
    print(f"  CA bundle        {index['ca_bundle']}")
    print(f"  CRLs (nginx)     {index['crl_bundle']}")
    print(f"  whitelist signer {index['whitelist_signer']['cert']}")
    for name, box in index["boxes"].items():
        print(f"  {name:<16} structure {box['structure_id']}  auth DN {box['auth']['subject']}")
    for name, server in index["servers"].items():
        print(f"  server {name:<9} {server['fullchain']}")
    return 0
