"""The few answers a production install needs, checked before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.x509.oid import NameOID

from drimbox.crypto.keys import KeyLoadError, load_certificate_chain, load_key_and_cert, load_private_key

_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
_MODALITY = re.compile(r"^([A-Za-z0-9_.-]{1,64})=([^@\s]{1,16})@([^:\s]+):(\d{1,5})$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class InstallError(ValueError):
    """An answer is missing or wrong; the message names the option."""


@dataclass(frozen=True)
class Certificate:
    """A certificate with its key: PEM files (``key`` may be empty when ``cert`` holds it) or PKCS#12."""

    cert: Path
    key: Path | None = None
    password_file: Path | None = None

    def check(self, option: str) -> list[str]:
        """Loads it (so a wrong password fails now, not at the first publication); returns the subject's OUs."""
        try:
            _, leaf, _ = load_key_and_cert(self.cert, self.key or "", self.password_file or "")
        except KeyLoadError as error:
            raise InstallError(f"{option}: {error}") from None
        return [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]


@dataclass(frozen=True)
class Answers:
    db_host: str
    vi_host: str
    oid_root: str
    structure_id: str
    institution_name: str
    auth: Certificate  # ORG AUTH_CLI: mutual TLS towards the DMP and peers
    signing: Certificate  # the structure's signing certificate (VIHF, XAdES)
    server_cert: Path  # nginx: PEM chain naming db_host and vi_host
    server_key: Path
    dmp_url: str
    dmp_ca_bundle: Path
    psc_issuer: str
    psc_client_id: str
    psc_client_secret_file: Path
    whitelist_url: str
    trust_anchor: Path  # the IGC-Santé root the whitelist signer chains to
    peer_ca_file: Path  # the IGC-Santé CAs that issue peers' organisation certificates
    peer_crl_file: Path | None = None
    whitelist_crl_urls: tuple[str, ...] = ()
    admin_host: str = "localhost"
    # the operator entry's certificate (PEM); None: a self-signed one made at install for admin_host
    admin_cert: Path | None = None
    admin_key: Path | None = None
    admin_bind: str = "127.0.0.1"
    admin_port: int = 8440
    https_port: int = 443
    orthanc_http_port: int = 8042
    dicom_port: int = 4242
    aet: str = "DRIMBOX"
    hl7_port: int = 2575
    modalities: dict[str, dict] = field(default_factory=dict)
    user: str = "drimbox"
    lps_homologation_id: str = ""

    def check(self) -> list[str]:
        """Raise InstallError on the first unusable answer; return warnings."""
        warnings: list[str] = []
        for option, host in (("--db-host", self.db_host), ("--vi-host", self.vi_host)):
            if not _HOST.match(host):
                raise InstallError(f"{option} must be a fully qualified host name, got {host!r}")
        if self.db_host == self.vi_host:
            raise InstallError("--db-host and --vi-host must differ (the national model gives each its own name)")
        if not _USER.match(self.user):
            raise InstallError(f"--user must be a system user name, got {self.user!r}")
        if not re.fullmatch(r"[0-9]{9,15}", self.structure_id):
            raise InstallError(f"--structure-id must be the structure's identifier (FINESS or SIRET with its "
                               f"prefix digit), got {self.structure_id!r}")
        for option, port in (("--admin-port", self.admin_port), ("--https-port", self.https_port),
                             ("--dicom-port", self.dicom_port), ("--hl7-port", self.hl7_port),
                             ("--orthanc-http-port", self.orthanc_http_port)):
            if not 0 < port < 65536:
                raise InstallError(f"{option} must be a TCP port, got {port}")
        for option, url in (("--dmp-url", self.dmp_url), ("--whitelist-url", self.whitelist_url)):
            if not url.startswith("https://"):
                raise InstallError(f"{option} must be an https:// URL, got {url!r}")
        for option, certificate in (("--auth-cert", self.auth), ("--signing-cert", self.signing)):
            units = certificate.check(option)
            if self.structure_id not in units:
                warnings.append(f"{option}: the certificate's OU ({', '.join(units) or 'none'}) does not name the "
                                f"structure {self.structure_id}")
        try:
            load_certificate_chain(self.server_cert)
            load_private_key(self.server_key)
        except KeyLoadError as error:
            raise InstallError(f"--server-cert/--server-key: {error}") from None
        if (self.admin_cert is None) != (self.admin_key is None):
            raise InstallError("--admin-cert and --admin-key go together")
        if self.admin_cert is not None and self.admin_key is not None:
            try:
                load_certificate_chain(self.admin_cert)
                load_private_key(self.admin_key)
            except KeyLoadError as error:
                raise InstallError(f"--admin-cert/--admin-key: {error}") from None
        for option, path in (("--dmp-ca-bundle", self.dmp_ca_bundle), ("--trust-anchor", self.trust_anchor),
                             ("--peer-ca-file", self.peer_ca_file)):
            try:
                load_certificate_chain(path)
            except KeyLoadError as error:
                raise InstallError(f"{option}: {error}") from None
        if not self.psc_client_secret_file.is_file():
            raise InstallError(f"--psc-client-secret-file: no such file {self.psc_client_secret_file}")
        if self.peer_crl_file is not None and not self.peer_crl_file.is_file():
            raise InstallError(f"--peer-crl-file: no such file {self.peer_crl_file}")
        return warnings


def parse_modality(text: str) -> tuple[str, dict]:
    """``NAME=AET@HOST:PORT`` (a modality allowed to send DICOM)."""
    match = _MODALITY.match(text)
    if not match or not 0 < int(match.group(4)) < 65536:
        raise InstallError(f"--modality must look like NAME=AET@HOST:PORT, got {text!r}")
    name, aet, host, port = match.groups()
    return name, {"AET": aet, "Host": host, "Port": int(port)}
