"""Which signing certificates the simulated DMP trusts (VIHF assertions and DSG signature documents).

The simulator keeps its own small path check rather than the box's ``drimbox.crypto``: it stands for the national
service, so it must not share the box's mistakes. No trust anchor configured means no signer is trusted.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
MAX_PATH = 6


class UntrustedSigner(ValueError):
    """The signing certificate is missing, malformed, or does not chain to a trusted signing CA."""


class SignerMissing(UntrustedSigner):
    """The signature names no certificate at all."""


def key_info_certificates(signature: etree._Element) -> list[x509.Certificate]:
    """The X509Certificate values of the signature's own KeyInfo, in document order."""
    texts = signature.findall(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
    if not texts:
        raise SignerMissing("ds:KeyInfo/X509Data/X509Certificate missing")
    certs = []
    for el in texts:
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode("".join((el.text or "").split()))))
        except ValueError:
            raise UntrustedSigner("ds:X509Certificate is not a DER certificate") from None
    return certs


def leaf_of(certs: Sequence[x509.Certificate]) -> x509.Certificate:
    """The certificate of the list that issued none of the others (KeyInfo order is not guaranteed)."""
    issuers = {cert.issuer for cert in certs if cert.issuer != cert.subject}
    leaves = [cert for cert in certs if cert.subject not in issuers]
    if len(leaves) != 1:
        raise UntrustedSigner(f"KeyInfo must name one signer certificate (found {len(leaves)} candidates)")
    return leaves[0]


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _extension(cert: x509.Certificate, kind: type) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _can_issue(cert: x509.Certificate) -> bool:
    constraints = _extension(cert, x509.BasicConstraints)
    usage = _extension(cert, x509.KeyUsage)
    is_ca = constraints.ca if isinstance(constraints, x509.BasicConstraints) else cert.issuer == cert.subject
    return is_ca and (not isinstance(usage, x509.KeyUsage) or usage.key_cert_sign)


def _can_sign_documents(cert: x509.Certificate) -> bool:
    constraints = _extension(cert, x509.BasicConstraints)
    usage = _extension(cert, x509.KeyUsage)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        return False
    return not isinstance(usage, x509.KeyUsage) or usage.digital_signature or usage.content_commitment


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number}"


class SignerTrust:
    """The signing CAs the simulator trusts; immutable, shared by every request thread."""

    def __init__(self, anchors: Sequence[x509.Certificate]):
        self.anchors = tuple(anchors)

    @classmethod
    def from_pem_file(cls, path: str | None) -> "SignerTrust":
        if not path:
            return cls(())
        with open(path, "rb") as fh:
            return cls(x509.load_pem_x509_certificates(fh.read()))

    def check(self, signer: x509.Certificate, others: Sequence[x509.Certificate],
              at: dt.datetime | None = None) -> list[x509.Certificate]:
        """The path signer -> ... -> anchor; ``others`` are the untrusted intermediates offered in KeyInfo."""
        if not self.anchors:
            raise UntrustedSigner("no signing CA is configured: the simulator trusts no signer (--signing-ca)")
        at = at or dt.datetime.now(dt.timezone.utc)
        if not _can_sign_documents(signer):
            raise UntrustedSigner(f"the certificate {_describe(signer)} is not a document signing certificate")
        pool = [cert for cert in others if cert != signer]
        path = [signer]
        current = signer
        while len(path) <= MAX_PATH:
            if not (current.not_valid_before_utc <= at <= current.not_valid_after_utc):
                raise UntrustedSigner(f"the certificate {_describe(current)} is outside its validity period")
            anchor = next((a for a in self.anchors if a == current or _issued_by(current, a)), None)
            if anchor is not None:
                if anchor != current:
                    if not _can_issue(anchor):
                        raise UntrustedSigner(f"the trust anchor {_describe(anchor)} is not a CA")
                    if not (anchor.not_valid_before_utc <= at <= anchor.not_valid_after_utc):
                        raise UntrustedSigner(f"the trust anchor {_describe(anchor)} is outside its validity period")
                    path.append(anchor)
                return path
            parent = next((p for p in pool if p not in path and _issued_by(current, p)), None)
            if parent is None:
                break
            if not _can_issue(parent):
                raise UntrustedSigner(f"{_describe(parent)} issued {_describe(current)} but is not a CA")
            path.append(parent)
            current = parent
        raise UntrustedSigner(f"the signing certificate ({_describe(signer)}) does not chain to a trusted "
                              "signing CA")
