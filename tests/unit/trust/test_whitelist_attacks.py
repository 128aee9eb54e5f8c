"""Attacks on a really signed whitelist: each tampered list is refused (or read exactly as signed) and the
keeper keeps the last valid list in force."""

from __future__ import annotations

import base64
import re
from typing import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from drimbox.crypto import dsig
from drimbox.crypto.pki import create_test_pki, load_issued
from drimbox.samples.whitelist import make_whitelist
from drimbox.trust.whitelist import Domain, WhitelistKeeper, verify_whitelist

DS = dsig.DS
DN_B = "CN=AUTH_CLI box-b,OU=310000000002002,O=B,C=FR"
DOMAINS = [
    # box A has no operator DN in the signed list: nobody may supply one afterwards
    Domain("D-A", "db.box-a.test", "vi.box-a.test", "Box A", ""),
    Domain("D-B", "db.box-b.test", "vi.box-b.test", "Box B", DN_B),
]
SIG_OPEN = f'<ds:Signature xmlns:ds="{DS}">'.encode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict:
    return create_test_pki(tmp_path_factory.mktemp("pki"), boxes=())


@pytest.fixture(scope="module")
def signer(pki):
    return load_issued(pki["whitelist_signer"])


@pytest.fixture(scope="module")
def root(pki):
    return load_issued(pki["root"]).cert


@pytest.fixture(scope="module")
def crl(pki) -> bytes:
    return open(pki["crl"], "rb").read()


@pytest.fixture(scope="module")
def good(signer, root) -> bytes:
    return make_whitelist(DOMAINS, signer_key=signer.key, signer_cert=signer.cert, chain=[*signer.chain, root])


def _replace_once(xml: bytes, old: bytes, new: bytes) -> bytes:
    assert xml.count(old) == 1, old
    return xml.replace(old, new)


def _empty_field(xml: bytes, name: bytes, content: bytes) -> bytes:
    """Fill the (signed as empty) field ``name`` of domain D-A with ``content``."""
    pattern = re.compile(rb"<" + name + rb"(/>|></" + name + rb">)")
    match = pattern.search(xml)
    assert match is not None
    return xml[:match.start()] + b"<" + name + b">" + content + b"</" + name + b">" + xml[match.end():]


def _resign(xml: bytes, key, mutate: Callable[[etree._Element, etree._Element], None]) -> bytes:
    """What a signer would produce with another signature layout: ``mutate`` then digests and value again."""
    document = dsig.parse_xml(xml)
    signature = document.find(f"{{{DS}}}Signature")
    mutate(document, signature)
    dsig.finish_signature(signature, key)
    return etree.tostring(document.getroottree(), xml_declaration=True, encoding="UTF-8")


def _resign_with_comments(xml: bytes, key) -> bytes:
    """The same signature with every canonicalisation switched to its WithComments variant, signed again.

    The document holds no comment and the references are same-document ones, so every digest stays valid.
    """
    document = dsig.parse_xml(xml)
    signature = document.find(f"{{{DS}}}Signature")
    signed_info = signature.find(f"{{{DS}}}SignedInfo")
    for node in signed_info.iter(f"{{{DS}}}CanonicalizationMethod", f"{{{DS}}}Transform"):
        if node.get("Algorithm") == dsig.EXC_C14N:
            node.set("Algorithm", dsig.EXC_C14N_WITH_COMMENTS)
    data = etree.tostring(signed_info, method="c14n", exclusive=True, with_comments=True)
    value = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    signature.find(f"{{{DS}}}SignatureValue").text = base64.b64encode(value).decode()
    return etree.tostring(document.getroottree(), xml_declaration=True, encoding="UTF-8")


def _second_reference(document: etree._Element, signature: etree._Element) -> None:
    signed_info = signature.find(f"{{{DS}}}SignedInfo")
    first = signed_info.find(f"{{{DS}}}Reference")
    first.addnext(etree.fromstring(etree.tostring(first)))


def _reference_to_one_domain(document: etree._Element, signature: etree._Element) -> None:
    domain = document.find(".//{*}Domaine")
    domain.set("Id", "dom-a")
    reference = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    reference.set("URI", "#dom-a")
    transforms = reference.find(f"{{{DS}}}Transforms")
    transforms.remove(transforms[0])  # the XPath-Filter-2 subtract


