"""VIHF 3.0: the SAML 2.0 assertion identifying who acts on the DMP, enveloped-signed by the structure."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from drimbox.crypto import xmlsig
from drimbox.crypto.keys import PrivateKey
from drimbox.dmp import xds_ids
from drimbox.dmp.settings import AUTH_MODES
from drimbox.reports.model import Code, Organization, Person

SAML = xds_ids.SAML2
TLS_CLIENT = "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient"
X509_SUBJECT_NAME = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
PURPOSES = {
    "normal": "Accès normal",
    "bris_de_glace": "Accès en mode bris de glace",
    "centre_15": "Accès en mode centre de régulation",
}


@dataclass(frozen=True)
class Software:
    """The LPS (logiciel de professionnel de santé) attributes."""

    id: str
    name: str
    version: str
    homologation_id: str


def _saml(tag: str) -> str:
    return f"{{{SAML}}}{tag}"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_vihf(
    *,
    professional: Person,
    organization: Organization,
    patient_cx: str,
    software: Software,
    signing_key: PrivateKey,
    signing_cert: x509.Certificate,
    now: dt.datetime,
    purpose: str = "normal",
    auth_mode: str = "INDIRECTE_RENFORCEE",
    roles: Sequence[Code] = (),
    chain: Sequence[x509.Certificate] = (),
    assertion_id: str | None = None,
    issuer: str | None = None,
) -> etree._Element:
    """The signed ``saml2:Assertion``; ``roles`` are the profession and specialty codes of the professional.

    ``issuer`` defaults to the signing certificate's subject DN (RFC 4514).
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {sorted(PURPOSES)}, got {purpose!r}")
    if auth_mode not in AUTH_MODES:
        raise ValueError(f"auth_mode must be one of {AUTH_MODES}, got {auth_mode!r}")
    if not professional.id_nat:
        raise ValueError("the VIHF needs the professional's national id (idNat)")
    if not organization.id:
        raise ValueError("the VIHF needs the structure id (Identifiant_Structure)")
    if not (software.id and software.name and software.version and software.homologation_id):
        raise ValueError("the VIHF needs LPS_ID, LPS_Nom, LPS_Version and LPS_ID_HOMOLOGATION_DMP (DRIMbox.Dmp.Lps*)")
    if organization.facility_type is None or not organization.facility_type.code:
        raise ValueError("the VIHF needs the structure's sector of activity (SAxx, Secteur_Activite)")

    assertion = etree.Element(
        _saml("Assertion"),
        {"ID": assertion_id or f"_{uuid.uuid4()}", "IssueInstant": _iso(now), "Version": "2.0"},
        nsmap={"saml2": SAML, "xsi": xds_ids.XSI},
    )
    etree.SubElement(assertion, _saml("Issuer"), Format=X509_SUBJECT_NAME).text = (
        issuer or signing_cert.subject.rfc4514_string()
    )
    subject = etree.SubElement(assertion, _saml("Subject"))
    etree.SubElement(subject, _saml("NameID")).text = professional.id_nat
    statement = etree.SubElement(assertion, _saml("AuthnStatement"), AuthnInstant=_iso(now))
    context = etree.SubElement(statement, _saml("AuthnContext"))
    etree.SubElement(context, _saml("AuthnContextClassRef")).text = TLS_CLIENT

    attributes = etree.SubElement(assertion, _saml("AttributeStatement"))
    facility = organization.facility_type
    name = " ".join(part for part in (professional.given, professional.family) if part)
    simple = [
        ("VIHF_Version", "3.0"),
        ("Identifiant_Structure", organization.id),
        ("Secteur_Activite", f"{facility.code}^{facility.system or xds_ids.SYSTEM_FACILITY_TYPE}"),
        ("urn:oasis:names:tc:xspa:1.0:subject:subject-id", name or professional.id_nat),
        ("urn:oasis:names:tc:xacml:2.0:resource:resource-id", patient_cx),
        ("Ressource_URN", "urn:dmp"),
        ("Authentification_Mode", auth_mode),
        ("LPS_ID", software.id),
        ("LPS_Nom", software.name),
        ("LPS_Version", software.version),
        ("LPS_ID_HOMOLOGATION_DMP", software.homologation_id),
    ]
    for attribute_name, value in simple:
        attribute = etree.SubElement(attributes, _saml("Attribute"), Name=attribute_name)
        etree.SubElement(attribute, _saml("AttributeValue")).text = value
    if roles:
        attribute = etree.SubElement(attributes, _saml("Attribute"), Name="urn:oasis:names:tc:xacml:2.0:subject:role")
        for role in roles:
            _coded_value(attribute, "Role", role)
    attribute = etree.SubElement(attributes, _saml("Attribute"),
                                 Name="urn:oasis:names:tc:xspa:1.0:subject:purposeofuse")
    _coded_value(attribute, "PurposeOfUse", Code(purpose, xds_ids.SYSTEM_PURPOSE_OF_USE, PURPOSES[purpose]))

    return xmlsig.sign_enveloped(assertion, signing_key, signing_cert, chain)


def _coded_value(attribute: etree._Element, tag: str, code: Code) -> None:
    value = etree.SubElement(attribute, _saml("AttributeValue"))
    coded = etree.SubElement(value, f"{{{xds_ids.HL7V3}}}{tag}", nsmap={"hl7": xds_ids.HL7V3})
    coded.set(f"{{{xds_ids.XSI}}}type", "CE")
    coded.set("code", code.code)
    coded.set("codeSystem", code.system)
    if code.display:
        coded.set("displayName", code.display)


def attributes_of(assertion: etree._Element) -> dict[str, list]:
    """``Name -> values`` of an assertion's attributes: text, or ``Code`` for coded values."""
    result: dict[str, list] = {}
    for attribute in assertion.iterfind(f"{_saml('AttributeStatement')}/{_saml('Attribute')}"):
        values = result.setdefault(attribute.get("Name", ""), [])
        for value in attribute.iterfind(_saml("AttributeValue")):
            if len(value):
                coded = value[0]
                values.append(Code(coded.get("code", ""), coded.get("codeSystem", ""), coded.get("displayName", "")))
            else:
                values.append((value.text or "").strip())
    return result
