from __future__ import annotations

import base64
import hashlib

import pytest
from dmp_testdata import NOW, make_report
from lxml import etree

from drimbox.crypto import xmlsig
from drimbox.crypto.dsig import SignatureError
from drimbox.dmp import dsg
from drimbox.dmp.vihf import Software, attributes_of, build_vihf
from drimbox.reports.model import Code

SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"
PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
ROLES = (Code("10", "1.2.250.1.71.1.2.7", "Médecin"), Code("SM44", "1.2.250.1.71.4.2.5", "Radio-diagnostic"))


def vihf(signing, **changes):
    report = make_report()
    args = dict(professional=report.legal_authenticator, organization=report.organization, patient_cx=PATIENT,
                software=Software("LPS-1", "DRIMbox", "0.1", "HOMOL-1"), signing_key=signing.key,
                signing_cert=signing.cert, chain=signing.chain, now=NOW, roles=ROLES)
    args.update(changes)
    return build_vihf(**args)


def test_vihf_attributes(signing):
    assertion = vihf(signing, purpose="bris_de_glace")
    assert assertion.get("Version") == "2.0" and assertion.get("IssueInstant") == "2024-03-05T10:20:30Z"
    issuer = assertion.find(f"{SAML}Issuer")
    assert issuer.get("Format") == "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
    assert issuer.text == signing.cert.subject.rfc4514_string()
    assert assertion.findtext(f"{SAML}Subject/{SAML}NameID") == "801234567890"
    assert assertion.findtext(f".//{SAML}AuthnContextClassRef") == "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient"
    attributes = attributes_of(assertion)
    assert attributes["VIHF_Version"] == ["3.0"]
    assert attributes["Identifiant_Structure"] == ["3123456789012345"]
    assert attributes["Secteur_Activite"] == ["SA08^1.2.250.1.71.4.2.4"]
    assert attributes["urn:oasis:names:tc:xspa:1.0:subject:subject-id"] == ["Jean RADIO"]
    assert attributes["urn:oasis:names:tc:xacml:2.0:subject:role"] == list(ROLES)
    assert attributes["urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"] == [
        Code("bris_de_glace", "1.2.250.1.213.1.1.4.248", "Accès en mode bris de glace")]
    assert attributes["urn:oasis:names:tc:xacml:2.0:resource:resource-id"] == [PATIENT]
    assert attributes["Ressource_URN"] == ["urn:dmp"]
    assert attributes["Authentification_Mode"] == ["INDIRECTE_RENFORCEE"]
    assert attributes["LPS_ID"] == ["LPS-1"] and attributes["LPS_Nom"] == ["DRIMbox"]
    assert attributes["LPS_Version"] == ["0.1"] and attributes["LPS_ID_HOMOLOGATION_DMP"] == ["HOMOL-1"]
    role = assertion.find(".//{urn:hl7-org:v3}Role")
    assert role.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "CE"


def test_vihf_signature_verifies_after_embedding(signing, ca):
    assertion = vihf(signing)
    # the signature sits right after Issuer (SAML schema order)
    assert etree.QName(assertion[1]).localname == "Signature"
    wrapper = etree.Element("{urn:x}Security")
    wrapper.append(assertion)
    reparsed = etree.fromstring(etree.tostring(wrapper))[0]
    assert xmlsig.verify_enveloped(reparsed, [ca.cert]).cert == signing.cert
    reparsed.find(f"{SAML}Subject/{SAML}NameID").text = "899999999999"
    with pytest.raises(SignatureError):
        xmlsig.verify_enveloped(reparsed, [ca.cert])


@pytest.mark.parametrize("change, message", [
    ({"purpose": "curiosity"}, "purpose"),
    ({"auth_mode": "SOMETIMES"}, "auth_mode"),
])
def test_vihf_refuses_unknown_values(signing, change, message):
    with pytest.raises(ValueError, match=message):
        vihf(signing, **change)


def test_vihf_needs_sector(signing):
    from drimbox.reports.model import Organization
    with pytest.raises(ValueError, match="Secteur_Activite"):
        vihf(signing, organization=Organization(id="3123"))


def test_dsg_lists_digest_of_every_document(signing, ca):
    documents = [dsg.SignedDocument("1.2.3.1", b"DICM-bytes"), dsg.SignedDocument("1.2.3.2", b"<cda/>")]
    data = dsg.build_dsg(documents, key=signing.key, cert=signing.cert, chain=signing.chain, signing_time=NOW,
                         signature_id="sig-1")
    assert data.startswith(b"<?xml")
    digests = dsg.manifest_digests(data)
    assert digests == {"1.2.3.1": ("sha256", hashlib.sha256(b"DICM-bytes").digest()),
                       "1.2.3.2": ("sha256", hashlib.sha256(b"<cda/>").digest())}
    verified = dsg.verify_dsg(data, {"1.2.3.1": b"DICM-bytes", "1.2.3.2": b"<cda/>"}, [ca.cert])
    assert verified.cert == signing.cert
    root = etree.fromstring(data)
    prop = root.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureProperty")
    assert (prop.get("Id"), prop.get("Target"), prop.text) == (
        "purposeOfSignature", "#sig-1", "1.2.840.10065.1.12.1.14")
    references = root.findall("{http://www.w3.org/2000/09/xmldsig#}SignedInfo/{http://www.w3.org/2000/09/xmldsig#}Reference")
    assert "http://www.w3.org/2000/09/xmldsig#Manifest" in [r.get("Type") for r in references]


def test_dsg_detects_changed_document_and_tampering(signing, ca):
    documents = [dsg.SignedDocument("1.2.3.1", b"original")]
    data = dsg.build_dsg(documents, key=signing.key, cert=signing.cert, signing_time=NOW, signature_id="s")
    with pytest.raises(dsg.DsgError, match="digest of 1.2.3.1"):
        dsg.verify_dsg(data, {"1.2.3.1": b"changed"}, [ca.cert])
    with pytest.raises(dsg.DsgError, match="manifest lists"):
        dsg.verify_dsg(data, {"1.2.3.1": b"original", "9.9": b"x"}, [ca.cert])
    forged_digest = base64.b64encode(hashlib.sha256(b"changed").digest())
    original_digest = base64.b64encode(hashlib.sha256(b"original").digest())
    with pytest.raises(SignatureError):
        dsg.verify_dsg(data.replace(original_digest, forged_digest), {"1.2.3.1": b"changed"}, [ca.cert])


def test_dsg_sha1_option(signing):
    data = dsg.build_dsg([dsg.SignedDocument("1.2", b"x")], key=signing.key, cert=signing.cert, signing_time=NOW,
                         signature_id="s", digest="sha1")
    assert dsg.manifest_digests(data)["1.2"] == ("sha1", hashlib.sha1(b"x").digest())
