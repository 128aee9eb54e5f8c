"""Sign and verify XML: enveloped XML-DSig (VIHF SAML assertion) and XAdES-BASELINE-B (whitelist, DSG).

    sign_enveloped(assertion, key, cert)              # Reference "#<ID>", Signature after saml:Issuer
    cert = verify_enveloped(assertion, [root])
    sign_xades(list_root, key, cert, chain)           # Reference "" with XPath-Filter-2 subtract
    verified = verify_xades(list_root, [root])
    signature = sign_xades_enveloping([(manifest, MANIFEST_TYPE)], key, cert, chain)   # IHE DSG style
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from drimbox.crypto import dsig
from drimbox.crypto.chain import ChainError, validate_chain
from drimbox.crypto.dsig import (
    C14N_ALGORITHMS,
    DS,
    ENVELOPED,
    SHA256,
    SignatureError,
    ds,
    sub,
)
from drimbox.crypto.keys import PrivateKey

__all__ = [
    "SignatureError",
    "VerifiedSignature",
    "sign_enveloped",
    "verify_enveloped",
    "sign_xades",
    "sign_xades_enveloping",
    "verify_xades",
    "XADES",
    "SIGNED_PROPERTIES_TYPE",
    "MANIFEST_TYPE",
]

XADES = "http://uri.etsi.org/01903/v1.3.2#"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"
MANIFEST_TYPE = DS + "Manifest"
SAML_ASSERTION = "{urn:oasis:names:tc:SAML:2.0:assertion}Assertion"
SAML_ISSUER = "{urn:oasis:names:tc:SAML:2.0:assertion}Issuer"


def xades(tag: str) -> str:
    return f"{{{XADES}}}{tag}"


@dataclass
class VerifiedSignature:
    cert: x509.Certificate  # the signer
    path: list[x509.Certificate]  # signer ... trust anchor
    signing_time: dt.datetime | None = None
    reference_uris: list[str] = field(default_factory=list)  # data references (SignedProperties excluded)


def _c14n_uri(c14n: str) -> str:
    if c14n not in C14N_ALGORITHMS:
        raise ValueError(f"c14n must be one of {sorted(C14N_ALGORITHMS)}, got {c14n!r}")
    return C14N_ALGORITHMS[c14n]


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


# --- enveloped XML-DSig ------------------------------------------------------------------------------------


def sign_enveloped(
    element: etree._Element,
    key: PrivateKey,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    *,
    reference_uri: str = "",
    c14n: str = "exc",
    after: etree._Element | None = None,
) -> etree._Element:
    """Add an enveloped ``ds:Signature`` to ``element`` and return ``element``.

    The Reference is ``reference_uri``; when empty it is ``""`` for a document element and ``#<ID>`` for an
    element with an ID attribute (a SAML assertion inside a SOAP message). The Signature goes right after
    ``after``, else right after a SAML ``Issuer`` child, else last. KeyInfo carries ``cert`` then ``chain``.
    """
    algorithm = _c14n_uri(c14n)
    if (not reference_uri and element.getparent() is not None) or element.tag == SAML_ASSERTION:
        ident = dsig.element_id(element)
        if not ident:
            raise SignatureError(f"{element.tag} is not the document element and has no ID to reference")
        reference_uri = reference_uri or f"#{ident}"
    signature = dsig.new_signature(c14n=algorithm, signature_method=dsig.signature_method_for(key))
    dsig.add_reference(signature, reference_uri, [ENVELOPED, algorithm])
    dsig.add_key_info(signature, [cert, *chain])
    issuer = after if after is not None else element.find(SAML_ISSUER)
    if issuer is not None:
        issuer.addnext(signature)
    else:
        element.append(signature)
    dsig.finish_signature(signature, key)
    return element


def _only_child_signature(element: etree._Element) -> etree._Element:
    signatures = element.findall(ds("Signature"))
    if not signatures:
        raise SignatureError(f"no ds:Signature in {etree.QName(element).localname}: unsigned")
    if len(signatures) > 1:
        raise SignatureError(f"{len(signatures)} ds:Signature elements in {etree.QName(element).localname}")
    return signatures[0]


def _covers(element: etree._Element, uri: str | None) -> bool:
    if uri in ("", "#xpointer(/)"):
        return element.getparent() is None
    ident = dsig.element_id(element)
    return bool(ident) and uri == f"#{ident}"


def _find_signer(
    signature: etree._Element, candidates: Sequence[x509.Certificate]
) -> x509.Certificate:
    for cert in candidates:
        if dsig.signature_value_verifies(signature, cert):
            return cert
    raise SignatureError("SignatureValue does not verify with the signer certificate")


def verify_enveloped(
    element: etree._Element,
    trusted_certs: Sequence[x509.Certificate],
    *,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Check the enveloped signature of ``element``; return the signer certificate.

    The Signature must be a child of ``element`` with one Reference covering ``element`` (``""`` for the
    document element, ``#<ID>`` otherwise). The signer comes from KeyInfo and must chain to
    ``trusted_certs`` (roots or pinned certificates); without KeyInfo a pinned certificate must verify it.
    """
    signature = _only_child_signature(element)
    references = dsig.check_references(signature)
    if len(references) != 1 or not _covers(element, references[0].get("URI")):
        raise SignatureError("the signature does not cover exactly this element (signature wrapping?)")
    transforms = [t.get("Algorithm") for t in references[0].iterfind(f"{ds('Transforms')}/{ds('Transform')}")]
    if ENVELOPED not in transforms and dsig.XPATH_FILTER2 not in transforms:
        raise SignatureError("the signature does not use the enveloped-signature transform")
    in_key_info = dsig.key_info_certificates(signature)
    signer = _find_signer(signature, in_key_info or list(trusted_certs))
    try:
        validate_chain(signer, in_key_info, trusted_certs, at=now)
    except ChainError as error:
        raise SignatureError(str(error)) from None
    return signer


