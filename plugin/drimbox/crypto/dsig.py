"""The XML-DSig engine: references, transforms, canonicalisation, SignatureValue, KeyInfo.

Hand-written on lxml's C14N and ``cryptography`` because signxml lacks the XPath-Filter-2 transform the
DRIM-M whitelist uses; signing and verifying share the same reference processing, so what we sign is exactly
what we check. Supported: same-document references (``""`` and ``#id``), enveloped-signature, XPath-Filter-2
``subtract``, C14N 1.0 and exclusive C14N; RSA and ECDSA with SHA-256/384/512. SHA-1 is refused.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

from drimbox.crypto.keys import PrivateKey

DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_WITH_COMMENTS = EXC_C14N + "WithComments"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_WITH_COMMENTS = C14N + "#WithComments"
ENVELOPED = DS + "enveloped-signature"
XPATH_FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"
C14N_ALGORITHMS = {"exc": EXC_C14N, "inclusive": C14N}
# The WithComments variants are refused: a same-document Reference ("" or "#id") drops comments anyway, and a
# reader that saw comments the digest did not would read something else than what was signed.
WITH_COMMENTS = (EXC_C14N_WITH_COMMENTS, C14N_WITH_COMMENTS)
NSMAP = {"ds": DS}

DIGESTS = {
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
DIGEST_URIS = {name: uri for uri, name in DIGESTS.items()}
SHA256 = DIGEST_URIS["sha256"]
_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
SIGNATURES = {
    _MORE + "rsa-sha256": ("rsa", hashes.SHA256),
    _MORE + "rsa-sha384": ("rsa", hashes.SHA384),
    _MORE + "rsa-sha512": ("rsa", hashes.SHA512),
    _MORE + "ecdsa-sha256": ("ec", hashes.SHA256),
    _MORE + "ecdsa-sha384": ("ec", hashes.SHA384),
    _MORE + "ecdsa-sha512": ("ec", hashes.SHA512),
}
RSA_SHA256 = _MORE + "rsa-sha256"
ECDSA_SHA256 = _MORE + "ecdsa-sha256"
ID_ATTRIBUTES = ("Id", "ID", "id", "{http://www.w3.org/XML/1998/namespace}id")


class SignatureError(ValueError):
    """A signature is malformed, unsupported, or does not verify; the message says which."""


def ds(tag: str) -> str:
    return f"{{{DS}}}{tag}"


def parse_xml(data: bytes) -> etree._Element:
    """Parse untrusted XML: no DTD at all (so no entities, XXE or billion laughs), no network, no huge tree."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_blank_text=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise SignatureError(f"not well-formed XML: {error}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise SignatureError("a DOCTYPE (DTD, entities) is not accepted in signed XML")
    if any(True for _ in root.iter(etree.Entity)):
        raise SignatureError("entity references are not accepted in signed XML")
    return root


def element_id(element: etree._Element) -> str | None:
    for name in ID_ATTRIBUTES:
        value = element.get(name)
        if value:
            return value
    return None


def find_by_id(tree: etree._ElementTree, value: str) -> etree._Element:
    matches = tree.xpath(
        "//*[@Id=$v or @ID=$v or @id=$v or @xml:id=$v]", v=value
    )
    if not matches:
        raise SignatureError(f"reference target #{value} not found")
    if len(matches) > 1:
        raise SignatureError(f"reference target #{value} is ambiguous: {len(matches)} elements carry that id")
    return matches[0]


# --- building ------------------------------------------------------------------------------------------------


def sub(parent: etree._Element, tag: str, text: str | None = None, **attributes: str | None) -> etree._Element:
    child = etree.SubElement(parent, tag, {k: v for k, v in attributes.items() if v is not None})
    if text is not None:
        child.text = text
    return child


