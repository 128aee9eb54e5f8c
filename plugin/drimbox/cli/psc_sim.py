"""``drimbox psc-sim``: run the Pro Santé Connect simulator until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "psc-sim",
        help="run a local Pro Santé Connect simulator (OpenID Connect provider)",
        description="A local Pro Santé Connect for development and demos. Without --clients, any client_id "
        "with a loopback redirect URI is accepted with any secret: keep it on the machine.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8446, help="port to listen on (default 8446; 0 = any free)")
    parser.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--professionals", type=Path, help="JSON file: list of professionals to offer at login")
    parser.add_argument("--clients", type=Path,
                        help='JSON file: {"<client_id>": {"secret": "...", "redirect_uris": ["..."]}}')
    parser.add_argument("--token-lifetime", type=int, default=300, help="access/ID token lifetime in seconds")
    parser.add_argument("--public-url", help="base URL as clients see it (behind a proxy); may contain {port}")
    parser.add_argument("--wallet-url", help="base URL of the authorization endpoint, like PSC's wallet host")
    parser.set_defaults(func=run_psc_sim)


def run_psc_sim(args: argparse.Namespace) -> int:
    from drimbox.sim.psc import PscSimulator
    from drimbox.sim.psc.professionals import ProfessionalError

    if bool(args.tls_cert) != bool(args.tls_key):
        print("psc-sim: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    try:
        professionals = _read_json(args.professionals, list) if args.professionals else None
        clients = _read_json(args.clients, dict) if args.clients else None
        simulator = PscSimulator(
            host=args.host, port=args.port, tls_cert=args.tls_cert, tls_key=args.tls_key,
            professionals=professionals, clients=clients, token_lifetime=args.token_lifetime,
            public_url=args.public_url, wallet_url=args.wallet_url,
        ).start()
    except (OSError, ValueError, ProfessionalError) as exc:
        print(f"psc-sim: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"PSC simulator issuer: {simulator.issuer}", flush=True)
    print(f"discovery: {simulator.issuer}/.well-known/wallet-openid-configuration", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
    return 0


def _read_json(path: Path, expected: type) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, expected):
        raise ValueError(f"{path} must hold a JSON {'list' if expected is list else 'object'}")
    return data
