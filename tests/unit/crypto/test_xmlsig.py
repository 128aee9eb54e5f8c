from __future__ import annotations

import base64
import datetime as dt
import hashlib
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signxml import XMLVerifier

from drimbox.crypto.dsig import DS, parse_xml
from drimbox.crypto.pki import cert_pem, issue_certificate, load_issued, make_name, make_root_ca
from drimbox.crypto.xmlsig import (
    MANIFEST_TYPE,
    SignatureError,
    sign_enveloped,
    sign_xades,
    sign_xades_enveloping,
    verify_enveloped,
    verify_xades,
)

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SOAP = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header>'
    b'<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
    b'<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1b2" Version="2.0" '
    b'IssueInstant="2024-05-01T10:00:00Z"><saml:Issuer Format="urn:oasis:names:tc:SAML:1.1:nameid-format:'
    b'X509SubjectName">CN=SIGN box-a</saml:Issuer><saml:Subject><saml:NameID>899700</saml:NameID></saml:Subject>'
    b'<saml:AttributeStatement><saml:Attribute Name="VIHF_Version"><saml:AttributeValue>3.0</saml:AttributeValue>'
    b"</saml:Attribute></saml:AttributeStatement></saml:Assertion></wsse:Security></s:Header><s:Body/></s:Envelope>"
)
LIST = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- generated -->\n<ListeBlancheDRIM-M xmlns="urn:test:liste" '
    b'versionFormat="1.0.0">\n  <DateDeGeneration>2024-05-01T00:00:00Z</DateDeGeneration>\n'
    b"  <ListeDomaines><Domaine><Identifiant>D1</Identifiant><db>db.a.test</db></Domaine></ListeDomaines>\n"
    b"</ListeBlancheDRIM-M>\n"
)


@pytest.fixture(scope="module")
def signer(pki):
    return load_issued(pki["boxes"]["box-a"]["signing"])


@pytest.fixture(scope="module")
def root(pki):
    return load_issued(pki["root"]).cert


def _assertion(doc):
    return doc.find(f".//{{{SAML}}}Assertion")


def _xmlsec_verify(pki, tmp_path, xml: bytes, *extra: str) -> subprocess.CompletedProcess:
    if shutil.which("xmlsec1") is None:
        pytest.skip("xmlsec1 not installed")
    path = tmp_path / "signed.xml"
    path.write_bytes(xml)
    return subprocess.run(
        ["xmlsec1", "--verify", "--trusted-pem", pki["root"]["cert"], "--untrusted-pem",
         pki["intermediate"]["cert"], *extra, str(path)],
        capture_output=True, text=True,
    )


def test_vihf_assertion_signature(pki, signer, root, tmp_path):
    envelope = parse_xml(SOAP)
    assertion = _assertion(envelope)
    sign_enveloped(assertion, signer.key, signer.cert, signer.chain)
    children = [etree.QName(child).localname for child in assertion]
    assert children[:3] == ["Issuer", "Signature", "Subject"]
    reference = assertion.find(f"{{{DS}}}Signature/{{{DS}}}SignedInfo/{{{DS}}}Reference")
    assert reference.get("URI") == "#_a1b2"
    data = etree.tostring(envelope)

    assert verify_enveloped(_assertion(parse_xml(data)), [root]).cert == signer.cert
    # independent verifiers: xmlsec1 and signxml
    result = _xmlsec_verify(pki, tmp_path, data, "--id-attr:ID", f"{SAML}:Assertion")
    assert result.returncode == 0, result.stderr
    verified = XMLVerifier().verify(_assertion(parse_xml(data)), x509_cert=cert_pem(signer.cert).decode(),
                                    id_attribute="ID")
    assert etree.QName(verified.signed_xml).localname == "Assertion"


def test_tampered_assertion_is_refused(signer, root):
    envelope = parse_xml(SOAP)
    sign_enveloped(_assertion(envelope), signer.key, signer.cert, signer.chain)
    envelope.find(f".//{{{SAML}}}NameID").text = "899999"
    with pytest.raises(SignatureError, match="digest mismatch"):
        verify_enveloped(_assertion(envelope), [root])


def test_signature_must_cover_the_checked_element(signer, root):
    envelope = parse_xml(SOAP)
    sign_enveloped(_assertion(envelope), signer.key, signer.cert, signer.chain)
    _assertion(envelope).set("ID", "_other")
    with pytest.raises(SignatureError):
        verify_enveloped(_assertion(envelope), [root])