# --- XAdES-BASELINE-B ----------------------------------------------------------------------------------------


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def issuer_serial_v2(cert: x509.Certificate) -> bytes:
    """DER of RFC 5035 IssuerSerial { issuer GeneralNames (directoryName), serialNumber }."""
    name = cert.issuer.public_bytes()
    general_names = _der(0x30, _der(0xA4, name))  # [4] EXPLICIT Name: Name is a CHOICE
    serial = cert.serial_number
    serial_bytes = serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=True)
    return _der(0x30, general_names + _der(0x02, serial_bytes))


def _signing_time_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _add_qualifying_properties(
    signature: etree._Element,
    signature_id: str,
    cert: x509.Certificate,
    signing_time: dt.datetime | None,
    data_objects: Sequence[tuple[str, str]],
) -> str:
    """Append ds:Object/xades:QualifyingProperties; returns the SignedProperties Id."""
    properties_id = f"xades-{signature_id}"
    holder = sub(signature, ds("Object"))
    qualifying = etree.SubElement(holder, xades("QualifyingProperties"), Target=f"#{signature_id}",
                                  nsmap={"xades": XADES})
    signed = sub(qualifying, xades("SignedProperties"), Id=properties_id)
    signature_properties = sub(signed, xades("SignedSignatureProperties"))
    sub(signature_properties, xades("SigningTime"),
        _signing_time_text(signing_time or dt.datetime.now(dt.timezone.utc)))
    certs = sub(signature_properties, xades("SigningCertificateV2"))
    entry = sub(certs, xades("Cert"))
    digest = sub(entry, xades("CertDigest"))
    sub(digest, ds("DigestMethod"), Algorithm=SHA256)
    sub(digest, ds("DigestValue"), dsig.b64(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()))
    sub(entry, xades("IssuerSerialV2"), dsig.b64(issuer_serial_v2(cert)))
    data_properties = sub(signed, xades("SignedDataObjectProperties"))
    for reference_id, mime_type in data_objects:
        data_format = sub(data_properties, xades("DataObjectFormat"), ObjectReference=f"#{reference_id}")
        sub(data_format, xades("MimeType"), mime_type)
    return properties_id