BILLION_LAUGHS = (
    b'<!DOCTYPE ListeBlancheDRIM-M [<!ENTITY a "hahahahahahahahahaha">'
    + b"".join(b"<!ENTITY %s \"%s\">" % (bytes([98 + i]), (b"&" + bytes([97 + i]) + b";") * 10) for i in range(8))
    + b"]>\n"
)


def _with_doctype(xml: bytes, doctype: bytes) -> bytes:
    return _replace_once(xml, b"<ListeBlancheDRIM-M", doctype + b"<ListeBlancheDRIM-M")


def _signed_properties_wrapped(xml: bytes) -> bytes:
    """A second QualifyingProperties with the same SignedProperties Id, first in the signature (ID wrapping)."""
    qualifying = re.search(rb"<xades:QualifyingProperties .*?</xades:QualifyingProperties>", xml, re.S)
    assert qualifying is not None
    forged = re.sub(rb"<xades:SigningTime>[^<]*<", b"<xades:SigningTime>2001-01-01T00:00:00Z<", qualifying.group(0))
    return _replace_once(xml, b"<ds:Object>", b"<ds:Object>" + forged + b"</ds:Object><ds:Object>")


def _wrapped_in_new_root(xml: bytes) -> bytes:
    body = xml.split(b"?>", 1)[1]
    return (b'<ListeBlancheDRIM-M xmlns="urn:drimbox:test:liste-blanche-drim-m" versionFormat="1.0.0">'
            b"<ListeDomaines><Domaine><Identifiant>EVIL</Identifiant><db>db.evil.example</db></Domaine>"
            b"</ListeDomaines>" + body + b"</ListeBlancheDRIM-M>")


def _signature_moved_into_list(xml: bytes) -> bytes:
    start, end = xml.index(b"<ds:Signature"), xml.index(b"</ds:Signature>") + len(b"</ds:Signature>")
    signature, rest = xml[start:end], xml[:start] + xml[end:]
    return _replace_once(rest, b"</ListeDomaines>", signature + b"</ListeDomaines>")


