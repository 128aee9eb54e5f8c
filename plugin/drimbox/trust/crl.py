"""Certificate revocation lists: load, check a certificate path against them, fetch them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote, urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

# Keys a CRL issuer may sign with here (IGC-Santé signs with RSA); DSA, deprecated in cryptography, is not
# accepted: a CRL signed with it is as good as none, and revocation then fails closed.
_SIGNING_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)


class RevocationError(ValueError):
    """Revoked, or revocation could not be established; the message says which."""


def load_crls(data: bytes) -> list[x509.CertificateRevocationList]:
    """Every CRL of a PEM bundle, or the one CRL of a DER file."""
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            blocks = data.split(b"-----END X509 CRL-----")
            return [x509.load_pem_x509_crl(block + b"-----END X509 CRL-----\n") for block in blocks
                    if b"-----BEGIN X509 CRL-----" in block]
        return [x509.load_der_x509_crl(data)]
    except ValueError as error:
        raise RevocationError(f"unreadable CRL: {error}") from None


def distribution_points(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [name.value for point in points for name in (point.full_name or [])
            if isinstance(name, x509.UniformResourceIdentifier)]


def _crl_for(issuer: x509.Certificate, crls: Sequence[x509.CertificateRevocationList]):
    for crl in crls:
        if crl.issuer != issuer.subject:
            continue
        key = issuer.public_key()
        if not isinstance(key, _SIGNING_KEYS):
            continue
        try:
            if crl.is_signature_valid(key):
                return crl
        except (InvalidSignature, TypeError):
            continue
    return None


def check_path(
    path: Sequence[x509.Certificate],
    crl_data: Sequence[bytes],
    *,
    now: dt.datetime | None = None,
) -> None:
    """Raise unless every certificate of ``path`` (leaf first, anchor last) is known not revoked.

    The leaf needs a current CRL signed by its issuer; CA certificates are checked when a CRL of their
    issuer is at hand.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    crls = [crl for data in crl_data for crl in load_crls(data)]
    for position, (cert, issuer) in enumerate(zip(path, path[1:], strict=False)):
        crl = _crl_for(issuer, crls)
        if crl is None:
            if position == 0:
                raise RevocationError(f"no valid CRL from {issuer.subject.rfc4514_string()}")
            continue
        if crl.next_update_utc is not None and crl.next_update_utc < now:
            raise RevocationError(
                f"CRL of {issuer.subject.rfc4514_string()} is out of date "
                f"(next update {crl.next_update_utc:%Y-%m-%d %H:%M})"
            )
        revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if revoked is not None:
            raise RevocationError(
                f"certificate revoked on {revoked.revocation_date_utc:%Y-%m-%d}: {cert.subject.rfc4514_string()}"
            )


# A whitelist is a few kB, an IGC-Santé CRL a few MB: far more means a broken or hostile server.
MAX_FETCH_BYTES = 32 << 20


def fetch_bytes(location: str, *, timeout: float = 30.0, limit: int = MAX_FETCH_BYTES) -> bytes:
    """Bytes of an http(s) URL (at most ``limit``, the body within ``timeout``), a file:// URL or a plain
    path."""
    parsed = urlparse(location)
    if parsed.scheme in ("http", "https"):
        import requests

        from drimbox.util.bounded_read import read_bounded

        with requests.get(location, timeout=timeout, stream=True,
                          headers={"Accept-Encoding": "identity"}) as response:
            response.raise_for_status()
            return read_bounded(response, limit=limit, seconds=timeout)
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(location)
    return path.read_bytes()