def sign_xades(
    element: etree._Element,
    key: PrivateKey,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    *,
    exclusion: str = "xpath-filter2",
    signing_time: dt.datetime | None = None,
    c14n: str = "exc",
    mime_type: str = "text/xml",
    signature_id: str | None = None,
) -> etree._Element:
    """Enveloped XAdES-BASELINE-B signature appended to ``element`` (returned).

    The data Reference is ``""`` (``element`` must be the document element) and removes the signature with
    ``exclusion``: ``"xpath-filter2"`` (subtract ``/descendant::ds:Signature``, as the DRIM-M whitelist) or
    ``"enveloped"``. KeyInfo carries ``cert`` then ``chain`` (intermediates, then the root).
    """
    if element.getparent() is not None:
        raise SignatureError("sign_xades signs a whole document: pass its document element")
    algorithm = _c14n_uri(c14n)
    if exclusion == "xpath-filter2":
        remove = dsig.xpath_filter2_subtract()
    elif exclusion == "enveloped":
        remove = ENVELOPED
    else:
        raise ValueError(f"exclusion must be 'xpath-filter2' or 'enveloped', got {exclusion!r}")
    signature_id = signature_id or _new_id("id")
    signature = dsig.new_signature(c14n=algorithm, signature_method=dsig.signature_method_for(key),
                                   signature_id=signature_id)
    data_reference_id = f"r-{signature_id}-1"
    dsig.add_reference(signature, "", [remove, algorithm], reference_id=data_reference_id)
    dsig.add_key_info(signature, [cert, *chain])
    properties_id = _add_qualifying_properties(signature, signature_id, cert, signing_time,
                                               [(data_reference_id, mime_type)])
    dsig.add_reference(signature, f"#{properties_id}", [algorithm], reference_type=SIGNED_PROPERTIES_TYPE)
    element.append(signature)
    dsig.finish_signature(signature, key)
    return element


def sign_xades_enveloping(
    contents: Sequence[tuple[etree._Element, str | None]],
    key: PrivateKey,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    *,
    signing_time: dt.datetime | None = None,
    c14n: str = "exc",
    mime_type: str = "text/xml",
    signature_id: str | None = None,
) -> etree._Element:
    """A new ``ds:Signature`` document element enveloping ``contents`` (returned).

    Each ``(element, reference_type)`` goes into its own ``ds:Object`` and is referenced by its Id (one is
    set when missing), e.g. ``(manifest, MANIFEST_TYPE)`` for an IHE DSG signature of a ds:Manifest.
    """
    algorithm = _c14n_uri(c14n)
    signature_id = signature_id or _new_id("id")
    signature = dsig.new_signature(c14n=algorithm, signature_method=dsig.signature_method_for(key),
                                   signature_id=signature_id)
    dsig.add_key_info(signature, [cert, *chain])
    data_objects = []
    for number, (content, reference_type) in enumerate(contents, start=1):
        content_id = dsig.element_id(content)
        if not content_id:
            content_id = f"o-{signature_id}-{number}"
            content.set("Id", content_id)
        if content.tag == ds("Object"):
            signature.append(content)
        else:
            sub(signature, ds("Object")).append(content)
        reference_id = f"r-{signature_id}-{number}"
        dsig.add_reference(signature, f"#{content_id}", [algorithm], reference_id=reference_id,
                           reference_type=reference_type)
        data_objects.append((reference_id, mime_type))
    properties_id = _add_qualifying_properties(signature, signature_id, cert, signing_time, data_objects)
    dsig.add_reference(signature, f"#{properties_id}", [algorithm], reference_type=SIGNED_PROPERTIES_TYPE)
    dsig.finish_signature(signature, key)
    return signature


