"""``drimbox hl7 parse|send|sample``: inspect, send and generate the RIS messages carrying reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from drimbox.reports.model import ReportMessage, StudyOrder


def register(subparsers) -> None:
    parser = subparsers.add_parser("hl7", help="HL7 v2 report messages: parse, send over MLLP, generate samples")
    commands = parser.add_subparsers(dest="hl7_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    parse = commands.add_parser("parse", help="parse an HL7 message file (exit 0 when usable)")
    parse.add_argument("file", help="message file ('-' for standard input); MLLP framing is tolerated")
    parse.add_argument("--json", action="store_true", help="print the parsed message as JSON")
    parse.set_defaults(func=_parse)

    send = commands.add_parser("send", help="send an HL7 message over MLLP and print the ACK (exit 0 on AA)")
    send.add_argument("file", help="message file ('-' for standard input)")
    send.add_argument("--host", default="127.0.0.1")
    send.add_argument("--port", type=int, required=True)
    send.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the ACK (default 10)")
    send.set_defaults(func=_send)

    sample = commands.add_parser("sample", help="write a sample message (demo patient) to standard output")
    sample.add_argument("--study-uid", required=True)
    sample.add_argument("--accession", default="", help="accession number (required except for --type omi without it)")
    sample.add_argument("--accession-issuer", default=None, help="OID of the accession number issuer")
    sample.add_argument("--type", choices=("oru", "mdm", "omi"), default="oru",
                        help="oru (ORU^R01), mdm (MDM^T02/T10/T04) or omi (OMI^O23 cancellation)")
    sample.add_argument("--event", choices=("publish", "replace", "withdraw"), default="publish")
    sample.add_argument("--report-id", default=None, help='report id, "root" or "root^extension" (default: new UID)')
    sample.add_argument("--replaces", default=None, help="id of the report replaced (replace event)")
    sample.add_argument("--modality", action="append", default=None, help="modality (repeatable, default CT)")
    sample.add_argument("--control-id", default=None)
    sample.add_argument("--lf", action="store_true", help="end segments with LF instead of CR (easier to read)")
    sample.add_argument("--output", "-o", default=None, help="write to this file instead of standard output")
    sample.set_defaults(func=_sample)


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    return Path(name).read_bytes()


def _parse(args: argparse.Namespace) -> int:
    from drimbox.reports.hl7 import parse_message

    try:
        raw = _read(args.file)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    message = parse_message(raw)
    if args.json:
        print(json.dumps(message.to_json(), indent=2, ensure_ascii=False))
    else:
        print(_describe(message))
    return 0 if message.usable else 1


def _describe(message: ReportMessage) -> str:
    lines = [f"{message.message_type or '(no type)'} control id {message.control_id or '(none)'}: "
             f"{message.event.value if message.event else 'no event'} -> "
             f"{'usable' if message.usable else 'NOT usable'}"]
    if message.report_id:
        lines.append(f"report      {message.report_id}" + (
            f" (replaces {message.replaces_report_id})" if message.replaces_report_id else ""))
    p = message.patient
    if p.ins or p.ipp or p.family:
        lines.append(f"patient     INS {p.ins or '-'} ({p.ins_oid or '-'}) "
                     f"{'validated' if p.ins_validated else 'not validated'}"
                     f", IPP {p.ipp or '-'}, {p.family} {p.given}, {p.sex or '?'}, born {p.birth_date or '?'}"
                     + (f" in {p.birthplace}" if p.birthplace else ""))
    for study in message.studies:
        lines.append(f"study       {study.study_uid or '-'} accession {study.accession or '-'}"
                     f" order {study.order or '-'}")
    if message.modalities:
        lines.append(f"modalities  {', '.join(message.modalities)}")
    if message.report:
        report = message.report
        lines.append(f"author      {report.author.given} {report.author.family} ({report.author.id_nat}), "
                     f"{report.organization.name} ({report.organization.id})")
    if message.sending_structure:
        lines.append(f"sender      PRT-8 {message.sending_structure}")
    if message.flags:
        lines.append("flags       " + " ".join(f"{k}={'Y' if v else 'N'}" for k, v in message.flags.items()))
    if message.viewer_partial_url:
        lines.append(f"viewer URL  {message.viewer_partial_url}")
    lines += [f"warning: {w}" for w in message.warnings]
    lines += [f"error: {e}" for e in message.errors]
    return "\n".join(lines)


def _send(args: argparse.Namespace) -> int:
    from drimbox.reports.ack import read_ack
    from drimbox.reports.mllp import MllpError, send_message

    try:
        raw = _read(args.file)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        answer = send_message(args.host, args.port, raw, timeout=args.timeout)
    except MllpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    code, _control_id, text = read_ack(answer)
    print(f"{code or '??'} {text}".rstrip())
    return 0 if code == "AA" else 1


def _sample(args: argparse.Namespace) -> int:
    from drimbox.samples import reports as samples

    separator = "\n" if args.lf else "\r"
    issuer = args.accession_issuer or samples.DEMO_ACCESSION_ISSUER
    if args.type == "omi":
        data = samples.make_omi_cancel(accession=args.accession, study_uid=args.study_uid, accession_issuer=issuer,
                                       modality=(args.modality or ["CT"])[0], control_id=args.control_id,
                                       separator=separator)
    else:
        study = StudyOrder(args.study_uid, accession=args.accession, accession_issuer=issuer if args.accession else "",
                           order=f"ORD-{args.accession}" if args.accession else "",
                           order_issuer=samples.DEMO_ORDER_ISSUER if args.accession else "")
        cda = samples.make_cda(report_id=args.report_id, studies=[study], modalities=tuple(args.modality or ["CT"]),
                               replaces_report_id=args.replaces)
        if args.type == "oru":
            data = samples.make_oru(cda, event=args.event, control_id=args.control_id, separator=separator)
        else:
            trigger = {"publish": "T02", "replace": "T10", "withdraw": "T04"}[args.event]
            data = samples.make_mdm(cda, trigger=trigger, control_id=args.control_id,
                                    replaces_report_id=args.replaces, separator=separator)
    if args.output:
        Path(args.output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0
