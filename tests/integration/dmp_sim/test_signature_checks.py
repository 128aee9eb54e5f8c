"""Submissions whose signatures cover something else than what is read are refused by the running simulator.

DSG: the signature document must verify (trusted signer) and its *signed* manifest must list the submitted bytes.
VIHF: the assertion is read from what its signature covers, so a comment cannot shorten the professional's id.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io

import pydicom
import pytest
from lxml import etree

from dmp_sim_fixtures import FAILURE, SAML, SUCCESS, build_lot, build_signature_document, build_vihf

pytestmark = pytest.mark.integration
DS = "http://www.w3.org/2000/09/xmldsig#"


def _set_document(lot, ident: str, data: bytes) -> None:
    lot.documents[ident] = data
    lot.set_slot(ident, "hash", hashlib.sha1(data).hexdigest())
    lot.set_slot(ident, "size", str(len(data)))


def _signature(lot) -> etree._Element:
    return etree.fromstring(lot.documents["Signature01"])


def _other_kos(lot) -> bytes:
    """A KOS with the same UID and patient as the lot's, but other bytes."""
    ds = pydicom.dcmread(io.BytesIO(lot.documents["DocumentKOS"]))
    ds.StudyDescription = "substituted"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _digest(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def signature_value_forged(lot):
    root = _signature(lot)
    root.find(f"{{{DS}}}SignatureValue").text = "AA=="
    _set_document(lot, "Signature01", etree.tostring(root))


def manifest_rewritten_for_another_kos(lot):
    other = _other_kos(lot)
    root = _signature(lot)
    root.find(f".//{{{DS}}}Manifest/{{{DS}}}Reference/{{{DS}}}DigestValue").text = _digest(other)
    _set_document(lot, "DocumentKOS", other)
    _set_document(lot, "Signature01", etree.tostring(root))


def signer_not_trusted(lot, pki):
    _set_document(lot, "Signature01", build_signature_document({lot.kos_uid: lot.documents["DocumentKOS"]},
                                                               pki.rogue_signer))


def comment_in_manifest(lot):
    root = _signature(lot)
    root.find(f".//{{{DS}}}Manifest").insert(0, etree.Comment("not signed"))
    _set_document(lot, "Signature01", etree.tostring(root))


def second_signature(lot):
    root = _signature(lot)
    etree.SubElement(root, f"{{{DS}}}Object").append(copy.deepcopy(root))
    _set_document(lot, "Signature01", etree.tostring(root))


def unsigned_manifest_first(lot):
    other = _other_kos(lot)
    root = _signature(lot)
    forged = copy.deepcopy(root.find(f".//{{{DS}}}Manifest"))
    del forged.attrib["Id"]
    forged.find(f"{{{DS}}}Reference/{{{DS}}}DigestValue").text = _digest(other)
    holder = etree.Element(f"{{{DS}}}Object")
    holder.append(forged)
    root.find(f"{{{DS}}}KeyInfo").addnext(holder)
    _set_document(lot, "DocumentKOS", other)
    _set_document(lot, "Signature01", etree.tostring(root))


CASES = [
    (signature_value_forged, "does not verify"),
    (manifest_rewritten_for_another_kos, "does not verify"),
    (signer_not_trusted, "does not chain"),
    (comment_in_manifest, "comment"),
    (second_signature, "more ds:Signature"),
    (unsigned_manifest_first, "manifest digest"),
]


@pytest.mark.parametrize("mutate,context", CASES, ids=[case[0].__name__ for case in CASES])
def test_dsg_refused(client, pki, mutate, context):
    lot = build_lot()
    if mutate is signer_not_trusted:
        mutate(lot, pki)
    else:
        mutate(lot)
    answer = client.submit(lot)
    assert answer.status == 200
    assert answer.response_status() == FAILURE
    errors = [e for e in answer.errors() if e.get("location") == "Signature01"]
    assert errors and all(e["errorCode"] == "InvalidDocumentContent" for e in errors), answer.errors()
    assert any(context in e["codeContext"] for e in errors), answer.errors()
    assert client.documents() == []


def test_genuine_lot_is_accepted(client):
    answer = client.submit(build_lot())
    assert answer.response_status() == SUCCESS, answer.errors()


def test_vihf_name_id_cannot_be_shortened_by_a_comment(client, pki):
    vihf = build_vihf(pki.signer, name_id="810001234567")
    name_id = vihf.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID")
    name_id.text = "8100"
    comment = etree.Comment("x")
    comment.tail = "01234567"
    name_id.append(comment)
    answer = client.submit(build_lot(), vihf=vihf)
    assert answer.status == 400
    assert answer.fault_subcode() == "wsse:InvalidSecurityToken"
    assert "comment" in answer.fault_reason()
    assert client.documents() == []
