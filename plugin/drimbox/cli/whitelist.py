"""``drimbox whitelist verify|sign``: check a signed DRIM-M whitelist, or sign one for tests and demos."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from drimbox.crypto.keys import KeyLoadError, load_certificate_chain, load_key_and_cert
from drimbox.samples.whitelist import DEFAULT_NAMESPACE, make_whitelist
from drimbox.trust.whitelist import DEFAULT_SIGNER_CN, DEFAULT_SIGNER_OU, verify_whitelist


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("whitelist", help="verify or sign a DRIM-M whitelist")
    actions = parser.add_subparsers(dest="whitelist_command", metavar="ACTION", required=True)

    verify = actions.add_parser("verify", help="exit 0 when the list is acceptable, 1 otherwise")
    verify.add_argument("file", help="the signed list (XML)")
    verify.add_argument("--trust-anchor", action="append", required=True, metavar="PEM",
                        help="root certificate(s) the signer must chain to (repeatable)")
    verify.add_argument("--crl", action="append", metavar="FILE",
                        help="CRL (DER or PEM) of the signer's issuer (repeatable); "
                             "without it revocation is not checked")
    verify.add_argument("--signer-cn", default=DEFAULT_SIGNER_CN)
    verify.add_argument("--signer-ou", default=DEFAULT_SIGNER_OU)
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=run_verify)

    sign = actions.add_parser("sign", help="sign a list of domains (tests and demos)")
    sign.add_argument("--domains", required=True,
                      help="JSON file (or inline JSON) with a list of {id, db, vi, name, operator_dn}")
    sign.add_argument("--cert", required=True, help="signer certificate (PEM, may hold the chain and key) or .p12")
    sign.add_argument("--key", default="", help="signer private key (PEM) when not in --cert")
    sign.add_argument("--password-file", default="", help="file holding the key or PKCS#12 password")
    sign.add_argument("--chain", action="append", default=[], metavar="PEM",
                      help="certificates to add to KeyInfo after the signer: intermediate, then root")
    sign.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    sign.add_argument("--out", required=True, help="output file")
    sign.set_defaults(func=run_sign)


def run_verify(args: argparse.Namespace) -> int:
    try:
        anchors = [cert for path in args.trust_anchor for cert in load_certificate_chain(path)]
        crls = [Path(path).read_bytes() for path in args.crl or []]
        xml = Path(args.file).read_bytes()
    except (KeyLoadError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    verdict = verify_whitelist(xml, anchors, crl=crls or None, signer_cn=args.signer_cn, signer_ou=args.signer_ou)
    if args.json:
        print(json.dumps(verdict.to_json(), indent=2, ensure_ascii=False))
        return 0 if verdict.valid else 1
    print(("ACCEPTED: " if verdict.valid else "REFUSED: ") + verdict.reason)
    if verdict.signer:
        print(f"  signer       {verdict.signer}")
    if verdict.generated_at:
        print(f"  generated at {verdict.generated_at.isoformat()}")
    for domain in verdict.domains:
        print(f"  {domain.id}: db={domain.db} vi={domain.vi} operator={domain.operator_dn}")
    return 0 if verdict.valid else 1


def run_sign(args: argparse.Namespace) -> int:
    try:
        text = args.domains if args.domains.lstrip().startswith("[") else Path(args.domains).read_text()
        domains = json.loads(text)
        key, cert, chain = load_key_and_cert(args.cert, args.key, args.password_file)
        for path in args.chain:
            chain += [c for c in load_certificate_chain(path) if c not in chain and c != cert]
    except (KeyLoadError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not isinstance(domains, list):
        print("error: --domains must be a JSON list of domains", file=sys.stderr)
        return 1
    try:
        xml = make_whitelist(domains, signer_key=key, signer_cert=cert, chain=chain, namespace=args.namespace)
    except (KeyError, TypeError) as error:
        print(f"error: a domain lacks a field or has an unknown one: {error}", file=sys.stderr)
        return 1
    Path(args.out).write_bytes(xml)
    print(f"signed whitelist with {len(domains)} domain(s) written to {args.out}")
    return 0
