"""The IHE DSG signature document of a lot: a XAdES signature enveloping an IHE manifest.

The ds:Manifest lists one Reference per document of the lot (``URI="urn:oid:<uniqueId>"``, digest of the bytes
as submitted); a ds:SignatureProperty states the purpose of signature (1.2.840.10065.1.12.1.14, "Source").
The XML signature itself is made and checked by ``drimbox.crypto.xmlsig``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from drimbox.crypto import xmlsig
from drimbox.crypto.dsig import SignatureError, parse_xml
from drimbox.crypto.keys import PrivateKey
from drimbox.dmp.xds_ids import DS, DSG_PURPOSE_OF_SIGNATURE

DIGEST_ALGORITHMS = {
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha1": "http://www.w3.org/2000/09/xmldsig#sha1",
}
SIGNATURE_PROPERTIES_TYPE = DS + "SignatureProperties"
MANIFEST_ID = "IHEManifest"


class DsgError(ValueError):
    """A DSG signature document is malformed or does not match the documents it claims to sign."""


@dataclass(frozen=True)
class SignedDocument:
    unique_id: str  # XDSDocumentEntry.uniqueId
    data: bytes


def _ds(tag: str) -> str:
    return f"{{{DS}}}{tag}"


def build_manifest(documents: Sequence[SignedDocument], digest: str = "sha256") -> etree._Element:
    if digest not in DIGEST_ALGORITHMS:
        raise ValueError(f"digest must be one of {sorted(DIGEST_ALGORITHMS)}, got {digest!r}")
    manifest = etree.Element(_ds("Manifest"), Id=MANIFEST_ID, nsmap={"ds": DS})
    for document in documents:
        reference = etree.SubElement(manifest, _ds("Reference"), URI=f"urn:oid:{document.unique_id}")
        etree.SubElement(reference, _ds("DigestMethod"), Algorithm=DIGEST_ALGORITHMS[digest])
        value = hashlib.new(digest, document.data).digest()
        etree.SubElement(reference, _ds("DigestValue")).text = base64.b64encode(value).decode("ascii")
    return manifest


def build_signature_properties(signature_id: str) -> etree._Element:
    holder = etree.Element(_ds("Object"), Id="purposeOfSignatureObject", nsmap={"ds": DS})
    properties = etree.SubElement(holder, _ds("SignatureProperties"))
    prop = etree.SubElement(properties, _ds("SignatureProperty"), Id="purposeOfSignature",
                            Target=f"#{signature_id}")
    prop.text = DSG_PURPOSE_OF_SIGNATURE
    return holder


def build_dsg(
    documents: Sequence[SignedDocument],
    *,
    key: PrivateKey,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    signing_time: dt.datetime,
    signature_id: str,
    digest: str = "sha256",
) -> bytes:
    """The signature document's bytes (UTF-8 XML with declaration), as hashed in the XDS metadata."""
    manifest = build_manifest(documents, digest)
    properties = build_signature_properties(signature_id)
    signature = xmlsig.sign_xades_enveloping(
        [(manifest, xmlsig.MANIFEST_TYPE), (properties, SIGNATURE_PROPERTIES_TYPE)],
        key, cert, chain, signing_time=signing_time, signature_id=signature_id,
    )
    return etree.tostring(signature, xml_declaration=True, encoding="UTF-8")


def manifest_digests(signature_document: bytes) -> dict[str, tuple[str, bytes]]:
    """``uniqueId -> (digest name, digest)`` of the manifest's References, as the document claims (unverified)."""
    manifests = _parse(signature_document).findall(f".//{_ds('Manifest')}")
    if len(manifests) != 1:
        raise DsgError(f"{len(manifests)} ds:Manifest elements in the signature document, expected 1")
    return _digests_of(manifests[0])


def _digests_of(manifest: etree._Element) -> dict[str, tuple[str, bytes]]:
    names = {uri: name for name, uri in DIGEST_ALGORITHMS.items()}
    result = {}
    for reference in manifest.iterfind(_ds("Reference")):
        uri = reference.get("URI", "")
        if not uri.startswith("urn:oid:"):
            raise DsgError(f"manifest Reference URI is not urn:oid: ({uri!r})")
        method = reference.find(_ds("DigestMethod"))
        name = names.get(method.get("Algorithm", "") if method is not None else "")
        if name is None:
            raise DsgError(f"unsupported manifest digest for {uri}")
        value = base64.b64decode("".join((reference.findtext(_ds("DigestValue")) or "").split()))
        if uri[len("urn:oid:"):] in result:
            raise DsgError(f"manifest lists {uri} twice")
        result[uri[len("urn:oid:"):]] = (name, value)
    return result


def verify_dsg(
    signature_document: bytes,
    documents: Mapping[str, bytes],
    trusted_certs: Sequence[x509.Certificate],
    *,
    now: dt.datetime | None = None,
) -> xmlsig.VerifiedSignature:
    """Check the XAdES signature, the purpose of signature, and that the manifest lists exactly ``documents``.

    The manifest and the purpose are read from what the signature covers, never from the rest of the document.
    """
    root = _parse(signature_document)
    verified = xmlsig.verify_xades(root, trusted_certs, now=now)
    signed = list(zip(verified.reference_types, verified.signed, strict=True))
    manifests = [node for kind, node in signed if kind == xmlsig.MANIFEST_TYPE and node.tag == _ds("Manifest")]
    if len(manifests) != 1:
        raise DsgError(f"the signature covers {len(manifests)} IHE manifests, expected 1")
    purposes = [
        prop.text for kind, node in signed if kind == SIGNATURE_PROPERTIES_TYPE
        for prop in node.iter(_ds("SignatureProperty")) if prop.get("Id") == "purposeOfSignature"
    ]
    if purposes != [DSG_PURPOSE_OF_SIGNATURE]:
        raise DsgError(f"purposeOfSignature is {purposes}, expected [{DSG_PURPOSE_OF_SIGNATURE}]")
    listed = _digests_of(manifests[0])
    if set(listed) != set(documents):
        raise DsgError(f"manifest lists {sorted(listed)}, the lot holds {sorted(documents)}")
    for unique_id, (name, value) in listed.items():
        if hashlib.new(name, documents[unique_id]).digest() != value:
            raise DsgError(f"manifest digest of {unique_id} does not match the document")
    return verified


def _parse(data: bytes) -> etree._Element:
    try:
        root = parse_xml(data)
    except SignatureError as error:
        raise DsgError(f"signature document refused: {error}") from None
    if root.tag != _ds("Signature"):
        raise DsgError(f"signature document root is {root.tag}, expected ds:Signature")
    return root
