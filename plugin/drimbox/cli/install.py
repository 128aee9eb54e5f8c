"""``drimbox install``: a production box on this server from a few answers (flags, or questions on a terminal)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

# (option, question) for every answer without a default; asked on a terminal when the flag is missing.
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("db_host", "Public host name of the db entry (peers' WADO-RS), e.g. db.radiologie-exemple.fr"),
    ("vi_host", "Public host name of the vi entry (viewer), e.g. vi.radiologie-exemple.fr"),
    ("oid_root", "The structure's registered OID root (KOS and submission UIDs)"),
    ("structure_id", "The structure's identifier (FINESS prefixed 1, or SIRET prefixed 3)"),
    ("institution_name", "The structure's name"),
    ("auth_cert", "IGC-Santé ORG AUTH_CLI certificate (PEM or PKCS#12 .p12)"),
    ("signing_cert", "IGC-Santé signing certificate of the structure (PEM or PKCS#12 .p12)"),
    ("server_cert", "TLS server certificate chain (PEM) naming the db and vi host names"),
    ("server_key", "Its private key (PEM)"),
    ("dmp_url", "National DMP base URL (…/registry, …/repository below it)"),
    ("dmp_ca_bundle", "CA bundle (PEM) of the DMP's server certificate"),
    ("psc_client_id", "Pro Santé Connect client id of this box"),
    ("psc_client_secret_file", "File holding the Pro Santé Connect client secret"),
    ("whitelist_url", "URL of the national signed whitelist"),
    ("trust_anchor", "IGC-Santé root certificate (PEM) the whitelist signer chains to"),
    ("peer_ca_file", "IGC-Santé CA bundle (PEM) issuing peers' organisation certificates"),
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "install", help="write a production configuration, nginx and systemd units (see docs/operations.md)",
        description="Installs a production DRIMbox: Orthanc's configuration with the DRIMbox section, the box's "
                    "nginx, systemd units running both as an unprivileged user, log rotation. Missing answers are "
                    "asked on a terminal. Everything is written under --root (default /).")
    add = parser.add_argument
    add("--root", type=Path, default=Path("/"), help="prefix of every path written and named (default /)")
    add("--db-host")
    add("--vi-host")
    add("--admin-host", default="localhost", help="host name of the operator entry (default localhost)")
    add("--admin-bind", default="127.0.0.1", help="address of the operator entry (default 127.0.0.1)")
    add("--admin-port", type=int, default=8440)
    add("--admin-cert", type=_optional_path, default=None,
        help="PEM certificate of the operator entry (default: a self-signed one for --admin-host)")
    add("--admin-key", type=_optional_path, default=None, help="its private key")
    add("--https-port", type=int, default=443, help="port of the db and vi entries (default 443)")
    add("--oid-root")
    add("--structure-id")
    add("--institution-name")
    for name, what in (("auth", "ORG AUTH_CLI"), ("signing", "signing")):
        add(f"--{name}-cert", type=Path, help=f"{what} certificate: PEM (with --{name}-key) or PKCS#12")
        add(f"--{name}-key", type=_optional_path, default=None, help="PEM private key (not with PKCS#12)")
        add(f"--{name}-password-file", type=_optional_path, default=None,
            help="password of the PKCS#12 or of the key")
    add("--server-cert", type=Path)
    add("--server-key", type=Path)
    add("--dmp-url")
    add("--dmp-ca-bundle", type=Path)
    add("--lps-homologation-id", default="", help="the DMP homologation id of this software, when given")
    add("--psc-issuer", default="production", help="production, sandbox or an issuer URL (default production)")
    add("--psc-client-id")
    add("--psc-client-secret-file", type=Path)
    add("--whitelist-url")
    add("--whitelist-crl-url", action="append", default=[], help="CRL URL of the whitelist signer's CA (repeat)")
    add("--trust-anchor", type=Path)
    add("--peer-ca-file", type=Path)
    add("--peer-crl-file", type=_optional_path, default=None)
    add("--aet", default="DRIMBOX")
    add("--dicom-port", type=int, default=4242)
    add("--hl7-port", type=int, default=2575)
    add("--orthanc-http-port", type=int, default=8042)
    add("--modality", action="append", default=[], metavar="NAME=AET@HOST:PORT",
        help="a modality allowed to send DICOM (repeat)")
    add("--user", default="drimbox", help="the unprivileged user the services run as (default drimbox)")
    add("--ohif-dir", type=Path, default=None, help="the OHIF dist to serve (default: this checkout's viewer/dist)")
    add("--no-prompt", action="store_true", help="never ask: a missing answer is an error")
    parser.set_defaults(func=run)


def _optional_path(text: str) -> Path | None:
    return Path(text) if text else None


def _ask_missing(args: argparse.Namespace, ask: Callable[[str], str] | None) -> None:
    for name, question in QUESTIONS:
        if getattr(args, name) not in (None, ""):
            continue
        option = "--" + name.replace("_", "-")
        if ask is None:
            raise SystemExit(f"drimbox install: {option} is required ({question})")
        answer = ask(f"{question} [{option}]: ").strip()
        if not answer:
            raise SystemExit(f"drimbox install: {option} is required")
        current = getattr(args, name)
        setattr(args, name, Path(answer) if name.endswith(("_cert", "_key", "_file", "_bundle", "anchor")) or
                isinstance(current, Path) else answer)


def answers_of(args: argparse.Namespace):
    from drimbox.install.answers import Answers, Certificate, parse_modality

    return Answers(
        db_host=args.db_host.lower(), vi_host=args.vi_host.lower(), oid_root=args.oid_root,
        structure_id=args.structure_id, institution_name=args.institution_name,
        auth=Certificate(Path(args.auth_cert), args.auth_key, args.auth_password_file),
        signing=Certificate(Path(args.signing_cert), args.signing_key, args.signing_password_file),
        server_cert=Path(args.server_cert), server_key=Path(args.server_key),
        dmp_url=args.dmp_url, dmp_ca_bundle=Path(args.dmp_ca_bundle),
        psc_issuer=args.psc_issuer, psc_client_id=args.psc_client_id,
        psc_client_secret_file=Path(args.psc_client_secret_file),
        whitelist_url=args.whitelist_url, trust_anchor=Path(args.trust_anchor), peer_ca_file=Path(args.peer_ca_file),
        peer_crl_file=args.peer_crl_file, whitelist_crl_urls=tuple(args.whitelist_crl_url),
        admin_host=args.admin_host, admin_cert=args.admin_cert, admin_key=args.admin_key,
        admin_bind=args.admin_bind, admin_port=args.admin_port,
        https_port=args.https_port, orthanc_http_port=args.orthanc_http_port, dicom_port=args.dicom_port,
        aet=args.aet, hl7_port=args.hl7_port, modalities=dict(parse_modality(m) for m in args.modality),
        user=args.user, lps_homologation_id=args.lps_homologation_id)


def run(args: argparse.Namespace) -> int:
    from drimbox.cli.config import read_configuration
    from drimbox.config import SettingsError, check_deployment, load_settings
    from drimbox.install.answers import InstallError
    from drimbox.install.production import (
        REPO,
        create_service_user,
        hand_over,
        install,
        service_user_exists,
    )

    interactive = not args.no_prompt and sys.stdin.isatty()
    _ask_missing(args, input if interactive else None)
    try:
        answers = answers_of(args)
        warnings = answers.check()
    except InstallError as error:
        print(f"drimbox install: {error}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    ohif_dir = args.ohif_dir or REPO / "viewer" / "dist"
    installed = install(answers, args.root, ohif_dir=ohif_dir.absolute())
    layout = installed.layout
    on_system = layout.root == Path("/")
    if on_system:
        if not service_user_exists(answers.user):
            create_service_user(installed)
        hand_over(installed, answers.user)
    try:
        configuration = read_configuration(layout.orthanc_conf)
        check_deployment(load_settings(configuration), configuration)
    except (SettingsError, ValueError) as error:
        print(f"drimbox install: the configuration written is not usable yet: {error}", file=sys.stderr)
        return 1
    print(f"Installed under {layout.root}:")
    print(f"  configuration  {layout.orthanc_conf} (check it: drimbox config check {layout.orthanc_conf})")
    print(f"  nginx          {layout.nginx_conf}")
    print(f"  systemd units  {layout.units}/drimbox-orthanc.service, drimbox-nginx.service, drimbox.target")
    print(f"  data           {layout.state}   logs {layout.logs} (Orthanc: journalctl -u drimbox-orthanc)")
    print(f"  operator       user operator, password in {installed.operator_password_file}, "
          f"https://{answers.admin_host}:{answers.admin_port}/ (certificate {layout.pki / 'admin.pem'})")
    if on_system:
        print("Start it: systemctl daemon-reload && systemctl enable --now drimbox.target")
    else:
        print(f"Nothing was changed on this system (--root {layout.root}).")
    return 0