def new_signature(
    *, c14n: str = EXC_C14N, signature_method: str = RSA_SHA256, signature_id: str | None = None
) -> etree._Element:
    signature = etree.Element(ds("Signature"), nsmap=NSMAP)
    if signature_id:
        signature.set("Id", signature_id)
    signed_info = sub(signature, ds("SignedInfo"))
    sub(signed_info, ds("CanonicalizationMethod"), Algorithm=c14n)
    sub(signed_info, ds("SignatureMethod"), Algorithm=signature_method)
    sub(signature, ds("SignatureValue"))
    return signature


def add_reference(
    signature: etree._Element,
    uri: str,
    transforms: Sequence[str | etree._Element],
    *,
    reference_id: str | None = None,
    reference_type: str | None = None,
    digest: str = SHA256,
) -> etree._Element:
    """Append a Reference; a transform is an algorithm URI or a ready ds:Transform element."""
    signed_info = signature.find(ds("SignedInfo"))
    reference = sub(signed_info, ds("Reference"), Id=reference_id, URI=uri, Type=reference_type)
    if transforms:
        container = sub(reference, ds("Transforms"))
        for transform in transforms:
            if isinstance(transform, str):
                sub(container, ds("Transform"), Algorithm=transform)
            else:
                container.append(transform)
    sub(reference, ds("DigestMethod"), Algorithm=digest)
    sub(reference, ds("DigestValue"))
    return reference


def xpath_filter2_subtract(expression: str = "/descendant::ds:Signature") -> etree._Element:
    transform = etree.Element(ds("Transform"), Algorithm=XPATH_FILTER2, nsmap=NSMAP)
    xpath = etree.SubElement(transform, f"{{{XPATH_FILTER2}}}XPath", Filter="subtract",
                             nsmap={"dsig-xpath": XPATH_FILTER2})
    xpath.text = expression
    return transform


def add_key_info(signature: etree._Element, certs: Iterable[x509.Certificate]) -> etree._Element:
    key_info = etree.Element(ds("KeyInfo"))
    signature.find(ds("SignatureValue")).addnext(key_info)
    x509_data = sub(key_info, ds("X509Data"))
    for cert in certs:
        sub(x509_data, ds("X509Certificate"), b64(cert.public_bytes(serialization.Encoding.DER)))
    return key_info


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def signature_method_for(key: PrivateKey) -> str:
    return ECDSA_SHA256 if isinstance(key, ec.EllipticCurvePrivateKey) else RSA_SHA256


def finish_signature(signature: etree._Element, key: PrivateKey) -> None:
    """Compute every DigestValue, then the SignatureValue; the Signature must already sit in its document."""
    for reference in signature.find(ds("SignedInfo")).iterfind(ds("Reference")):
        reference.find(ds("DigestValue")).text = b64(reference_digest(reference, signature))
    signed_info = signature.find(ds("SignedInfo"))
    data = canonicalize_signed_info(signed_info)
    method = signed_info.find(ds("SignatureMethod")).get("Algorithm")
    kind, hash_class = _signature_algorithm(method)
    if kind == "rsa" and isinstance(key, rsa.RSAPrivateKey):
        value = key.sign(data, padding.PKCS1v15(), hash_class())
    elif kind == "ec" and isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hash_class())))
        size = (key.curve.key_size + 7) // 8
        value = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    else:
        raise SignatureError(f"the key does not fit the signature method {method!r}")
    signature.find(ds("SignatureValue")).text = b64(value)


# --- processing ----------------------------------------------------------------------------------------------


def _signature_algorithm(uri: str | None):
    if uri not in SIGNATURES:
        raise SignatureError(f"unsupported signature algorithm {uri!r} (SHA-1 and others are refused)")
    return SIGNATURES[uri]


def _digest_name(uri: str | None) -> str:
    if uri not in DIGESTS:
        raise SignatureError(f"unsupported digest algorithm {uri!r} (SHA-1 and others are refused)")
    return DIGESTS[uri]


