"""Test-side tools for the DMP simulator's signature checks: a small PKI, the box's own VIHF and DSG, an
attacker's re-signer (any transforms, with a key the simulator trusts), and xmlsec1 as an independent verifier."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

import drimbox.config  # noqa: F401  (importing drimbox.dmp.vihf first hits an import cycle through config)
from drimbox.crypto.pki import Issued, cert_pem, issue_certificate, make_name, make_root_ca
from drimbox.dmp.dsg import SignedDocument, build_dsg
from drimbox.dmp.vihf import Software, build_vihf
from drimbox.reports.model import Code, Organization, Person
from drimbox.sim.dmp.soap import read_envelope

DS = "http://www.w3.org/2000/09/xmldsig#"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = DS + "enveloped-signature"
STRUCTURE = "3123456789012345"
ID_NAT = "801234567890"
PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
ROLES = (Code("10", "1.2.250.1.71.1.2.7", "Médecin"), Code("SM44", "1.2.250.1.71.4.2.5", "Radio-diagnostic"))


@dataclass
class Pki:
    root: Issued
    intermediate: Issued
    signer: Issued
    rogue: Issued  # same subject as signer, from a root the simulator does not trust
    under_leaf: Issued  # issued by ``signer``, a leaf of the trusted PKI posing as a CA


def make_pki() -> Pki:
    root = make_root_ca()
    intermediate = issue_certificate(root, make_name("TEST AC ORGANISATIONS", ou="IGC-SANTE TEST"), profile="ca")
    subject = make_name("SIGN box-a", ou=STRUCTURE, o="CABINET TEST")
    signer = issue_certificate(intermediate, subject, profile="signing")
    rogue = issue_certificate(make_root_ca("ROGUE ROOT"), subject, profile="signing")
    under_leaf = issue_certificate(signer, make_name("SIGN under a leaf", ou=STRUCTURE, o="CABINET TEST"),
                                   profile="signing")
    return Pki(root, intermediate, signer, rogue, under_leaf)


def box_vihf(signer: Issued, chain_length: int = 1) -> etree._Element:
    """The VIHF exactly as the box's DMP client makes it."""
    return build_vihf(
        professional=Person(id_nat=ID_NAT, family="RADIO", given="Jean"),
        organization=Organization(id=STRUCTURE, name="Cabinet", facility_type=Code("SA08", "1.2.250.1.71.4.2.4")),
        patient_cx=PATIENT, software=Software("LPS-1", "DRIMbox", "0.1", "HOMOL-1"), signing_key=signer.key,
        signing_cert=signer.cert, chain=signer.chain[:chain_length], now=dt.datetime.now(dt.timezone.utc),
        roles=ROLES)


def box_dsg(signer: Issued, documents: dict[str, bytes], chain_length: int = 1) -> bytes:
    """The DSG signature document exactly as the box's DMP client makes it."""
    return build_dsg([SignedDocument(uid, data) for uid, data in documents.items()], key=signer.key,
                     cert=signer.cert, chain=signer.chain[:chain_length], signing_time=dt.datetime.now(dt.timezone.utc),
                     signature_id=f"sig-{uuid.uuid4().hex}")


def envelope_bytes(assertion: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "wsa": WSA})
    header = etree.SubElement(env, f"{{{SOAP}}}Header")
    etree.SubElement(header, f"{{{WSA}}}Action").text = ITI41
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    etree.SubElement(header, f"{{{WSA}}}To").text = "https://dmp.test/dmp/repository"
    etree.SubElement(header, f"{{{WSSE}}}Security", nsmap={"wsse": WSSE}).append(assertion)
    etree.SubElement(etree.SubElement(env, f"{{{SOAP}}}Body"), "{urn:test}Payload")
    return etree.tostring(env)


def security_of(data: bytes) -> etree._Element | None:
    """The wsse:Security header as the simulator's envelope reader hands it to the VIHF check."""
    return read_envelope(data, (ITI41,)).security


def by_id(root: etree._Element, value: str) -> etree._Element:
    found = [el for el in root.getroottree().getroot().iter(etree.Element)
             if value in (el.get("ID"), el.get("Id"), el.get("id"))]
    assert len(found) == 1, f"{len(found)} elements with id {value}"
    return found[0]


def resign(signature: etree._Element, key, *, transforms: list[str] | None = None, c14n: str | None = None) -> None:
    """Recompute every digest and the SignatureValue in place, as a signer holding a trusted key would.

    ``transforms`` replaces the algorithms of every Reference's Transforms, ``c14n`` SignedInfo's method. Only
    same-document ``#id`` references and the enveloped / C14N transforms are handled: enough for the attacks.
    """
    signed_info = signature.find(f"{{{DS}}}SignedInfo")
    if c14n is not None:
        signed_info.find(f"{{{DS}}}CanonicalizationMethod").set("Algorithm", c14n)
    for reference in signed_info.iterfind(f"{{{DS}}}Reference"):
        if transforms is not None:
            holder = reference.find(f"{{{DS}}}Transforms")
            for old in list(holder):
                holder.remove(old)
            for algorithm in transforms:
                etree.SubElement(holder, f"{{{DS}}}Transform", Algorithm=algorithm)
        algorithms = [t.get("Algorithm") for t in reference.iterfind(f"{{{DS}}}Transforms/{{{DS}}}Transform")]
        node = copy.deepcopy(by_id(signature, reference.get("URI")[1:]))
        if ENVELOPED in algorithms:
            for inner in node.findall(f"{{{DS}}}Signature"):
                node.remove(inner)
        last = [a for a in algorithms if a != ENVELOPED][-1]
        data = etree.tostring(node, method="c14n", exclusive=last.startswith(EXC),
                              with_comments=last.endswith("WithComments"))
        reference.find(f"{{{DS}}}DigestValue").text = base64.b64encode(hashlib.sha256(data).digest()).decode()
    method = signed_info.find(f"{{{DS}}}CanonicalizationMethod").get("Algorithm")
    data = etree.tostring(signed_info, method="c14n", exclusive=method.startswith(EXC),
                          with_comments=method.endswith("WithComments"))
    value = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    signature.find(f"{{{DS}}}SignatureValue").text = base64.b64encode(value).decode()


def xmlsec1_verify(pki: Pki, tmp_path: Path, data: bytes, *id_attrs: str) -> subprocess.CompletedProcess:
    """xmlsec1 checks the signature alone (digests, value, chain to our root): an independent second opinion.

    ``id_attrs`` are "<attribute> <ns>:<element>" pairs for --id-attr, or plain xmlsec1 options ("--...").
    """
    if shutil.which("xmlsec1") is None:
        pytest.skip("xmlsec1 not installed")
    (tmp_path / "root.pem").write_bytes(cert_pem(pki.root.cert))
    (tmp_path / "intermediate.pem").write_bytes(cert_pem(pki.intermediate.cert))
    (tmp_path / "signed.xml").write_bytes(data)
    args = [arg for spec in id_attrs
            for arg in ((spec,) if spec.startswith("--") else ("--id-attr:" + spec.split(" ")[0], spec.split(" ")[1]))]
    return subprocess.run(["xmlsec1", "--verify", "--trusted-pem", str(tmp_path / "root.pem"), "--untrusted-pem",
                           str(tmp_path / "intermediate.pem"), *args, str(tmp_path / "signed.xml")],
                          capture_output=True, text=True, timeout=30)
