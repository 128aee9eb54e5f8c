"""Certificate path validation for signatures: leaf -> intermediates -> a configured trust anchor.

Deliberately simple (no policy or name constraints): names link, signatures verify, every certificate is
within validity at the given time; the signer's keyUsage allows signing (digitalSignature or nonRepudiation);
every issuer is a CA (basicConstraints cA, keyUsage keyCertSign) whose pathLenConstraint allows the
intermediate CAs below it. A configured trust anchor without those extensions (an old v1 root) is accepted
as configured; when it has them they are checked. TLS path validation stays with OpenSSL (nginx, requests).
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


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def check_signer_usage(cert: x509.Certificate) -> None:
    """The signer's keyUsage must be present and allow digitalSignature or nonRepudiation."""
    usage = _extension(cert, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage):
        raise ChainError(f"signer certificate has no keyUsage (digitalSignature or nonRepudiation required): "
                         f"{_describe(cert)}")
    if not (usage.digital_signature or usage.content_commitment):
        raise ChainError(f"signer certificate keyUsage allows neither digitalSignature nor nonRepudiation: "
                         f"{_describe(cert)}")


def check_issuer(cert: x509.Certificate, intermediates_below: int, *, anchor: bool = False) -> None:
    """``cert`` may issue certificates with ``intermediates_below`` intermediate CAs between it and the leaf."""
    constraints = _extension(cert, x509.BasicConstraints)
    usage = _extension(cert, x509.KeyUsage)
    legacy_root = anchor and cert.issuer == cert.subject
    role = "trust anchor" if anchor else "issuer"
    if not isinstance(constraints, x509.BasicConstraints):
        if not legacy_root:
            raise ChainError(f"{role} is not a CA (no basicConstraints): {_describe(cert)}")
    elif not constraints.ca:
        raise ChainError(f"{role} is not a CA (basicConstraints cA false): {_describe(cert)}")
    elif constraints.path_length is not None and intermediates_below > constraints.path_length:
        raise ChainError(f"{role} pathLenConstraint {constraints.path_length} allows fewer intermediate CAs than "
                         f"the {intermediates_below} below it: {_describe(cert)}")
    if not isinstance(usage, x509.KeyUsage):
        if not legacy_root:
            raise ChainError(f"{role} has no keyUsage (keyCertSign required): {_describe(cert)}")
    elif not usage.key_cert_sign:
        raise ChainError(f"{role} keyUsage lacks keyCertSign: {_describe(cert)}")


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
    check_signer_usage(leaf)
    current = leaf
    while len(path) <= MAX_DEPTH:
        if current in trust_anchors:
            return path
        anchor = next((a for a in trust_anchors if _issued_by(current, a)), None)
        if anchor is not None:
            check_issuer(anchor, len(path) - 1, anchor=True)
            check_validity(anchor, at)
            path.append(anchor)
            return path
        issuer = next((c for c in pool if c not in path and _issued_by(current, c)), None)
        if issuer is None:
            raise ChainError(
                f"certificate does not chain to a trusted root: no trusted issuer for {_describe(current)}"
                f" (issuer {current.issuer.rfc4514_string()})"
            )
        check_issuer(issuer, len(path) - 1)
        check_validity(issuer, at)
        path.append(issuer)
        current = issuer
    raise ChainError(f"certificate chain longer than {MAX_DEPTH}")
