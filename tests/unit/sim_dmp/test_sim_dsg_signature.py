"""The DMP simulator verifies the IHE DSG signature document for real and reads only its signed manifest."""

from __future__ import annotations

import base64
import copy
import hashlib

import pytest
from lxml import etree
from sim_signing_helpers import DS, EXC, box_dsg, make_pki, resign, xmlsec1_verify

from drimbox.sim.dmp.dsg import DsgRefused, verify_dsg
from drimbox.sim.dmp.signers import SignerTrust

KOS_UID = "1.2.250.1.999.1.1"
KOS = b"DICM the manifest bytes"
# The manifest's urn:oid: references name XDS documents, which xmlsec1 cannot fetch: the simulator checks them
# against the submitted bytes itself.
DSG_ID_ATTRS = ("--ignore-manifests", f"Id {DS}:Manifest", f"Id {DS}:Object", "Id http://uri.etsi.org/01903/v1.3.2#:SignedProperties")


@pytest.fixture(scope="module")
def pki():
    return make_pki()


@pytest.fixture(scope="module")
def trust(pki):
    return SignerTrust([pki.root.cert])


def _refused(data: bytes, trust: SignerTrust) -> str:
    with pytest.raises(DsgRefused) as caught:
        verify_dsg(data, trust)
    return str(caught.value)


def _signature(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def test_box_made_dsg_is_accepted_and_xmlsec1_agrees(pki, trust, tmp_path):
    data = box_dsg(pki.signer, {KOS_UID: KOS})
    verified = verify_dsg(data, trust)
    assert verified.digests == {KOS_UID: ("sha256", hashlib.sha256(KOS).digest())}
    assert verified.purpose == "1.2.840.10065.1.12.1.14"
    assert verified.signer == pki.signer.cert
    result = xmlsec1_verify(pki, tmp_path, data, *DSG_ID_ATTRS)
    assert result.returncode == 0, result.stderr


def test_tampered_manifest_does_not_verify(pki, trust):
    root = _signature(box_dsg(pki.signer, {KOS_UID: KOS}))
    root.find(f".//{{{DS}}}Manifest/{{{DS}}}Reference/{{{DS}}}DigestValue").text = base64.b64encode(
        hashlib.sha256(b"another manifest").digest()).decode()
    assert "does not verify" in _refused(etree.tostring(root), trust)


def test_unsigned_dsg_shape_is_refused(pki, trust):
    root = _signature(box_dsg(pki.signer, {KOS_UID: KOS}))
    root.find(f"{{{DS}}}SignatureValue").text = "AA=="
    assert "does not verify" in _refused(etree.tostring(root), trust)


def test_comment_in_the_signed_manifest_is_refused(pki, trust, tmp_path):
    root = _signature(box_dsg(pki.signer, {KOS_UID: KOS}))
    root.find(f".//{{{DS}}}Manifest").insert(0, etree.Comment("not signed"))
    data = etree.tostring(root)
    assert xmlsec1_verify(pki, tmp_path, data, *DSG_ID_ATTRS).returncode == 0  # the signature itself holds
    assert "comment" in _refused(data, trust)


def test_processing_instruction_is_refused(pki, trust):
    data = b'<?xml version="1.0"?>\n<?smuggled x?>' + etree.tostring(_signature(box_dsg(pki.signer, {KOS_UID: KOS})))
    assert "processing instruction" in _refused(data, trust)


def test_with_comments_canonicalization_is_refused(pki, trust):
    root = _signature(box_dsg(pki.signer, {KOS_UID: KOS}))
    resign(root, pki.signer.key, transforms=[EXC + "WithComments"])
    assert "WithComments" in _refused(etree.tostring(root), trust)


def test_second_signature_is_refused(pki, trust):
    root = _signature(box_dsg(pki.signer, {KOS_UID: KOS}))
    etree.SubElement(root, f"{{{DS}}}Object").append(copy.deepcopy(root))
    assert "more ds:Signature" in _refused(etree.tostring(root), trust)


def test_unsigned_manifest_placed_before_the_signed_one_is_not_read(pki, trust):
    # Signature wrapping: a reader taking the first ds:Manifest would see the forged digest list.
    root = _signature(box_dsg(pki.signer, {KOS_UID: KOS}))
    forged = copy.deepcopy(root.find(f".//{{{DS}}}Manifest"))
    del forged.attrib["Id"]
    forged.find(f"{{{DS}}}Reference/{{{DS}}}DigestValue").text = base64.b64encode(
        hashlib.sha256(b"forged").digest()).decode()
    holder = etree.Element(f"{{{DS}}}Object")
    holder.append(forged)
    root.find(f"{{{DS}}}KeyInfo").addnext(holder)
    verified = verify_dsg(etree.tostring(root), trust)
    assert verified.digests[KOS_UID][1] == hashlib.sha256(KOS).digest()


def test_signed_manifest_id_duplicated_is_refused(pki, trust):
    root = _signature(box_dsg(pki.signer, {KOS_UID: KOS}))
    forged = copy.deepcopy(root.find(f".//{{{DS}}}Manifest"))
    holder = etree.Element(f"{{{DS}}}Object")
    holder.append(forged)
    root.find(f"{{{DS}}}KeyInfo").addnext(holder)
    assert "signature wrapping" in _refused(etree.tostring(root), trust)


@pytest.mark.parametrize("signer,message", [("rogue", "does not chain"), ("under_leaf", "not a CA")])
def test_signer_outside_the_trusted_pki_is_refused(pki, trust, signer, message):
    assert message in _refused(box_dsg(getattr(pki, signer), {KOS_UID: KOS}, chain_length=3), trust)


def test_no_signing_ca_configured_trusts_no_signer(pki):
    assert "no signing CA" in _refused(box_dsg(pki.signer, {KOS_UID: KOS}), SignerTrust([]))
