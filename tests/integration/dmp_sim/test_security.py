"""SOAP envelope, WS-Addressing and VIHF refusals: SOAP 1.2 faults naming the offending header or attribute."""

from __future__ import annotations

import pytest
from lxml import etree

from dmp_sim_fixtures import SAML, SOAP, build_lot, build_vihf, envelope, q, vihf_attributes

pytestmark = pytest.mark.integration
ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"


def _attributes_without(name):
    attributes = vihf_attributes()
    del attributes[name]
    return attributes


def _attributes_with(name, value):
    attributes = vihf_attributes()
    attributes[name] = value
    return attributes


def test_missing_security_header(client):
    answer = client.post("repository", ITI41, build_lot().request, vihf=None, raw=envelope(
        ITI41, client.base_url + "/repository", None, build_lot().request))
    assert answer.status == 400
    assert answer.fault_subcode() == "wsse:InvalidSecurity"


def test_tampered_assertion_fails_signature(client, pki):
    vihf = build_vihf(pki.signer)
    value = vihf.xpath("//saml2:Attribute[@Name='LPS_Nom']/saml2:AttributeValue", namespaces={"saml2": SAML})[0]
    value.text = "tampered"
    answer = client.submit(build_lot(), vihf=vihf)
    assert answer.status == 400
    assert answer.fault_subcode() == "wsse:FailedCheck"
    assert "does not verify" in answer.fault_reason()


def test_unsigned_assertion_refused(client):
    answer = client.submit(build_lot(), vihf=build_vihf(None))
    assert answer.fault_subcode() == "wsse:FailedCheck"


def test_signer_outside_trusted_ca_refused(client, pki):
    answer = client.submit(build_lot(), vihf=build_vihf(pki.rogue_signer))
    assert answer.fault_subcode() == "wsse:FailedAuthentication"
    assert "does not chain" in answer.fault_reason()


def test_issuer_must_be_signer_dn(client, pki):
    answer = client.submit(build_lot(), vihf=build_vihf(pki.signer, issuer="CN=Somebody Else,O=X,C=FR"))
    assert answer.fault_subcode() == "wsse:FailedAuthentication"
    assert "Issuer" in answer.fault_reason()


@pytest.mark.parametrize("attributes,named", [
    (_attributes_without("LPS_ID"), "LPS_ID"),
    (_attributes_without("Identifiant_Structure"), "Identifiant_Structure"),
    (_attributes_with("VIHF_Version", "2.0"), "VIHF_Version"),
    (_attributes_with("Secteur_Activite", "SA07"), "Secteur_Activite"),
    (_attributes_with("Authentification_Mode", "AUTRE"), "Authentification_Mode"),
    (_attributes_with("Ressource_URN", "urn:other"), "Ressource_URN"),
    (_attributes_with("urn:oasis:names:tc:xacml:2.0:resource:resource-id", "123^^^&1.2.3&ISO^PI"), "resource-id"),
    (_attributes_with("urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
                      [("PurposeOfUse", "curiosite", "1.2.250.1.213.1.1.4.248")]), "purposeofuse"),
    (_attributes_with("urn:oasis:names:tc:xacml:2.0:subject:role",
                      [("Role", "SM44", "1.2.250.1.71.4.2.5")]), "role"),
], ids=["no-LPS_ID", "no-structure", "version", "secteur", "auth-mode", "ressource-urn", "resource-id", "purpose",
        "role"])
def test_vihf_attribute_checks(client, pki, attributes, named):
    answer = client.submit(build_lot(), vihf=build_vihf(pki.signer, attributes=attributes))
    assert answer.status == 400
    assert answer.fault_subcode() == "wsse:InvalidSecurityToken"
    assert named in answer.fault_reason()


def test_authn_context_must_be_tls_client(client, pki):
    answer = client.submit(build_lot(), vihf=build_vihf(pki.signer, authn="urn:oasis:names:tc:SAML:2.0:ac:classes:"
                                                                          "Password"))
    assert "AuthnContextClassRef" in answer.fault_reason()


def test_action_must_match_endpoint(client):
    answer = client.post("registry", ITI41, build_lot().request)
    assert answer.status == 400
    assert answer.fault_subcode() == "wsa:ActionNotSupported"


def test_missing_message_id(client, pki):
    env = etree.fromstring(envelope(ITI41, client.base_url + "/repository", build_vihf(pki.signer),
                                    build_lot().request))
    header = env.find(q(SOAP, "Header"))
    header.remove(header.find("{http://www.w3.org/2005/08/addressing}MessageID"))
    answer = client.post("repository", ITI41, None, raw=etree.tostring(env))
    assert answer.fault_subcode() == "wsa:MessageAddressingHeaderRequired"
    assert "MessageID" in answer.fault_reason()


def test_soap11_envelope_refused(client):
    raw = b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>'
    answer = client.post("repository", ITI41, None, raw=raw, use_mtom=False)
    assert answer.status == 400
    assert "SOAP 1.1" in answer.fault_reason()


def test_malformed_xml_and_mtom_refused_without_traceback(client):
    answer = client.post("repository", ITI41, None, raw=b"<not-closed>", use_mtom=False)
    assert answer.status == 400
    assert "well-formed" in answer.fault_reason()
    answer = client.post("repository", ITI41, None, raw=b"", content_type="multipart/related; boundary=x")
    assert answer.status == 400
    assert "xop+xml" in answer.fault_reason()
    assert "Traceback" not in etree.tostring(answer.root).decode()