def _detach(element: etree._Element) -> None:
    """Remove ``element`` and its subtree but keep the text that follows it (lxml moves the tail otherwise)."""
    parent = element.getparent()
    if parent is None:
        raise SignatureError("a transform would remove the document element")
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _canonicalize(node, algorithm: str, transform: etree._Element | None) -> bytes:
    if algorithm in WITH_COMMENTS:
        raise SignatureError(f"canonicalisation {algorithm} is refused (comments are never signed here)")
    exclusive = algorithm in (EXC_C14N, EXC_C14N_WITH_COMMENTS)
    prefixes = None
    if exclusive and transform is not None:
        inclusive = transform.find(f"{{{EXC_C14N}}}InclusiveNamespaces")
        if inclusive is not None:
            prefixes = [p for p in (inclusive.get("PrefixList") or "").split() if p != "#default"] or None
    try:
        return etree.tostring(node, method="c14n", exclusive=exclusive, with_comments=False,
                              inclusive_ns_prefixes=prefixes)
    except etree.C14NError as error:
        raise SignatureError(f"canonicalisation failed (relative namespace URI?): {error}") from None


def canonicalize_signed_info(signed_info: etree._Element) -> bytes:
    method = signed_info.find(ds("CanonicalizationMethod"))
    algorithm = method.get("Algorithm") if method is not None else None
    if algorithm not in (EXC_C14N, C14N, *WITH_COMMENTS):
        raise SignatureError(f"unsupported SignedInfo canonicalisation {algorithm!r}")
    return _canonicalize(signed_info, algorithm, method)


def reference_octets(reference: etree._Element, signature: etree._Element) -> bytes:
    """Dereference and transform a same-document Reference, on a copy of the document."""
    uri = reference.get("URI")
    if uri is None or (uri and not uri.startswith("#")):
        raise SignatureError(f"only same-document references are supported, got URI={uri!r}")
    if uri.startswith("#xpointer("):
        raise SignatureError(f"XPointer references are not supported, got URI={uri!r} (use \"\" or #id)")
    original = signature.getroottree()
    tree = copy.deepcopy(original)
    signature_copy = _same_node(tree, signature)
    whole_document = uri == ""
    if whole_document:
        target = tree.getroot()
    else:
        target = find_by_id(tree, uri[1:])
    octets: bytes | None = None
    for transform in reference.iterfind(f"{ds('Transforms')}/{ds('Transform')}"):
        algorithm = transform.get("Algorithm")
        if octets is not None:
            raise SignatureError(f"transform {algorithm} after canonicalisation is not supported")
        if algorithm == ENVELOPED:
            if signature_copy is target:
                raise SignatureError("enveloped-signature transform on the signature itself")
            if any(ancestor is target for ancestor in signature_copy.iterancestors()):
                _detach(signature_copy)
        elif algorithm == XPATH_FILTER2:
            _apply_filter2(tree, transform)
        elif algorithm in (EXC_C14N, C14N, *WITH_COMMENTS):
            octets = _canonicalize(tree if whole_document else target, algorithm, transform)
        else:
            raise SignatureError(f"unsupported transform {algorithm!r}")
    if octets is None:
        octets = _canonicalize(tree if whole_document else target, C14N, None)
    return octets


def _same_node(tree: etree._ElementTree, element: etree._Element) -> etree._Element:
    """The node of ``tree`` (a copy) at the position ``element`` has in its own document."""
    positions = []
    node = element
    while node.getparent() is not None:
        positions.append(node.getparent().index(node))
        node = node.getparent()
    found = tree.getroot()
    for position in reversed(positions):
        found = found[position]
    return found


def _apply_filter2(tree: etree._ElementTree, transform: etree._Element) -> None:
    filters = transform.findall(f"{{{XPATH_FILTER2}}}XPath")
    if not filters:
        raise SignatureError("XPath-Filter-2 transform without an XPath element")
    for xpath in filters:
        if xpath.get("Filter") != "subtract":
            raise SignatureError(f"XPath-Filter-2 filter {xpath.get('Filter')!r} is not supported (only subtract)")
        namespaces = {prefix: uri for prefix, uri in xpath.nsmap.items() if prefix}
        try:
            nodes = tree.xpath((xpath.text or "").strip(), namespaces=namespaces)
        except etree.XPathError as error:
            raise SignatureError(f"XPath-Filter-2 expression {xpath.text!r} is invalid: {error}") from None
        if not isinstance(nodes, list):
            raise SignatureError(f"XPath-Filter-2 expression {xpath.text!r} does not select nodes")
        # Subtracting a node removes its whole subtree; only element subtrees are meaningful here.
        for node in nodes:
            if isinstance(node, etree._Element) and node.getparent() is not None:
                _detach(node)
            elif isinstance(node, etree._Element):
                raise SignatureError("XPath-Filter-2 subtract would remove the document element")


