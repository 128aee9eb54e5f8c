"""Signed whitelists for tests and the demo (the national operator signs the real one)."""

from __future__ import annotations

import datetime as dt
from typing import Iterable, Mapping, Sequence

from cryptography import x509
from lxml import etree

from drimbox.crypto.keys import PrivateKey
from drimbox.crypto.pki import load_issued
from drimbox.crypto.xmlsig import sign_xades
from drimbox.trust.whitelist import ROOT_NAME, Domain

# The national list's namespace has changed between versions; readers match local names only.
DEFAULT_NAMESPACE = "urn:drimbox:test:liste-blanche-drim-m"


def _as_domain(value: Domain | Mapping) -> Domain:
    if isinstance(value, Domain):
        return value
    known = {name: value[name] for name in ("id", "db", "vi", "name", "operator_dn", "updated_at") if name in value}
    return Domain(**known)


def _utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_whitelist(
    domains: Iterable[Domain | Mapping],
    *,
    namespace: str | None = DEFAULT_NAMESPACE,
    generated_at: dt.datetime | None = None,
    version_format: str = "1.0.0",
) -> etree._Element:
    """The unsigned list document."""
    generated_at = generated_at or dt.datetime.now(dt.timezone.utc)
    qualify = (lambda name: f"{{{namespace}}}{name}") if namespace else (lambda name: name)
    root = etree.Element(qualify(ROOT_NAME), versionFormat=version_format,
                         nsmap={None: namespace} if namespace else None)
    etree.SubElement(root, qualify("DateDeGeneration")).text = _utc_text(generated_at)
    container = etree.SubElement(root, qualify("ListeDomaines"))
    for domain in map(_as_domain, domains):
        element = etree.SubElement(container, qualify("Domaine"))
        for tag, value in (
            ("Identifiant", domain.id), ("db", domain.db), ("vi", domain.vi), ("Denomination", domain.name),
            ("DNCertificatOperateur", domain.operator_dn),
            ("DateMAJ", domain.updated_at or _utc_text(generated_at)),
        ):
            etree.SubElement(element, qualify(tag)).text = value
    etree.indent(root)
    return root


def make_whitelist(
    domains: Iterable[Domain | Mapping],
    *,
    signer_key: PrivateKey,
    signer_cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    namespace: str | None = DEFAULT_NAMESPACE,
    generated_at: dt.datetime | None = None,
    signing_time: dt.datetime | None = None,
) -> bytes:
    """A whitelist signed like the national one (XAdES-B, XPath-Filter-2, KeyInfo = signer + ``chain``)."""
    root = build_whitelist(domains, namespace=namespace, generated_at=generated_at)
    sign_xades(root, signer_key, signer_cert, chain, exclusion="xpath-filter2", signing_time=signing_time)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def make_demo_whitelist(pki: Mapping, boxes: Mapping[str, Mapping[str, str]], **options) -> bytes:
    """A list of ``boxes`` (name -> {db, vi, operator_dn?}) signed by the test PKI's whitelist signer.

    ``operator_dn`` defaults to the subject of the box's authentication certificate in ``pki``.
    """
    signer = load_issued(pki["whitelist_signer"])
    chain = [*signer.chain]
    root_cert = load_issued({"cert": pki["root"]["cert"], "key": pki["root"]["key"]}).cert
    if root_cert not in chain:
        chain.append(root_cert)
    domains = []
    for name, box in boxes.items():
        operator_dn = box.get("operator_dn") or pki.get("boxes", {}).get(name, {}).get("auth", {}).get("subject", "")
        domains.append(Domain(id=box.get("id", name), db=box["db"], vi=box.get("vi", ""),
                              name=box.get("name", f"DRIMbox {name}"), operator_dn=operator_dn))
    return make_whitelist(domains, signer_key=signer.key, signer_cert=signer.cert, chain=chain, **options)
