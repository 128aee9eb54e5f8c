"""Certificate path validation for signatures: leaf -> intermediates -> a configured trust anchor.

Deliberately simple (no policy or name constraints): names link, signatures verify, every certificate is
within validity at the given time, issuers are CAs. TLS path validation stays with OpenSSL (nginx, requests).
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature


class ChainError(ValueError):
    """The certificate does not chain to a trust anchor; the message says why."""


MAX_DEPTH = 8


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number}"


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return cert.issuer == cert.subject  # old self-signed roots without the extension


def check_validity(cert: x509.Certificate, at: dt.datetime) -> None:
    if at < cert.not_valid_before_utc:
        raise ChainError(f"certificate not yet valid (from {cert.not_valid_before_utc:%Y-%m-%d}): {_describe(cert)}")
    if at > cert.not_valid_after_utc:
        raise ChainError(f"certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}: {_describe(cert)}")


def validate_chain(
    leaf: x509.Certificate,
    intermediates: Iterable[x509.Certificate],
    trust_anchors: Sequence[x509.Certificate],
    *,
    at: dt.datetime | None = None,
) -> list[x509.Certificate]:
    """The path ``[leaf, ..., anchor]``; raises ``ChainError`` when none reaches an anchor.

    A trust anchor may be a root or any certificate pinned directly (then the path is just ``[leaf]``).
    Anchors are trusted as configured: their own validity is still checked.
    """
    if not trust_anchors:
        raise ChainError("no trust anchor configured")
    at = at or dt.datetime.now(dt.timezone.utc)
    pool = [c for c in intermediates if c != leaf]
    path = [leaf]
    check_validity(leaf, at)
    current = leaf
    while len(path) <= MAX_DEPTH:
        if current in trust_anchors:
            return path
        anchor = next((a for a in trust_anchors if _issued_by(current, a)), None)
        if anchor is not None:
            if not _is_ca(anchor):
                raise ChainError(f"trust anchor is not a CA: {_describe(anchor)}")
            check_validity(anchor, at)
            path.append(anchor)
            return path
        issuer = next((c for c in pool if c not in path and _issued_by(current, c)), None)
        if issuer is None:
            raise ChainError(
                f"certificate does not chain to a trusted root: no trusted issuer for {_describe(current)}"
                f" (issuer {current.issuer.rfc4514_string()})"
            )
        if not _is_ca(issuer):
            raise ChainError(f"issuer is not a CA: {_describe(issuer)}")
        check_validity(issuer, at)
        path.append(issuer)
        current = issuer
    raise ChainError(f"certificate chain longer than {MAX_DEPTH}")