def _signed_properties(signature: etree._Element, references: list[etree._Element]) -> etree._Element:
    typed = [r for r in references if r.get("Type") == SIGNED_PROPERTIES_TYPE]
    if len(typed) != 1:
        raise SignatureError(f"XAdES needs exactly one SignedProperties reference, found {len(typed)}")
    uri = typed[0].get("URI") or ""
    signature_id = signature.get("Id")
    for qualifying in signature.iterfind(f"{ds('Object')}/{xades('QualifyingProperties')}"):
        if signature_id and qualifying.get("Target") not in (f"#{signature_id}", None):
            continue
        for properties in qualifying.iterfind(xades("SignedProperties")):
            if uri == f"#{dsig.element_id(properties)}":
                return properties
    raise SignatureError("the SignedProperties reference does not point into this signature's QualifyingProperties")


def _certificate_digest_matches(cert_entry: etree._Element, cert: x509.Certificate) -> bool:
    method = cert_entry.find(f"{xades('CertDigest')}/{ds('DigestMethod')}")
    value = cert_entry.findtext(f"{xades('CertDigest')}/{ds('DigestValue')}")
    if method is None or value is None:
        return False
    name = dsig.DIGESTS.get(method.get("Algorithm"))
    if name is None:
        raise SignatureError(f"unsupported SigningCertificate digest {method.get('Algorithm')!r}")
    digest = hashlib.new(name, cert.public_bytes(serialization.Encoding.DER)).digest()
    return dsig.b64(digest) == "".join(value.split())


def _signing_certificate(properties: etree._Element, candidates: list[x509.Certificate]) -> x509.Certificate:
    entries = properties.findall(
        f"{xades('SignedSignatureProperties')}/{xades('SigningCertificateV2')}/{xades('Cert')}"
    ) or properties.findall(f"{xades('SignedSignatureProperties')}/{xades('SigningCertificate')}/{xades('Cert')}")
    if not entries:
        raise SignatureError("SignedProperties lack SigningCertificateV2")
    for cert in candidates:
        if _certificate_digest_matches(entries[0], cert):
            serial = entries[0].findtext(xades("IssuerSerialV2"))
            if serial and dsig.b64(issuer_serial_v2(cert)) != "".join(serial.split()):
                raise SignatureError("SigningCertificateV2 IssuerSerialV2 does not match the signer certificate")
            return cert
    raise SignatureError("no KeyInfo certificate matches SigningCertificateV2")


def _parse_signing_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SignatureError(f"SigningTime {text!r} is not an xs:dateTime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def verify_xades(
    element: etree._Element,
    trusted_certs: Sequence[x509.Certificate],
    *,
    now: dt.datetime | None = None,
) -> VerifiedSignature:
    """Check a XAdES signature: ``element`` is the ds:Signature (enveloping) or the signed element (enveloped).

    All Reference digests, the SignedProperties reference, SigningCertificateV2 against KeyInfo, the
    SignatureValue, and the signer's path to ``trusted_certs`` at ``now``. Callers check what the data
    references cover (``reference_uris``).
    """
    signature = element if element.tag == ds("Signature") else _only_child_signature(element)
    references = dsig.check_references(signature)
    properties = _signed_properties(signature, references)
    in_key_info = dsig.key_info_certificates(signature)
    if not in_key_info:
        raise SignatureError("KeyInfo carries no X509Certificate")
    signer = _signing_certificate(properties, in_key_info)
    if not dsig.signature_value_verifies(signature, signer):
        raise SignatureError("SignatureValue does not verify with the signer certificate")
    try:
        path = validate_chain(signer, in_key_info, trusted_certs, at=now)
    except ChainError as error:
        raise SignatureError(str(error)) from None
    signing_time = _parse_signing_time(
        properties.findtext(f"{xades('SignedSignatureProperties')}/{xades('SigningTime')}")
    )
    return VerifiedSignature(
        cert=signer,
        path=path,
        signing_time=signing_time,
        reference_uris=[r.get("URI") or "" for r in references if r.get("Type") != SIGNED_PROPERTIES_TYPE],
    )