def test_untrusted_root_and_pinned_certificate(signer, root):
    envelope = parse_xml(SOAP)
    sign_enveloped(_assertion(envelope), signer.key, signer.cert)  # KeyInfo: signer only
    with pytest.raises(SignatureError, match="does not chain"):
        verify_enveloped(_assertion(envelope), [make_root_ca("OTHER").cert])
    assert verify_enveloped(_assertion(envelope), [signer.cert]).cert == signer.cert


def test_enveloped_document_signature_inclusive_c14n(pki, signer, root, tmp_path):
    doc = parse_xml(LIST)
    sign_enveloped(doc, signer.key, signer.cert, signer.chain, c14n="inclusive")
    data = etree.tostring(doc.getroottree())
    assert verify_enveloped(parse_xml(data), [root]).cert == signer.cert
    assert _xmlsec_verify(pki, tmp_path, data).returncode == 0


@pytest.mark.parametrize("exclusion", ["xpath-filter2", "enveloped"])
def test_xades_enveloped(pki, signer, root, tmp_path, exclusion):
    doc = parse_xml(LIST)
    moment = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    sign_xades(doc, signer.key, signer.cert, signer.chain, exclusion=exclusion, signing_time=moment)
    data = etree.tostring(doc.getroottree(), xml_declaration=True, encoding="UTF-8")
    verified = verify_xades(parse_xml(data), [root])
    assert verified.cert == signer.cert
    assert verified.signing_time == moment
    assert verified.reference_uris == [""]
    assert [c.subject for c in verified.path][-1] == root.subject
    result = _xmlsec_verify(pki, tmp_path, data)
    assert result.returncode == 0, result.stderr
    # whitespace and comments outside the signed content do not matter; content does
    tampered = data.replace(b"db.a.test", b"db.evil.test")
    with pytest.raises(SignatureError, match="digest mismatch"):
        verify_xades(parse_xml(tampered), [root])
    assert _xmlsec_verify(pki, tmp_path, tampered).returncode != 0


def test_xades_signed_properties_are_protected(signer, root):
    doc = parse_xml(LIST)
    sign_xades(doc, signer.key, signer.cert, signer.chain)
    data = etree.tostring(doc)
    moved = data.replace(b"<xades:SigningTime>", b"<xades:SigningTime>1999")
    with pytest.raises(SignatureError):
        verify_xades(parse_xml(moved), [root])


def test_xades_enveloping_manifest(pki, signer, root, tmp_path):
    document = tmp_path / "kos.dcm"
    document.write_bytes(b"DICM" * 100)
    manifest = etree.Element(f"{{{DS}}}Manifest", Id="manifest-1")
    reference = etree.SubElement(manifest, f"{{{DS}}}Reference", URI=document.as_uri())
    etree.SubElement(reference, f"{{{DS}}}DigestMethod", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
    etree.SubElement(reference, f"{{{DS}}}DigestValue").text = base64.b64encode(
        hashlib.sha256(document.read_bytes()).digest()).decode()
    signature = sign_xades_enveloping([(manifest, MANIFEST_TYPE)], signer.key, signer.cert, signer.chain)
    data = etree.tostring(signature)
    verified = verify_xades(parse_xml(data), [root])
    assert verified.reference_uris == ["#manifest-1"]
    result = _xmlsec_verify(pki, tmp_path, data, "--id-attr:Id", f"{DS}:Manifest")
    assert result.returncode == 0, result.stderr
    assert "Manifests References (ok/all): 1/1" in result.stderr


def test_expired_signer(pki, root):
    intermediate = load_issued(pki["intermediate"])
    old = issue_certificate(intermediate, make_name("old"), profile="signing",
                            not_before=dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc),
                            not_after=dt.datetime(2016, 1, 1, tzinfo=dt.timezone.utc))
    doc = parse_xml(LIST)
    sign_xades(doc, old.key, old.cert, old.chain)
    with pytest.raises(SignatureError, match="expired"):
        verify_xades(doc, [root])


def test_ecdsa_key(pki, root):
    intermediate = load_issued(pki["intermediate"])
    ec_signer = issue_certificate(intermediate, make_name("ec"), profile="signing",
                                  key=ec.generate_private_key(ec.SECP256R1()))
    doc = parse_xml(LIST)
    sign_xades(doc, ec_signer.key, ec_signer.cert, ec_signer.chain)
    assert verify_xades(parse_xml(etree.tostring(doc)), [root]).cert == ec_signer.cert


def test_unsigned_document():
    with pytest.raises(SignatureError, match="unsigned"):
        verify_xades(parse_xml(LIST), [])
