"""Verification of an IHE DSG signature document (XAdES enveloping a ds:Manifest of the lot's documents).

The signature is verified with signxml's XAdES verifier against the simulator's trusted signing CAs. What the
registry then compares with the submitted documents (the manifest digests, the purpose of signature) is read
only from the node-sets signxml returns as verified, never from the parsed document.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography import x509
from lxml import etree
from signxml import SignatureMethod
from signxml.algorithms import DigestAlgorithm
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

from . import constants as c
from .dsig_rules import (
    C14N_WITH_COMMENTS,
    C14N_WITHOUT_COMMENTS,
    RSA_SIGNATURE_METHODS,
    document_level_node,
    ds,
    elements_with_id,
    smuggled_node,
    transform_algorithms,
)
from .signers import SignerTrust, UntrustedSigner, key_info_certificates, leaf_of

MANIFEST_TYPE = c.DS + "Manifest"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"
DIGESTS = {
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
_CONFIG = XAdESSignatureConfiguration(
    location="./",
    expect_references=True,  # any number: the shape check below fixes which ones
    signature_methods=frozenset(SignatureMethod(m) for m in RSA_SIGNATURE_METHODS),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}),
    ignore_ambiguous_key_info=True,
)
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class DsgRefused(ValueError):
    """The signature document is not a valid IHE DSG signature; the message says why."""


@dataclass(frozen=True)
class VerifiedDsg:
    signer: x509.Certificate
    digests: dict[str, tuple[str, bytes]]  # uniqueId -> (hashlib name, digest), from the verified manifest
    purpose: str  # purposeOfSignature, from the verified SignatureProperty


def verify_dsg(data: bytes, trust: SignerTrust) -> VerifiedDsg:
    root = _parse(data)
    references = _check_shape(root)
    signer = _signer(root, trust)
    try:
        # No XML-DSig schema validation: the IHE DSG purposeOfSignature is a text-only SignatureProperty, which
        # the schema does not allow; the shape check above fixes what may appear instead.
        results = XAdESVerifier().verify(root, x509_cert=signer, expect_config=_CONFIG, validate_schema=False)
    except Exception as exc:  # signxml raises several exception types; all mean "does not verify"
        raise DsgRefused(f"the XAdES signature does not verify: {exc}") from None
    if len(results) != len(references):
        raise DsgRefused("signxml verified another number of references than SignedInfo holds")
    # signxml returns one result per SignedInfo Reference, in order: pair each verified node with its Type.
    covered: list[tuple[str | None, etree._Element]] = []
    for ref, result in zip(references, results, strict=True):
        if result.signed_xml is None:
            raise DsgRefused(f"Reference {ref.get('URI')} does not cover XML content")
        covered.append((ref.get("Type"), result.signed_xml))
    manifests = [node for kind, node in covered if kind == MANIFEST_TYPE]
    if len(manifests) != 1 or manifests[0].tag != ds("Manifest"):
        raise DsgRefused("the Manifest-typed reference does not cover a ds:Manifest")
    others = [node for kind, node in covered if kind not in (MANIFEST_TYPE, SIGNED_PROPERTIES_TYPE)]
    return VerifiedDsg(signer, _manifest_digests(manifests[0]), _purpose(others))


def _parse(data: bytes) -> etree._Element:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise DsgRefused(f"not well-formed XML ({exc})") from None
    outside = document_level_node(root)
    if outside:
        raise DsgRefused(f"{outside} outside the ds:Signature is refused")
    smuggled = smuggled_node(root)
    if smuggled:
        raise DsgRefused(f"{smuggled}: comments and processing instructions are not signed and are refused")
    if root.tag != ds("Signature"):
        raise DsgRefused(f"the document element is {etree.QName(root).localname}, expected an enveloping "
                         "ds:Signature")
    nested = sum(1 for _ in root.iter(ds("Signature"))) - 1
    if nested:
        raise DsgRefused(f"{nested} more ds:Signature element(s) inside the signature document")
    return root


def _check_shape(root: etree._Element) -> list[etree._Element]:
    """The SignedInfo references, once each is known to point at a ds:Object content of this signature."""
    signed_info = root.find(ds("SignedInfo"))
    if signed_info is None:
        raise DsgRefused("ds:SignedInfo missing")
    c14n = signed_info.find(ds("CanonicalizationMethod"))
    algorithm = "" if c14n is None else c14n.get("Algorithm", "")
    if algorithm in C14N_WITH_COMMENTS:
        raise DsgRefused(f"SignedInfo canonicalization {algorithm} keeps comments: refused")
    if algorithm not in C14N_WITHOUT_COMMENTS:
        raise DsgRefused(f"SignedInfo canonicalization {algorithm!r} is not supported")
    method = signed_info.find(ds("SignatureMethod"))
    if method is None or method.get("Algorithm") not in RSA_SIGNATURE_METHODS:
        raise DsgRefused(f"SignatureMethod {None if method is None else method.get('Algorithm')!r} refused: "
                         "RSA-SHA256 required")
    references = signed_info.findall(ds("Reference"))
    kinds = [ref.get("Type") for ref in references]
    if kinds.count(MANIFEST_TYPE) != 1 or kinds.count(SIGNED_PROPERTIES_TYPE) != 1:
        raise DsgRefused("SignedInfo must reference exactly one ds:Manifest and one xades:SignedProperties")
    objects = set(root.findall(ds("Object")))
    for ref in references:
        uri = ref.get("URI", "")
        if not uri.startswith("#") or len(uri) < 2:
            raise DsgRefused(f"Reference URI {uri!r} refused: only #id references into the signature's objects")
        holders = elements_with_id(root, uri[1:])
        if len(holders) != 1:
            raise DsgRefused(f"Id {uri[1:]!r} is carried by {len(holders)} elements (signature wrapping?)")
        target = holders[0]
        if not any(target is obj or obj in target.iterancestors() for obj in objects):
            raise DsgRefused(f"Reference {uri} does not point into a ds:Object of this signature")
        transforms = transform_algorithms(ref)
        if any(t in C14N_WITH_COMMENTS for t in transforms):
            raise DsgRefused(f"Reference {uri}: a WithComments canonicalization is refused")
        if any(t not in C14N_WITHOUT_COMMENTS for t in transforms):
            raise DsgRefused(f"Reference {uri}: transforms {transforms} refused (canonicalization only)")
    return references


def _signer(root: etree._Element, trust: SignerTrust) -> x509.Certificate:
    try:
        certs = key_info_certificates(root)
        signer = leaf_of(certs)
        trust.check(signer, certs)
    except UntrustedSigner as exc:
        raise DsgRefused(f"signer refused: {exc}") from None
    return signer


def _manifest_digests(manifest: etree._Element) -> dict[str, tuple[str, bytes]]:
    digests: dict[str, tuple[str, bytes]] = {}
    for ref in manifest.iterfind(ds("Reference")):
        uri = ref.get("URI", "")
        if not uri.startswith("urn:oid:") or uri[len("urn:oid:"):] in digests:
            raise DsgRefused(f"manifest Reference URI {uri!r} must be a urn:oid: listed once")
        method = ref.find(ds("DigestMethod"))
        name = DIGESTS.get("" if method is None else method.get("Algorithm", ""))
        if name is None:
            raise DsgRefused(f"manifest Reference {uri}: unsupported digest method")
        try:
            value = base64.b64decode("".join((ref.findtext(ds("DigestValue")) or "").split()), validate=True)
        except ValueError:
            raise DsgRefused(f"manifest Reference {uri}: DigestValue is not base64") from None
        digests[uri[len("urn:oid:"):]] = (name, value)
    if not digests:
        raise DsgRefused("the manifest lists no document")
    return digests


def _purpose(verified: list[etree._Element]) -> str:
    purposes = [(p.text or "").strip() for el in verified for p in el.iter(ds("SignatureProperty"))
                if p.get("Id") == "purposeOfSignature"]
    if len(purposes) != 1:
        raise DsgRefused(f"the signature must cover exactly one purposeOfSignature property (found {len(purposes)})")
    return purposes[0]
