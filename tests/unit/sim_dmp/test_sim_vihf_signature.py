"""The DMP simulator reads a VIHF only from what its signature covers, and refuses anything else around it."""

from __future__ import annotations

import copy

import pytest
from lxml import etree
from sim_signing_helpers import (
    DS,
    ENVELOPED,
    EXC,
    ID_NAT,
    SAML,
    STRUCTURE,
    WSSE,
    box_vihf,
    envelope_bytes,
    make_pki,
    resign,
    security_of,
    xmlsec1_verify,
)

from drimbox.sim.dmp.errors import SoapFaultError
from drimbox.sim.dmp.signers import SignerTrust
from drimbox.sim.dmp.vihf import VihfValidator

ASSERTION_ID = f"{{{SAML}}}Assertion"
SAML_ID = f"ID {SAML}:Assertion"


@pytest.fixture(scope="module")
def pki():
    return make_pki()


@pytest.fixture(scope="module")
def validator(pki):
    return VihfValidator(SignerTrust([pki.root.cert]))


def _refusal(validator: VihfValidator, data: bytes) -> SoapFaultError:
    with pytest.raises(SoapFaultError) as caught:
        validator.validate(security_of(data))
    return caught.value


def _name_id(assertion: etree._Element) -> etree._Element:
    return assertion.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID")


def test_box_made_vihf_is_accepted_and_xmlsec1_agrees(pki, validator, tmp_path):
    data = envelope_bytes(box_vihf(pki.signer))
    context = validator.validate(security_of(data))
    assert (context.professional_id, context.structure_id, context.purpose_of_use) == (ID_NAT, STRUCTURE, "normal")
    assert context.attributes["LPS_Nom"] == ["DRIMbox"]
    result = xmlsec1_verify(pki, tmp_path, data, SAML_ID)
    assert result.returncode == 0, result.stderr


def test_comment_splitting_the_name_id_is_refused_although_the_signature_holds(pki, validator, tmp_path):
    # The classic SAML truncation: C14N drops the comment, so the digest still matches, while a reader of the
    # parsed tree sees only the text before it ("8012" instead of the signed idNat).
    assertion = box_vihf(pki.signer)
    name_id = _name_id(assertion)
    name_id.text = ID_NAT[:4]
    comment = etree.Comment("x")
    comment.tail = ID_NAT[4:]
    name_id.append(comment)
    data = envelope_bytes(assertion)
    assert xmlsec1_verify(pki, tmp_path, data, SAML_ID).returncode == 0  # the signature itself is valid
    fault = _refusal(validator, data)
    assert fault.subcode == "wsse:InvalidSecurityToken"
    assert "comment" in fault.reason


@pytest.mark.parametrize("where", ["name-id", "security-header"])
def test_processing_instruction_is_refused(pki, validator, where):
    assertion = box_vihf(pki.signer)
    pi = etree.ProcessingInstruction("smuggled", "x")
    if where == "name-id":
        _name_id(assertion).append(pi)
        data = envelope_bytes(assertion)
    else:
        data = envelope_bytes(assertion)
        root = etree.fromstring(data)
        root.find(f".//{{{WSSE}}}Security").insert(0, pi)
        data = etree.tostring(root)
    fault = _refusal(validator, data)
    assert fault.subcode == "wsse:InvalidSecurityToken"
    assert "processing instruction" in fault.reason


@pytest.mark.parametrize("transforms,c14n", [
    ([ENVELOPED, EXC + "WithComments"], None),
    ([ENVELOPED, EXC, EXC + "WithComments"], None),
    ([ENVELOPED, EXC], EXC + "WithComments"),
], ids=["reference-with-comments", "extra-with-comments-transform", "signed-info-with-comments"])
def test_with_comments_canonicalization_is_refused(pki, validator, transforms, c14n):
    # Signed for real with a key the simulator trusts: only the algorithm choice is wrong.
    assertion = box_vihf(pki.signer)
    resign(assertion.find(f"{{{DS}}}Signature"), pki.signer.key, transforms=transforms, c14n=c14n)
    fault = _refusal(validator, envelope_bytes(assertion))
    assert fault.subcode == "wsse:UnsupportedAlgorithm"
    assert "WithComments" in fault.reason


@pytest.mark.parametrize("where", ["inside-the-signature", "next-to-the-assertion"])
def test_second_signature_is_refused(pki, validator, where):
    # Inside ds:Signature nothing is covered (the enveloped transform removes it): a hiding place.
    assertion = box_vihf(pki.signer)
    signature = assertion.find(f"{{{DS}}}Signature")
    if where == "inside-the-signature":
        etree.SubElement(signature, f"{{{DS}}}Object").append(copy.deepcopy(signature))
        data = envelope_bytes(assertion)
    else:
        data = envelope_bytes(assertion)
        root = etree.fromstring(data)
        root.find(f".//{{{WSSE}}}Security").append(copy.deepcopy(signature))
        data = etree.tostring(root)
    fault = _refusal(validator, data)
    assert fault.subcode == "wsse:FailedCheck"
    assert "exactly one enveloped ds:Signature" in fault.reason


@pytest.mark.parametrize("hiding_place", ["advice", "signature-object"])
def test_signed_assertion_wrapped_in_an_unsigned_one_is_refused(pki, validator, hiding_place):
    genuine = box_vihf(pki.signer)
    evil = copy.deepcopy(genuine)
    _name_id(evil).text = "899999999999"
    if hiding_place == "advice":
        advice = etree.Element(f"{{{SAML}}}Advice")
        evil.find(f"{{{SAML}}}Subject").addnext(advice)
        advice.append(genuine)
    else:
        etree.SubElement(evil.find(f"{{{DS}}}Signature"), f"{{{DS}}}Object").append(genuine)
    fault = _refusal(validator, envelope_bytes(evil))
    assert fault.subcode == "wsse:FailedCheck"


def test_signature_covering_another_element_is_refused(pki, validator):
    # Validly signed with a trusted key, but over the Subject alone: the attributes would be unsigned.
    assertion = box_vihf(pki.signer)
    assertion.find(f"{{{SAML}}}Subject").set("ID", "_subject")
    signature = assertion.find(f"{{{DS}}}Signature")
    signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}Reference").set("URI", "#_subject")
    resign(signature, pki.signer.key, transforms=[ENVELOPED, EXC])
    fault = _refusal(validator, envelope_bytes(assertion))
    assert fault.subcode == "wsse:FailedCheck"
    assert "Reference" in fault.reason


def test_signer_outside_the_trusted_pki_is_refused(pki, validator):
    fault = _refusal(validator, envelope_bytes(box_vihf(pki.rogue)))
    assert fault.subcode == "wsse:FailedAuthentication"
    assert "does not chain" in fault.reason


def test_leaf_of_the_trusted_pki_cannot_act_as_a_ca(pki, validator):
    fault = _refusal(validator, envelope_bytes(box_vihf(pki.under_leaf, chain_length=3)))
    assert fault.subcode == "wsse:FailedAuthentication"
    assert "not a CA" in fault.reason


def test_no_signing_ca_configured_trusts_no_signer(pki):
    fault = _refusal(VihfValidator(SignerTrust([])), envelope_bytes(box_vihf(pki.signer)))
    assert fault.subcode == "wsse:FailedAuthentication"
    assert "no signing CA" in fault.reason