def reference_digest(reference: etree._Element, signature: etree._Element) -> bytes:
    method = reference.find(ds("DigestMethod"))
    name = _digest_name(method.get("Algorithm") if method is not None else None)
    return hashlib.new(name, reference_octets(reference, signature)).digest()


@dataclass(frozen=True)
class DigestedReference:
    """A Reference whose digest matched, with the octets that were digested."""

    uri: str
    type: str | None
    octets: bytes

    def node(self) -> etree._Element:
        """A fresh element parsed from the digested octets: exactly what was signed, nothing else.

        Whatever a transform removed (other signatures, comments, processing instructions) is absent, so a
        caller reading from it cannot be misled by content the signature does not cover.
        """
        return parse_xml(self.octets)


def refuse_unsigned_markup(signature: etree._Element) -> None:
    """Comments and processing instructions in a Signature are not signed and could split what we read."""
    for node in signature.iter(etree.Comment, etree.ProcessingInstruction):
        kind = "comment" if isinstance(node, etree._Comment) else "processing instruction"
        raise SignatureError(f"the Signature holds a {kind}, which the signature does not cover")


def check_references(signature: etree._Element) -> list[DigestedReference]:
    """Every Reference digest matches; returns them in SignedInfo order with what each digest covered."""
    refuse_unsigned_markup(signature)
    signed_info = signature.find(ds("SignedInfo"))
    if signed_info is None:
        raise SignatureError("Signature has no SignedInfo")
    references = signed_info.findall(ds("Reference"))
    if not references:
        raise SignatureError("SignedInfo has no Reference")
    checked = []
    for reference in references:
        expected = _b64decode(reference.findtext(ds("DigestValue")), "DigestValue")
        method = reference.find(ds("DigestMethod"))
        name = _digest_name(method.get("Algorithm") if method is not None else None)
        octets = reference_octets(reference, signature)
        if hashlib.new(name, octets).digest() != expected:
            raise SignatureError(f"digest mismatch for reference URI={reference.get('URI')!r}: content altered")
        checked.append(DigestedReference(reference.get("URI") or "", reference.get("Type"), octets))
    return checked


def _b64decode(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except ValueError:
        raise SignatureError(f"{what} is not valid base64") from None


def key_info_certificates(signature: etree._Element) -> list[x509.Certificate]:
    certs = []
    for node in signature.iterfind(f"{ds('KeyInfo')}/{ds('X509Data')}/{ds('X509Certificate')}"):
        try:
            certs.append(x509.load_der_x509_certificate(_b64decode(node.text, "X509Certificate")))
        except ValueError as error:
            raise SignatureError(f"KeyInfo holds an unreadable certificate: {error}") from None
    return certs


def signature_value_verifies(signature: etree._Element, cert: x509.Certificate) -> bool:
    signed_info = signature.find(ds("SignedInfo"))
    method = signed_info.find(ds("SignatureMethod"))
    kind, hash_class = _signature_algorithm(method.get("Algorithm") if method is not None else None)
    value = _b64decode(signature.findtext(ds("SignatureValue")), "SignatureValue")
    data = canonicalize_signed_info(signed_info)
    public_key = cert.public_key()
    try:
        if kind == "rsa" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(value, data, padding.PKCS1v15(), hash_class())
            return True
        if kind == "ec" and isinstance(public_key, ec.EllipticCurvePublicKey):
            half = len(value) // 2
            der = encode_dss_signature(int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big"))
            public_key.verify(der, data, ec.ECDSA(hash_class()))
            return True
    except InvalidSignature:
        return False
    return False
