"""``drimbox xds render``: the ITI-41 SOAP envelope of a lot (KOS + CR), VIHF included, without sending it."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from drimbox.config.sections import IdentitySettings
from drimbox.dmp.settings import DmpSettings
from drimbox.dmp.signing import SigningMaterial

FLAG_NAMES = ("MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REP_LEGAUX")


def register(subparsers) -> None:
    parser = subparsers.add_parser("xds", help="DMP (IHE XDS.b) lots")
    commands = parser.add_subparsers(dest="xds_command", metavar="SUBCOMMAND")
    render = commands.add_parser("render", help="write the SOAP envelope of a lot (documents inline, VIHF signed)")
    render.add_argument("--kos", required=True, help="KOS manifest (DICOM file)")
    render.add_argument("--report", required=True, help="the CR-IMG (CDA R2 XML)")
    render.add_argument("--out", required=True, help="where to write the envelope")
    render.add_argument("--pki", help="test PKI directory made by `drimbox pki init` (signs with its box certificate)")
    render.add_argument("--box", default="box-a", help="box of the test PKI whose signing certificate is used")
    render.add_argument("--flag", action="append", default=[], choices=FLAG_NAMES,
                        help="a MetaDMPMSS confidentiality flag set to Y (repeatable)")
    render.add_argument("--replaces", help="entryUUID of the DocumentEntry this lot replaces (adds RPLC)")
    render.add_argument("--oid-root", help="the box's OID root (default: the demo root)")
    render.add_argument("--json", action="store_true", help="print the lot ids as JSON")
    render.set_defaults(func=run_render)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _signing(args) -> tuple[SigningMaterial, str]:
    if args.pki:
        from drimbox.crypto.pki import load_pki

        index = load_pki(args.pki)
        try:
            entry = index["boxes"][args.box]["signing"]
        except KeyError:
            raise SystemExit(f"drimbox xds render: no box {args.box!r} in the test PKI of {args.pki}") from None
        return SigningMaterial.load(entry["fullchain"], entry["key"]), f"signing certificate of {args.box} ({args.pki})"
    from drimbox.crypto.pki import issue_certificate, make_name, make_root_ca

    root = make_root_ca("THROWAWAY ROOT (drimbox xds render)")
    issued = issue_certificate(root, make_name("THROWAWAY SIGNING KEY", ou="drimbox xds render"), profile="signing")
    material = SigningMaterial(key=issued.key, cert=issued.cert, chain=tuple(issued.chain))
    return material, "a throwaway signing key (no --pki given): the DMP will not accept this lot"


def run_render(args) -> int:
    from drimbox.dmp.lot import build_lot
    from drimbox.dmp.render import render_envelope
    from drimbox.dmp.soap import serialize
    from drimbox.reports.cda import parse_cda

    try:
        kos = Path(args.kos).read_bytes()
        report = parse_cda(Path(args.report).read_bytes())
    except OSError as error:
        print(f"drimbox xds render: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"drimbox xds render: {args.report}: {error}", file=sys.stderr)
        return 1
    signing, signing_note = _signing(args)
    identity = IdentitySettings(oid_root=args.oid_root) if args.oid_root else IdentitySettings()
    settings = DmpSettings()
    now = dt.datetime.now(dt.timezone.utc)
    flags = {name: True for name in args.flag}
    try:
        lot = build_lot(kos, report, flags, settings, identity, signing=signing, now=now,
                        replaces_entry_uuid=args.replaces)
        envelope = render_envelope(lot, report, settings, signing, now)
    except ValueError as error:
        print(f"drimbox xds render: cannot build the lot: {error}", file=sys.stderr)
        return 1
    Path(args.out).write_bytes(serialize(envelope))
    ids = lot.ids
    if args.json:
        print(json.dumps({"out": args.out, "signing": signing_note,
                          "submission_set_unique_id": ids.submission_set_unique_id,
                          "kos_entry_uuid": ids.kos_entry_id, "kos_unique_id": ids.kos_unique_id,
                          "signature_entry_uuid": ids.signature_entry_id,
                          "signature_unique_id": ids.signature_unique_id}, indent=2))
    else:
        print(f"wrote {args.out}: KOS {ids.kos_unique_id} (entry {ids.kos_entry_id}), "
              f"submission set {ids.submission_set_unique_id}; signed with {signing_note}")
    return 0
