"""Certificates shaped like a structure's IGC-Santé ones, but from a CA made here (not the box's test PKI, which a
production configuration refuses), and the ``drimbox install`` command line that uses them."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from drimbox.crypto.pki import Issued, issue_certificate, new_key

DRIMBOX = str(Path(sys.executable).parent / "drimbox")
STRUCTURE_ID = "310000000000011"
DB_HOST = "db.radiologie-exemple.fr"
VI_HOST = "vi.radiologie-exemple.fr"


def _name(cn: str, o: str, ou: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)]
    if ou:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attributes)


def _root(cn: str) -> Issued:
    key = new_key()
    name = _name(cn, "AUTORITE EXEMPLE")
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(key, cert)


def _pem(issued: Issued, out: Path, name: str) -> tuple[Path, Path]:
    cert = out / f"{name}.pem"
    key = out / f"{name}.key"
    cert.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in issued.full_chain))
    key.write_bytes(issued.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    return cert, key


@dataclass
class StructureFiles:
    dir: Path
    root: Path
    auth_p12: Path
    auth_password: Path
    signing_cert: Path
    signing_key: Path
    server_cert: Path
    server_key: Path
    psc_secret: Path


def structure_files(out: Path) -> StructureFiles:
    """A root and, below it, the structure's AUTH_CLI (PKCS#12 with a password), signing and server certificates."""
    out.mkdir(parents=True, exist_ok=True)
    root = _root("AC RACINE EXEMPLE")
    organisation = "CENTRE DE RADIOLOGIE EXEMPLE"
    auth = issue_certificate(root, _name(f"{STRUCTURE_ID}/AUTH_CLI", organisation, STRUCTURE_ID), profile="client")
    signing = issue_certificate(root, _name(f"{STRUCTURE_ID}/SIGN", organisation, STRUCTURE_ID), profile="signing")
    server = issue_certificate(root, _name(DB_HOST, organisation), profile="server", sans=(DB_HOST, VI_HOST))
    root_pem = out / "root.pem"
    root_pem.write_bytes(root.cert.public_bytes(serialization.Encoding.PEM))
    password = out / "auth.password"
    password.write_text("pass phrase\n")
    auth_p12 = out / "auth.p12"
    auth_p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"auth", auth.key, auth.cert, [root.cert], serialization.BestAvailableEncryption(b"pass phrase")))
    signing_cert, signing_key = _pem(signing, out, "signing")
    server_cert, server_key = _pem(server, out, "server")
    secret = out / "psc-secret"
    secret.write_text("a client secret\n")
    return StructureFiles(out, root_pem, auth_p12, password, signing_cert, signing_key, server_cert, server_key,
                          secret)


def install_args(root: Path, files: StructureFiles, **overrides: str) -> list[str]:
    options = {
        "--root": str(root), "--db-host": DB_HOST, "--vi-host": VI_HOST, "--oid-root": "1.2.250.1.999.42",
        "--structure-id": STRUCTURE_ID, "--institution-name": "Centre de radiologie exemple",
        "--auth-cert": str(files.auth_p12), "--auth-password-file": str(files.auth_password),
        "--signing-cert": str(files.signing_cert), "--signing-key": str(files.signing_key),
        "--server-cert": str(files.server_cert), "--server-key": str(files.server_key),
        "--dmp-url": "https://dmp.national.example/dmp", "--dmp-ca-bundle": str(files.root),
        "--psc-client-id": "drimbox-exemple", "--psc-client-secret-file": str(files.psc_secret),
        "--whitelist-url": "https://liste-blanche.national.example/liste.xml", "--trust-anchor": str(files.root),
        "--peer-ca-file": str(files.root), "--modality": "ct1=CT_SALLE1@10.0.0.21:104",
    }
    options.update(overrides)
    out = [DRIMBOX, "install", "--no-prompt"]
    for key, value in options.items():
        out += [key, value]
    return out


def run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
