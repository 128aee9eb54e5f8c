"""Sign and verify XML: enveloped XML-DSig (VIHF SAML assertion) and XAdES-BASELINE-B (whitelist, DSG).

    sign_enveloped(assertion, key, cert)              # Reference "#<ID>", Signature after saml:Issuer
    verified = verify_enveloped(assertion, [root])
    sign_xades(list_root, key, cert, chain)           # Reference "" with XPath-Filter-2 subtract
    verified = verify_xades(list_root, [root])
    signature = sign_xades_enveloping([(manifest, MANIFEST_TYPE)], key, cert, chain)   # IHE DSG style

Verification returns what was signed: ``verified.signed`` holds, for each data Reference, an element parsed
from the octets its digest covered. Read signed content only from there, never from the document handed in:
text hidden in a subtracted element, comments or a wrapped copy would otherwise be read as if signed.
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
    signed: list[etree._Element] = field(default_factory=list)  # what each data reference covered, same order
    reference_types: list[str | None] = field(default_factory=list)

    def signed_node(self, uri: str) -> etree._Element:
        """The signed content of the data reference ``uri`` (a fresh element: edits do not reach the document)."""
        for reference_uri, node in zip(self.reference_uris, self.signed, strict=True):
            if reference_uri == uri:
                return node
        raise SignatureError(f"the signature has no data reference {uri!r}")


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
    """The one ds:Signature child of ``element``; no other ds:Signature may sit anywhere in ``element``.

    A second signature element, wherever it is, could hide text from a subtracting transform or wrap content.
    """
    signatures = element.findall(ds("Signature"))
    if not signatures:
        raise SignatureError(f"no ds:Signature in {etree.QName(element).localname}: unsigned")
    if len(signatures) > 1:
        raise SignatureError(f"{len(signatures)} ds:Signature elements in {etree.QName(element).localname}")
    everywhere = sum(1 for _ in element.iter(ds("Signature")))
    if everywhere != 1:
        raise SignatureError(f"{everywhere} ds:Signature elements in {etree.QName(element).localname}: only the "
                             "enveloped signature, a direct child, is accepted")
    return signatures[0]


def _covers(element: etree._Element, uri: str | None) -> bool:
    if uri == "":
        return element.getparent() is None
    ident = dsig.element_id(element)
    return bool(ident) and uri == f"#{ident}"


def _only_data_reference(element: etree._Element, references: list[dsig.DigestedReference],
                         ignore_type: str | None = None) -> dsig.DigestedReference:
    data = [r for r in references if ignore_type is None or r.type != ignore_type]
    if len(data) != 1 or not _covers(element, data[0].uri):
        raise SignatureError("the signature does not cover exactly this element (one Reference to the element "
                             "itself expected: signature wrapping?)")
    return data[0]


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
) -> VerifiedSignature:
    """Check the enveloped signature of ``element``; return the signer and the signed element.

    The Signature must be the only one in ``element``, a direct child, with one Reference covering
    ``element`` (``""`` for the document element, ``#<ID>`` otherwise, that ID unique in the document).
    The signer comes from KeyInfo and must chain to ``trusted_certs`` (roots or pinned certificates);
    without KeyInfo a pinned certificate must verify it. ``verified.signed[0]`` is the element as signed.
    """
    signature = _only_child_signature(element)
    reference = _only_data_reference(element, dsig.check_references(signature))
    signed_reference = signature.find(f"{ds('SignedInfo')}/{ds('Reference')}")
    transforms = [t.get("Algorithm") for t in signed_reference.iterfind(f"{ds('Transforms')}/{ds('Transform')}")]
    if ENVELOPED not in transforms and dsig.XPATH_FILTER2 not in transforms:
        raise SignatureError("the signature does not use the enveloped-signature transform")
    in_key_info = dsig.key_info_certificates(signature)
    signer = _find_signer(signature, in_key_info or list(trusted_certs))
    try:
        path = validate_chain(signer, in_key_info, trusted_certs, at=now)
    except ChainError as error:
        raise SignatureError(str(error)) from None
    return VerifiedSignature(cert=signer, path=path, reference_uris=[reference.uri], signed=[reference.node()],
                             reference_types=[reference.type])


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


def _signed_properties(signature: etree._Element, references: list[dsig.DigestedReference]) -> etree._Element:
    """The SignedProperties as signed (parsed from the digested octets), after checking where they sit."""
    typed = [r for r in references if r.type == SIGNED_PROPERTIES_TYPE]
    if len(typed) != 1:
        raise SignatureError(f"XAdES needs exactly one SignedProperties reference, found {len(typed)}")
    uri = typed[0].uri
    signature_id = signature.get("Id")
    for qualifying in signature.iterfind(f"{ds('Object')}/{xades('QualifyingProperties')}"):
        if signature_id and qualifying.get("Target") not in (f"#{signature_id}", None):
            continue
        for properties in qualifying.iterfind(xades("SignedProperties")):
            if uri == f"#{dsig.element_id(properties)}":
                signed = typed[0].node()
                if signed.tag != xades("SignedProperties"):
                    raise SignatureError("the SignedProperties reference covers something else")
                return signed
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
    SignatureValue, and the signer's path to ``trusted_certs`` at ``now``. The document may hold no other
    ds:Signature. Enveloped: exactly one data Reference, to ``element`` itself (``""`` for the document
    element). Enveloping: every data Reference points to content of one of the signature's own ds:Object.
    Read the signed content from ``verified.signed`` (see the module docstring).
    """
    if element.tag == ds("Signature"):
        signature = element
        if sum(1 for _ in element.iter(ds("Signature"))) != 1:
            raise SignatureError("a ds:Signature inside the signature is not accepted")
    else:
        signature = _only_child_signature(element)
    references = dsig.check_references(signature)
    data = [r for r in references if r.type != SIGNED_PROPERTIES_TYPE]
    if signature is element:
        _check_enveloped_objects(signature, data)
    else:
        _only_data_reference(element, references, ignore_type=SIGNED_PROPERTIES_TYPE)
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
        reference_uris=[r.uri for r in data],
        signed=[r.node() for r in data],
        reference_types=[r.type for r in data],
    )


def _check_enveloped_objects(signature: etree._Element, data: list[dsig.DigestedReference]) -> None:
    """Enveloping: each data Reference is ``#id`` of a child of one of this signature's ds:Object."""
    if not data:
        raise SignatureError("the signature has no data Reference")
    own = {dsig.element_id(node) for obj in signature.iterfind(ds("Object")) for node in (obj, *obj)}
    for reference in data:
        if not reference.uri.startswith("#") or reference.uri[1:] not in own - {None}:
            raise SignatureError(f"data Reference {reference.uri!r} does not point into this signature's ds:Object")
