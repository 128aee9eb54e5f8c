"""A complete test PKI shaped like IGC-Santé: root, issuing CA, box certificates, servers, whitelist signer, CRLs.

For development, tests and demos only. ``create_test_pki`` writes PEM files plus a ``pki.json`` index; the
``issue_*``/``make_*`` helpers mint odd certificates (expired, wrong names, other roots) for tests.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from drimbox.crypto.keys import PrivateKey, load_certificate_chain, load_private_key

WHITELIST_SIGNER_CN = "Liste Blanche DRIM-M"
WHITELIST_SIGNER_OU = "318751275100020"
TEST_ORGANISATION = "AGENCE DU NUMERIQUE EN SANTE (TEST)"
SERVER_NAMES = ("nginx", "dmp-sim", "psc-sim")
INDEX_FILE = "pki.json"

_DAY = dt.timedelta(days=1)


@dataclass
class Issued:
    """A private key, its certificate, and the issuer chain above it (issuing CA first, root last)."""

    key: PrivateKey
    cert: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def full_chain(self) -> list[x509.Certificate]:
        return [self.cert, *self.chain]


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def new_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def make_name(cn: str, *, ou: str | None = None, o: str | None = TEST_ORGANISATION, c: str = "FR") -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, c)]
    if o:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    if ou:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attributes)


class _Default:
    """Marks an extension left to the profile (None means: leave the extension out)."""


PROFILE_DEFAULT = _Default()


def _ski(key: PrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def make_root_ca(
    cn: str = "TEST AC RACINE IGC-SANTE DRIMBOX",
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    key: PrivateKey | None = None,
    path_length: int | None = None,
    basic_constraints: x509.BasicConstraints | None | _Default = PROFILE_DEFAULT,
    key_usage: x509.KeyUsage | None | _Default = PROFILE_DEFAULT,
) -> Issued:
    """A self-signed root; ``basic_constraints``/``key_usage`` replace its extensions (``None``: leave them out)."""
    if isinstance(basic_constraints, _Default):
        basic_constraints = x509.BasicConstraints(ca=True, path_length=path_length)
    if isinstance(key_usage, _Default):
        key_usage = _ca_key_usage()
    key = key or new_key()
    name = make_name(cn, ou="IGC-SANTE TEST")
    start = not_before or now_utc() - _DAY
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + 20 * 365 * _DAY)
        .add_extension(_ski(key), critical=False)
    )
    if basic_constraints is not None:
        builder = builder.add_extension(basic_constraints, critical=True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    return Issued(key, builder.sign(key, hashes.SHA256()), [])


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )


def _leaf_key_usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=signing, key_encipherment=not signing, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )


PROFILES = ("ca", "client", "server", "signing")



def make_key_usage(**flags: bool) -> x509.KeyUsage:
    """A KeyUsage with the named flags (``digital_signature``, ``key_cert_sign``...) set, the others clear."""
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    unknown = set(flags) - set(names)
    if unknown:
        raise ValueError(f"unknown keyUsage flags {sorted(unknown)}")
    return x509.KeyUsage(**{name: flags.get(name, False) for name in names})


def issue_certificate(
    issuer: Issued,
    subject: x509.Name,
    *,
    profile: str = "client",
    sans: Iterable[str] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    key: PrivateKey | None = None,
    crl_url: str | None = None,
    days: int = 3 * 365,
    path_length: int | None = 0,
    basic_constraints: x509.BasicConstraints | None | _Default = PROFILE_DEFAULT,
    key_usage: x509.KeyUsage | None | _Default = PROFILE_DEFAULT,
) -> Issued:
    """A certificate signed by ``issuer``; ``profile`` is one of ca, client, server, signing.

    ``sans`` are DNS names or IP addresses. Pass past dates to mint expired certificates. ``path_length`` is
    the pathLenConstraint of a ``ca``. ``basic_constraints`` and ``key_usage`` replace the profile's
    extension (``None`` leaves it out): tests mint certificates with the wrong extensions that way.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown certificate profile {profile!r}; expected one of {PROFILES}")
    key = key or new_key()
    start = not_before or now_utc() - _DAY
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + days * _DAY)
        .add_extension(_ski(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    )
    if isinstance(basic_constraints, _Default):
        basic_constraints = x509.BasicConstraints(ca=profile == "ca", path_length=path_length if profile == "ca"
                                                  else None)
    if isinstance(key_usage, _Default):
        key_usage = _ca_key_usage() if profile == "ca" else _leaf_key_usage(signing=profile == "signing")
    if basic_constraints is not None:
        builder = builder.add_extension(basic_constraints, critical=True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if profile != "ca":
        usages = {
            "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
            "server": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            "signing": None,
        }[profile]
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    alt_names = [_general_name(value) for value in sans]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    cert = builder.sign(issuer.key, hashes.SHA256())
    return Issued(key, cert, [issuer.cert, *issuer.chain])


def _general_name(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def make_crl(
    issuer: Issued,
    revoked_serials: Iterable[int] = (),
    *,
    number: int = 1,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
) -> x509.CertificateRevocationList:
    start = this_update or now_utc() - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(start)
        .next_update(next_update or start + 30 * _DAY)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(start).build()
        )
    return builder.sign(issuer.key, hashes.SHA256())


# --- files -------------------------------------------------------------------------------------------------


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o600 if private else 0o644)
    os.replace(tmp, path)
    return str(path)


def write_pkcs12(path: str | Path, issued: Issued, password: bytes | None = None, *, name: bytes = b"drimbox") -> str:
    encryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    data = pkcs12.serialize_key_and_certificates(name, issued.key, issued.cert, issued.chain or None, encryption)
    return _write(Path(path), data, private=True)


def dn_of(cert: x509.Certificate) -> str:
    """The subject DN in RFC 4514 form (most specific first, as nginx's ``$ssl_client_s_dn`` prints it)."""
    return cert.subject.rfc4514_string()


# --- the whole test PKI --------------------------------------------------------------------------------------


class _Writer:
    """Loads an entity from ``out_dir`` when present (and its issuer was not regenerated), else creates it."""

    def __init__(self, out_dir: Path, force: bool) -> None:
        self.out_dir = out_dir
        self.force = force
        self.regenerated: set[str] = set()

    def entity(self, name: str, make, issuer_name: str | None, issuer: Issued | None) -> tuple[Issued, dict]:
        cert_path = self.out_dir / f"{name}.crt.pem"
        key_path = self.out_dir / f"{name}.key.pem"
        chain_path = self.out_dir / f"{name}.fullchain.pem"
        reuse = (
            not self.force
            and cert_path.exists()
            and key_path.exists()
            and (issuer_name is None or issuer_name not in self.regenerated)
        )
        if reuse:
            cert = load_certificate_chain(cert_path)[0]
            issued = Issued(load_private_key(key_path), cert, [issuer.cert, *issuer.chain] if issuer else [])
        else:
            issued = make()
            self.regenerated.add(name)
            _write(cert_path, cert_pem(issued.cert))
            _write(key_path, key_pem(issued.key), private=True)
        if not chain_path.exists() or not reuse:
            # Leaf + issuing CA: what nginx's ssl_certificate and XML KeyInfo want (the root is distributed apart).
            _write(chain_path, cert_pem(*issued.full_chain[:-1] if issued.chain else [issued.cert]))
        entry = {
            "cert": str(cert_path),
            "key": str(key_path),
            "fullchain": str(chain_path),
            "subject": dn_of(issued.cert),
            "serial": issued.cert.serial_number,
            "not_after": issued.cert.not_valid_after_utc.isoformat(),
        }
        return issued, entry


def default_structure_id(index: int) -> str:
    """A SIRET-shaped structure id (prefix ``3``) per box, stable across runs."""
    return f"3{10000000000000 + 1001 * (index + 1):014d}"[:15]


def create_test_pki(
    out_dir: str | Path,
    *,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    boxes: Sequence[str] = ("box-a", "box-b"),
    structure_ids: Mapping[str, str] | None = None,
    crl_url: str | None = None,
    force: bool = False,
) -> dict:
    """Write (or reuse) a test PKI under ``out_dir`` and return its index (also saved as ``pki.json``).

    Certificates issued by the intermediate carry a CRL distribution point: ``crl_url`` when given, else a
    ``file://`` URL of the intermediate's DER CRL. Existing files are kept unless ``force``.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    crl_der_path = out / "crl-intermediate.der"
    crl_url = crl_url or crl_der_path.as_uri()
    writer = _Writer(out, force)
    index: dict = {"out_dir": str(out), "hosts": list(hosts), "crl_url": crl_url}

    root, index["root"] = writer.entity("root-ca", make_root_ca, None, None)
    intermediate, index["intermediate"] = writer.entity(
        "intermediate-ca",
        lambda: issue_certificate(root, make_name("TEST AC IGC-SANTE ORGANISATIONS", ou="IGC-SANTE TEST"),
                                  profile="ca", days=10 * 365),
        "root-ca",
        root,
    )
    index["ca_bundle"] = _write(out / "ca-bundle.pem", cert_pem(root.cert, intermediate.cert))

    index["boxes"] = {}
    for number, box in enumerate(boxes):
        structure_id = (structure_ids or {}).get(box) or default_structure_id(number)
        organisation = f"DRIMBOX TEST {box.upper()}"
        auth, auth_entry = writer.entity(
            f"{box}-auth",
            partial(issue_certificate, intermediate,
                    make_name(f"AUTH_CLI {box}", ou=structure_id, o=organisation), profile="client", crl_url=crl_url),
            "intermediate-ca",
            intermediate,
        )
        signing, signing_entry = writer.entity(
            f"{box}-sign",
            partial(issue_certificate, intermediate,
                    make_name(f"SIGN {box}", ou=structure_id, o=organisation), profile="signing", crl_url=crl_url),
            "intermediate-ca",
            intermediate,
        )
        # The box's db entry presents a server certificate with the same subject as its AUTH_CLI one: the
        # whitelist names one operator DN per domain, checked on its client and on its server certificate.
        _, db_entry = writer.entity(
            f"{box}-db",
            lambda box=box, ou=structure_id, o=organisation: issue_certificate(
                intermediate, make_name(f"AUTH_CLI {box}", ou=ou, o=o),
                profile="server", sans=list(dict.fromkeys([*hosts, box])), crl_url=crl_url,
            ),
            "intermediate-ca",
            intermediate,
        )
        index["boxes"][box] = {"structure_id": structure_id, "organisation": organisation,
                               "auth": auth_entry, "signing": signing_entry, "db": db_entry}

    index["servers"] = {}
    server_sans = list(dict.fromkeys([*hosts, *boxes, *SERVER_NAMES]))
    for server in SERVER_NAMES:
        _, index["servers"][server] = writer.entity(
            f"server-{server}",
            partial(issue_certificate, intermediate, make_name(server, ou="DRIMBOX TEST"), profile="server",
                    sans=server_sans, crl_url=crl_url),
            "intermediate-ca",
            intermediate,
        )

    _, index["whitelist_signer"] = writer.entity(
        "whitelist-signer",
        lambda: issue_certificate(
            intermediate, make_name(WHITELIST_SIGNER_CN, ou=WHITELIST_SIGNER_OU), profile="signing", crl_url=crl_url
        ),
        "intermediate-ca",
        intermediate,
    )
    # KeyInfo of the whitelist carries signer, intermediate and root.
    index["whitelist_signer"]["chain"] = _write(
        out / "whitelist-signer.chain.pem", cert_pem(intermediate.cert, root.cert)
    )

    previous = _read_index(out)
    revoked = [] if "intermediate-ca" in writer.regenerated else previous.get("revoked_serials", [])
    index["revoked_serials"] = revoked
    index["crl_number"] = previous.get("crl_number", 0) if not writer.regenerated & {"intermediate-ca"} else 0
    _write_crls(out, index, root, intermediate, reissue=bool(writer.regenerated) or not crl_der_path.exists())
    _write(out / INDEX_FILE, json.dumps(index, indent=2).encode())
    return index


def _read_index(out: Path) -> dict:
    try:
        return json.loads((out / INDEX_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_crls(out: Path, index: dict, root: Issued, intermediate: Issued, *, reissue: bool) -> None:
    crl_der, root_crl_der, bundle = out / "crl-intermediate.der", out / "crl-root.der", out / "crl-bundle.pem"
    if reissue:
        index["crl_number"] = int(index.get("crl_number", 0)) + 1
        crl = make_crl(intermediate, index["revoked_serials"], number=index["crl_number"])
        root_crl = make_crl(root, number=1)
        _write(crl_der, crl.public_bytes(serialization.Encoding.DER))
        _write(root_crl_der, root_crl.public_bytes(serialization.Encoding.DER))
        # nginx checks CRLs at every level of the chain, so its ssl_crl file holds both.
        _write(bundle, crl.public_bytes(serialization.Encoding.PEM) + root_crl.public_bytes(serialization.Encoding.PEM))
    index["crl"] = str(crl_der)
    index["root_crl"] = str(root_crl_der)
    index["crl_bundle"] = str(bundle)


def load_issued(entry: Mapping[str, str]) -> Issued:
    """An ``Issued`` from a ``pki.json`` entry (its fullchain supplies the issuing CA)."""
    cert = load_certificate_chain(entry["cert"])[0]
    chain = load_certificate_chain(entry["fullchain"])[1:] if entry.get("fullchain") else []
    return Issued(load_private_key(entry["key"]), cert, chain)


def load_pki(out_dir: str | Path) -> dict:
    index = _read_index(Path(out_dir))
    if not index:
        raise FileNotFoundError(f"no test PKI index ({INDEX_FILE}) in {out_dir}; "
                                f"run `drimbox pki init --out {out_dir}`")
    return index


def revoke(pki: Mapping, cert: x509.Certificate | str | Path) -> dict:
    """Revoke a certificate issued by the intermediate and reissue its CRL; returns the updated index."""
    out = Path(pki["out_dir"])
    if not isinstance(cert, x509.Certificate):
        cert = load_certificate_chain(cert)[0]
    index = _read_index(out) or dict(pki)
    if cert.serial_number not in index["revoked_serials"]:
        index["revoked_serials"].append(cert.serial_number)
    root = load_issued({"cert": index["root"]["cert"], "key": index["root"]["key"]})
    intermediate = load_issued({"cert": index["intermediate"]["cert"], "key": index["intermediate"]["key"]})
    intermediate.chain = [root.cert]
    _write_crls(out, index, root, intermediate, reissue=True)
    _write(out / INDEX_FILE, json.dumps(index, indent=2).encode())
    return index
