"""``drimbox dmp-sim``: run the strict DMP simulator until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dmp-sim", help="run the DMP (XDS.b) simulator",
                                   description="Strict DMP simulator: ITI-41/18/43/57, patients, habilitations; "
                                               "admin JSON API under <url>/_sim/.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8445)
    parser.add_argument("--data-dir", default=os.path.join(os.path.expanduser("~"), ".drimbox", "dmp-sim"),
                        help="SQLite state directory (default: %(default)s)")
    parser.add_argument("--base-path", default="/dmp")
    parser.add_argument("--tls-cert", help="server certificate (PEM, may hold the chain); enables HTTPS")
    parser.add_argument("--tls-key", help="server private key (PEM)")
    parser.add_argument("--client-ca", help="CA bundle; when given, clients must present a certificate it issued")
    parser.add_argument("--signing-ca", help="trust anchors (PEM) for the VIHF and DSG signing certificates; "
                                             "without it every signed request is refused")
    parser.add_argument("--json", action="store_true", help="print the start-up line as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from drimbox.sim.dmp import DmpSimulator

    for option in ("tls_cert", "tls_key", "client_ca", "signing_ca"):
        path = getattr(args, option)
        if path and not os.path.isfile(path):
            print(f"dmp-sim: --{option.replace('_', '-')} {path}: no such file", file=sys.stderr)
            return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        print("dmp-sim: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if args.client_ca and not args.tls_cert:
        print("dmp-sim: --client-ca needs --tls-cert/--tls-key (client certificates need TLS)", file=sys.stderr)
        return 2
    try:
        sim = DmpSimulator(args.data_dir, host=args.host, port=args.port, tls_cert=args.tls_cert,
                           tls_key=args.tls_key, client_ca=args.client_ca, signing_ca=args.signing_ca,
                           base_path=args.base_path)
        sim.start()
    except (OSError, ValueError) as exc:
        print(f"dmp-sim: cannot start: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.json:
        import json
        print(json.dumps({"url": sim.url, "port": sim.port, "data_dir": args.data_dir}), flush=True)
    else:
        print(f"DMP simulator listening on {sim.url} (data in {args.data_dir})", flush=True)
    try:
        stop.wait()
    finally:
        sim.stop()
    return 0
