"""The box's DSG verifier reads the manifest and the purpose only from what the signature covers."""

from __future__ import annotations

import base64
import hashlib

import pytest
from dmp_testdata import NOW

from drimbox.crypto.dsig import DS, SignatureError
from drimbox.dmp import dsg

LEGIT = {"1.2.3.1": b"DICM-legit"}
EVIL = b"DICM-evil"
DS_NS = f'xmlns:ds="{DS}"'.encode()


@pytest.fixture(scope="module")
def signed(signing) -> bytes:
    documents = [dsg.SignedDocument(uid, data) for uid, data in LEGIT.items()]
    return dsg.build_dsg(documents, key=signing.key, cert=signing.cert, chain=signing.chain, signing_time=NOW,
                         signature_id="sig-1")


def _manifest(manifest_id: str, entries: dict[str, bytes]) -> bytes:
    references = b"".join(
        b'<ds:Reference URI="urn:oid:' + uid.encode() + b'"><ds:DigestMethod Algorithm='
        b'"http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>'
        + base64.b64encode(hashlib.sha256(data).digest()) + b"</ds:DigestValue></ds:Reference>"
        for uid, data in entries.items()
    )
    return b"<ds:Manifest " + DS_NS + b' Id="' + manifest_id.encode() + b'">' + references + b"</ds:Manifest>"


def _add_object(signed: bytes, content: bytes, *, first: bool = False) -> bytes:
    holder = b"<ds:Object " + DS_NS + b">" + content + b"</ds:Object>"
    if first:
        index = signed.index(b"<ds:Object")
        return signed[:index] + holder + signed[index:]
    return signed.replace(b"</ds:Signature>", holder + b"</ds:Signature>")


def test_the_signed_lot_verifies(signed, ca, signing):
    assert dsg.verify_dsg(signed, LEGIT, [ca.cert]).cert == signing.cert


def test_an_unsigned_second_manifest_does_not_add_a_document(signed, ca):
    wrapped = _add_object(signed, _manifest("extra", {"9.9.9": EVIL}))
    with pytest.raises(dsg.DsgError, match="manifest lists"):
        dsg.verify_dsg(wrapped, {**LEGIT, "9.9.9": EVIL}, [ca.cert])


def test_a_forged_manifest_with_the_signed_id_is_refused(signed, ca):
    wrapped = _add_object(signed, _manifest(dsg.MANIFEST_ID, {"1.2.3.1": EVIL}), first=True)
    with pytest.raises(SignatureError, match="ambiguous"):
        dsg.verify_dsg(wrapped, {"1.2.3.1": EVIL}, [ca.cert])


def test_a_doctype_is_refused(signed, ca):
    with pytest.raises(dsg.DsgError, match="DOCTYPE"):
        dsg.verify_dsg(signed.replace(b"?>", b'?><!DOCTYPE ds:Signature [<!ENTITY x "y">]>', 1), LEGIT, [ca.cert])