# name -> (tamper(good, signer_key), words expected in the refusal)
ATTACKS = {
    # text inside a ds:Signature is subtracted from the digest: a reader of the whole subtree would see it
    "signature-inside-db": (
        lambda xml, key: _replace_once(xml, b"<db>db.box-b.test</db>",
                                       b"<db>db.box-b.test" + SIG_OPEN + b".evil.example</ds:Signature></db>"),
        "ds:Signature"),
    "signature-fills-empty-operator-dn": (
        lambda xml, key: _empty_field(xml, b"DNCertificatOperateur",
                                      SIG_OPEN + b"CN=AUTH_CLI evil,OU=1,O=EVIL,C=FR</ds:Signature>"),
        "ds:Signature"),
    "signature-holds-a-domain": (
        lambda xml, key: _replace_once(xml, b"</ListeDomaines>", SIG_OPEN + b"<Domaine><Identifiant>EVIL"
                                       b"</Identifiant><db>db.evil.example</db></Domaine></ds:Signature>"
                                       b"</ListeDomaines>"),
        "ds:Signature"),
    "signature-holds-another-list": (
        lambda xml, key: _replace_once(xml, b"</ListeDomaines>", SIG_OPEN + b"<ListeBlancheDRIM-M><ListeDomaines>"
                                       b"<Domaine><db>db.evil.example</db></Domaine></ListeDomaines>"
                                       b"</ListeBlancheDRIM-M></ds:Signature></ListeDomaines>"),
        "ds:Signature"),
    "processing-instruction-in-db": (
        lambda xml, key: _replace_once(xml, b"<db>db.box-b.test</db>", b"<db>db.box-b<?evil x?>.test</db>"),
        "digest mismatch"),
    "with-comments-canonicalisation": (_resign_with_comments, "WithComments"),
    "two-data-references": (lambda xml, key: _resign(xml, key, _second_reference), "cover exactly"),
    "reference-to-one-domain-then-a-domain-added": (
        lambda xml, key: _replace_once(_resign(xml, key, _reference_to_one_domain), b"</ListeDomaines>",
                                       b"<Domaine><Identifiant>EVIL</Identifiant><db>db.evil.example</db>"
                                       b"</Domaine></ListeDomaines>"),
        "cover exactly"),
    "duplicate-signed-properties-id": (lambda xml, key: _signed_properties_wrapped(xml), "ambiguous"),
    "billion-laughs": (
        lambda xml, key: _with_doctype(xml, BILLION_LAUGHS).replace(b"<vi>vi.box-a.test</vi>", b"<vi>&i;</vi>"),
        "unreadable list"),
    "unused-internal-dtd": (lambda xml, key: _with_doctype(xml, b'<!DOCTYPE ListeBlancheDRIM-M [<!ENTITY x "y">]>'),
                            "DOCTYPE"),
    "external-entity": (
        lambda xml, key: _with_doctype(xml, b'<!DOCTYPE ListeBlancheDRIM-M [<!ENTITY x SYSTEM "file:///etc/hostname">]>')
        .replace(b"<vi>vi.box-a.test</vi>", b"<vi>&x;</vi>"),
        "DOCTYPE"),
    "external-dtd": (
        lambda xml, key: _with_doctype(xml, b'<!DOCTYPE ListeBlancheDRIM-M SYSTEM "http://127.0.0.1:9/evil.dtd">'),
        "DOCTYPE"),
    "wrapped-in-a-new-list-root": (lambda xml, key: _wrapped_in_new_root(xml), "unsigned"),
    "signature-moved-inside-the-list": (lambda xml, key: _signature_moved_into_list(xml), "unsigned"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_refused(good, signer, root, crl, attack):
    tamper, expected = ATTACKS[attack]
    tampered = tamper(good, signer.key)
    assert tampered != good
    verdict = verify_whitelist(tampered, [root], crl=crl)
    assert not verdict.valid, f"{attack} accepted: {[(d.db, d.operator_dn) for d in verdict.domains]}"
    assert expected in verdict.reason, verdict.reason
    assert verdict.domains == []


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_keeper_keeps_the_last_valid_list(good, signer, root, crl, attack):
    served = [good]
    keeper = WhitelistKeeper("https://liste.test/liste.xml", [root], fetch=lambda url: served[0],
                             crl_fetch=lambda url: crl)
    assert keeper.refresh().valid
    served[0] = ATTACKS[attack][0](good, signer.key)
    assert not keeper.refresh().valid
    assert keeper.status()["last_result"] == "refused"
    assert [(d.db, d.operator_dn) for d in keeper.domains] == [(d.db, d.operator_dn) for d in DOMAINS]
    assert not keeper.is_trusted_db_host("db.evil.example")
    assert not keeper.is_trusted_db_host("db.box-b.test.evil.example")
    assert not keeper.is_trusted_operator_dn("CN=AUTH_CLI evil,OU=1,O=EVIL,C=FR")


def test_comment_inside_a_field_is_read_as_signed(good, root, crl):
    # exc-c14n without comments does not digest comments: the list still verifies, and reads as signed
    commented = _replace_once(good, b"<db>db.box-b.test</db>", b"<db>db.box-b<!-- .evil.example -->.test</db>")
    commented = _replace_once(commented, b"<Identifiant>D-A</Identifiant>", b"<Identifiant><!--X-->D-A</Identifiant>")
    verdict = verify_whitelist(commented, [root], crl=crl)
    assert verdict.valid, verdict.reason
    assert [(d.id, d.db) for d in verdict.domains] == [("D-A", "db.box-a.test"), ("D-B", "db.box-b.test")]


def test_domain_inside_the_signature_object_is_not_read(good, root, crl):
    # content added inside the enveloped signature's own ds:Object is not covered and must not be read
    smuggled = _replace_once(good, b"</ds:Signature>", b'<ds:Object><Domaine xmlns="urn:drimbox:test:liste-'
                             b'blanche-drim-m"><Identifiant>EVIL</Identifiant><db>db.evil.example</db></Domaine>'
                             b"</ds:Object></ds:Signature>")
    verdict = verify_whitelist(smuggled, [root], crl=crl)
    assert verdict.valid, verdict.reason
    assert [d.id for d in verdict.domains] == ["D-A", "D-B"]


def test_the_untampered_list_is_read_in_full(good, root, crl):
    verdict = verify_whitelist(good, [root], crl=crl)
    assert verdict.valid, verdict.reason
    assert [(d.id, d.db, d.vi, d.name, d.operator_dn) for d in verdict.domains] == [
        (d.id, d.db, d.vi, d.name, d.operator_dn) for d in DOMAINS]
