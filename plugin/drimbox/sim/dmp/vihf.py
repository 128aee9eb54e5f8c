"""Checks of the VIHF 3.0 SAML assertion carried in wsse:Security: enveloped signature, signer chain, attributes."""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass, field

from cryptography import x509
from lxml import etree
from signxml import SignatureConfiguration, SignatureMethod, XMLVerifier
from signxml.algorithms import DigestAlgorithm

from . import constants as c
from .errors import SoapFaultError

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
ALLOWED_SIGNATURE_METHODS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": SignatureMethod.RSA_SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": SignatureMethod.RSA_SHA512,
}
_CONFIG = SignatureConfiguration(
    require_x509=True,
    location="./",
    expect_references=1,
    signature_methods=frozenset(ALLOWED_SIGNATURE_METHODS.values()),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}),
    ignore_ambiguous_key_info=True,
)

REQUIRED_ATTRIBUTES = (
    "VIHF_Version",
    "Identifiant_Structure",
    "Secteur_Activite",
    "urn:oasis:names:tc:xspa:1.0:subject:subject-id",
    "urn:oasis:names:tc:xacml:2.0:subject:role",
    "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
    "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
    "Ressource_URN",
    "Authentification_Mode",
    "LPS_ID",
    "LPS_Nom",
    "LPS_Version",
    "LPS_ID_HOMOLOGATION_DMP",
)
# Attributes whose value may be empty (the homologation number is only known once the product is homologated).
MAY_BE_EMPTY = {"LPS_ID_HOMOLOGATION_DMP"}

_SECTEUR = re.compile(r"^SA\d{2}\^1\.2\.250\.1\.71\.4\.2\.4$")
_INS_CX = re.compile(r"^([0-9A-Za-z]{1,20})\^\^\^&(" + "|".join(re.escape(o) for o in c.OID_INS) + r")&ISO\^NH$")
_DN_PART = re.compile(r"\s*((?:[^,\\]|\\.)+)\s*(?:,|$)")


@dataclass(frozen=True)
class VihfContext:
    """What the rest of the simulator needs from a valid assertion."""

    professional_id: str  # NameID (idNat)
    structure_id: str
    patient_cx: str
    purpose_of_use: str
    authentication_mode: str
    issuer: str
    attributes: dict[str, list[str]] = field(default_factory=dict, compare=False)


def normalize_structure_id(value: str) -> str:
    value = value.strip()
    prefix = c.OID_STRUCTURE + "."
    return value[len(prefix):] if value.startswith(prefix) else value


def _fault(subcode: str, reason: str, attribute: str = "") -> SoapFaultError:
    detail = {"VihfError": attribute} if attribute else {}
    return SoapFaultError(subcode, reason, detail=detail)


def _dn_set(text: str) -> set[tuple[str, str]]:
    pairs = set()
    for m in _DN_PART.finditer(text.strip()):
        key, _, value = m.group(1).partition("=")
        key = key.strip().upper()
        key = {"S": "ST", "2.5.4.8": "ST", "2.5.4.3": "CN", "2.5.4.11": "OU", "2.5.4.10": "O",
               "2.5.4.6": "C"}.get(key, key)
        pairs.add((key, value.strip().replace("\\", "")))
    return pairs


def _parse_instant(value: str, what: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _fault("wsse:InvalidSecurityToken", f"VIHF {what} {value!r} is not an xs:dateTime") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed


class VihfValidator:
    """Built once per simulator; validates assertions concurrently (no mutable state)."""

    def __init__(self, trust_anchors: list[x509.Certificate] | None = None, clock_skew_seconds: int = 300):
        self.trust_anchors = trust_anchors or []
        self.skew = dt.timedelta(seconds=clock_skew_seconds)

    @classmethod
    def from_ca_file(cls, path: str | None) -> "VihfValidator":
        if not path:
            return cls([])
        with open(path, "rb") as fh:
            return cls(x509.load_pem_x509_certificates(fh.read()))

    def validate(self, security: etree._Element | None) -> VihfContext:
        if security is None:
            raise _fault("wsse:InvalidSecurity", "wsse:Security header missing: a VIHF assertion is required")
        assertions = security.findall(f"{{{c.SAML2}}}Assertion")
        if len(assertions) != 1:
            raise _fault("wsse:InvalidSecurity",
                         f"wsse:Security must hold exactly one saml2:Assertion (found {len(assertions)})")
        assertion = assertions[0]
        if assertion.get("Version") != "2.0":
            raise _fault("wsse:InvalidSecurityToken", "saml2:Assertion/@Version must be 2.0", "Version")
        assertion_id = assertion.get("ID", "")
        if not assertion_id:
            raise _fault("wsse:InvalidSecurityToken", "saml2:Assertion/@ID missing", "ID")
        self._check_time(assertion)
        issuer = self._check_issuer(assertion)
        signer = self._check_signature(assertion, assertion_id)
        if _dn_set(issuer) != _dn_set(signer.subject.rfc4514_string()):
            raise _fault("wsse:FailedAuthentication",
                         f"saml2:Issuer {issuer!r} is not the subject DN of the signing certificate "
                         f"({signer.subject.rfc4514_string()!r})", "Issuer")
        name_id = assertion.findtext(f"{{{c.SAML2}}}Subject/{{{c.SAML2}}}NameID", default="").strip()
        if not name_id or not re.fullmatch(r"[0-9A-Za-z]+", name_id):
            raise _fault("wsse:InvalidSecurityToken",
                         f"saml2:Subject/NameID must be the professional's idNat (got {name_id!r})", "NameID")
        ref = assertion.findtext(
            f"{{{c.SAML2}}}AuthnStatement/{{{c.SAML2}}}AuthnContext/{{{c.SAML2}}}AuthnContextClassRef",
            default="").strip()
        if ref != c.AUTHN_CONTEXT_TLS_CLIENT:
            raise _fault("wsse:InvalidSecurityToken",
                         f"AuthnContextClassRef must be {c.AUTHN_CONTEXT_TLS_CLIENT} (got {ref!r})",
                         "AuthnContextClassRef")
        attributes = self._attributes(assertion)
        return self._check_attributes(attributes, name_id, issuer)

    def _check_time(self, assertion: etree._Element) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        issue = assertion.get("IssueInstant", "")
        if not issue:
            raise _fault("wsse:InvalidSecurityToken", "saml2:Assertion/@IssueInstant missing", "IssueInstant")
        if _parse_instant(issue, "IssueInstant") > now + self.skew:
            raise _fault("wsse:InvalidSecurityToken", f"VIHF IssueInstant {issue} is in the future", "IssueInstant")
        conditions = assertion.find(f"{{{c.SAML2}}}Conditions")
        if conditions is not None:
            not_before = conditions.get("NotBefore")
            not_after = conditions.get("NotOnOrAfter")
            if not_before and _parse_instant(not_before, "NotBefore") > now + self.skew:
                raise _fault("wsu:MessageExpired", f"VIHF not valid before {not_before}", "NotBefore")
            if not_after and _parse_instant(not_after, "NotOnOrAfter") <= now - self.skew:
                raise _fault("wsu:MessageExpired", f"VIHF expired at {not_after}", "NotOnOrAfter")

    @staticmethod
    def _check_issuer(assertion: etree._Element) -> str:
        if len(assertion) == 0 or assertion[0].tag != f"{{{c.SAML2}}}Issuer":
            raise _fault("wsse:InvalidSecurityToken", "saml2:Issuer must be the first child of the assertion",
                         "Issuer")
        issuer_el = assertion[0]
        issuer = (issuer_el.text or "").strip()
        if issuer_el.get("Format") != c.NAMEID_FORMAT_X509:
            raise _fault("wsse:InvalidSecurityToken", f"saml2:Issuer/@Format must be {c.NAMEID_FORMAT_X509}",
                         "Issuer")
        if not issuer:
            raise _fault("wsse:InvalidSecurityToken", "saml2:Issuer is empty", "Issuer")
        return issuer

    def _check_signature(self, assertion: etree._Element, assertion_id: str) -> x509.Certificate:
        signatures = assertion.findall(f"{{{c.DS}}}Signature")
        if len(signatures) != 1:
            raise _fault("wsse:FailedCheck", "the VIHF assertion must carry exactly one enveloped ds:Signature",
                         "Signature")
        signature = signatures[0]
        if assertion.index(signature) != 1:
            raise _fault("wsse:InvalidSecurityToken", "ds:Signature must directly follow saml2:Issuer (SAML schema)",
                         "Signature")
        signed_info = signature.find(f"{{{c.DS}}}SignedInfo")
        if signed_info is None:
            raise _fault("wsse:FailedCheck", "ds:SignedInfo missing", "Signature")
        c14n = signed_info.find(f"{{{c.DS}}}CanonicalizationMethod")
        if c14n is None or c14n.get("Algorithm") != EXC_C14N:
            raise _fault("wsse:UnsupportedAlgorithm", f"SignedInfo CanonicalizationMethod must be {EXC_C14N}",
                         "CanonicalizationMethod")
        method = signed_info.find(f"{{{c.DS}}}SignatureMethod")
        if method is None or method.get("Algorithm") not in ALLOWED_SIGNATURE_METHODS:
            raise _fault("wsse:UnsupportedAlgorithm",
                         f"SignatureMethod {None if method is None else method.get('Algorithm')!r} refused: "
                         "RSA-SHA256 required", "SignatureMethod")
        refs = signed_info.findall(f"{{{c.DS}}}Reference")
        if len(refs) != 1 or refs[0].get("URI") != f"#{assertion_id}":
            raise _fault("wsse:FailedCheck", f"the signature must have one Reference to #{assertion_id}",
                         "Reference")
        transforms = [t.get("Algorithm") for t in refs[0].iterfind(f"{{{c.DS}}}Transforms/{{{c.DS}}}Transform")]
        if ENVELOPED not in transforms or EXC_C14N not in transforms:
            raise _fault("wsse:FailedCheck", "Reference transforms must be enveloped-signature + exc-c14n",
                         "Transforms")
        certs = self._keyinfo_certificates(signature)
        signer = self._leaf(certs)
        try:
            XMLVerifier().verify(assertion, x509_cert=signer, id_attribute="ID", expect_config=_CONFIG)
        except Exception as exc:  # signxml raises several exception types; all mean "does not verify"
            raise _fault("wsse:FailedCheck", f"VIHF signature does not verify: {exc}", "Signature") from None
        self._check_chain(signer, certs)
        return signer

    @staticmethod
    def _keyinfo_certificates(signature: etree._Element) -> list[x509.Certificate]:
        texts = signature.findall(f"{{{c.DS}}}KeyInfo/{{{c.DS}}}X509Data/{{{c.DS}}}X509Certificate")
        if not texts:
            raise _fault("wsse:SecurityTokenUnavailable", "ds:KeyInfo/X509Data/X509Certificate missing", "KeyInfo")
        certs = []
        for el in texts:
            try:
                certs.append(x509.load_der_x509_certificate(base64.b64decode("".join((el.text or "").split()))))
            except ValueError:
                raise _fault("wsse:InvalidSecurityToken", "ds:X509Certificate is not a DER certificate",
                             "KeyInfo") from None
        return certs

    @staticmethod
    def _leaf(certs: list[x509.Certificate]) -> x509.Certificate:
        issuers = {cert.issuer for cert in certs if cert.issuer != cert.subject}
        for cert in certs:
            if cert.subject not in issuers:
                return cert
        return certs[0]

    def _check_chain(self, signer: x509.Certificate, certs: list[x509.Certificate]) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        if not (signer.not_valid_before_utc <= now <= signer.not_valid_after_utc):
            raise _fault("wsse:FailedAuthentication", "the VIHF signing certificate is outside its validity period",
                         "KeyInfo")
        if not self.trust_anchors:
            return
        pool = [cert for cert in certs if cert is not signer]
        current = signer
        for _ in range(6):
            for anchor in self.trust_anchors:
                if current.issuer == anchor.subject and _issued_by(current, anchor):
                    return
            parent = next((p for p in pool if current.issuer == p.subject and _issued_by(current, p)), None)
            if parent is None or not (parent.not_valid_before_utc <= now <= parent.not_valid_after_utc):
                break
            pool.remove(parent)
            current = parent
        raise _fault("wsse:FailedAuthentication",
                     f"the VIHF signing certificate ({signer.subject.rfc4514_string()}) does not chain to a trusted "
                     "signing CA", "KeyInfo")

    @staticmethod
    def _attributes(assertion: etree._Element) -> dict[str, list[etree._Element]]:
        found: dict[str, list[etree._Element]] = {}
        for attr in assertion.iterfind(f"{{{c.SAML2}}}AttributeStatement/{{{c.SAML2}}}Attribute"):
            name = attr.get("Name", "")
            if name in found:
                raise _fault("wsse:InvalidSecurityToken", f"VIHF attribute {name} appears twice", name)
            found[name] = attr.findall(f"{{{c.SAML2}}}AttributeValue")
        return found

    def _check_attributes(self, attrs: dict[str, list[etree._Element]], name_id: str, issuer: str) -> VihfContext:
        for name in REQUIRED_ATTRIBUTES:
            values = attrs.get(name)
            if not values:
                raise _fault("wsse:InvalidSecurityToken", f"mandatory VIHF attribute {name} missing", name)

        def text(name: str) -> str:
            values = attrs[name]
            if len(values) != 1:
                raise _fault("wsse:InvalidSecurityToken", f"VIHF attribute {name} must have exactly one value", name)
            value = (values[0].text or "").strip()
            if not value and name not in MAY_BE_EMPTY:
                raise _fault("wsse:InvalidSecurityToken", f"VIHF attribute {name} is empty", name)
            return value

        def bad(name: str, value: str, expected: str) -> SoapFaultError:
            return _fault("wsse:InvalidSecurityToken", f"VIHF attribute {name} = {value!r} is invalid: {expected}",
                          name)

        plain = {name: text(name) for name in REQUIRED_ATTRIBUTES
                 if name not in ("urn:oasis:names:tc:xacml:2.0:subject:role",
                                 "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse")}
        if plain["VIHF_Version"] != "3.0":
            raise bad("VIHF_Version", plain["VIHF_Version"], "expected 3.0")
        if not _SECTEUR.match(plain["Secteur_Activite"]):
            raise bad("Secteur_Activite", plain["Secteur_Activite"], f"expected SAxx^{c.OID_SECTEUR_ACTIVITE}")
        if plain["Ressource_URN"] != "urn:dmp":
            raise bad("Ressource_URN", plain["Ressource_URN"], "expected urn:dmp")
        if plain["Authentification_Mode"] not in c.AUTHENTICATION_MODES:
            raise bad("Authentification_Mode", plain["Authentification_Mode"], f"one of {c.AUTHENTICATION_MODES}")
        resource = plain["urn:oasis:names:tc:xacml:2.0:resource:resource-id"]
        if not _INS_CX.match(resource):
            raise bad("urn:oasis:names:tc:xacml:2.0:resource:resource-id", resource,
                      "expected <INS>^^^&<INS OID>&ISO^NH")
        structure = normalize_structure_id(plain["Identifiant_Structure"])
        if not structure:
            raise bad("Identifiant_Structure", plain["Identifiant_Structure"], "empty structure id")

        roles = [v.find(f"{{{c.HL7V3}}}Role") for v in attrs["urn:oasis:names:tc:xacml:2.0:subject:role"]]
        if any(r is None or not r.get("code") or not r.get("codeSystem") for r in roles):
            raise bad("urn:oasis:names:tc:xacml:2.0:subject:role", "", "each value must be an hl7:Role with code "
                      "and codeSystem")
        if not any(r.get("codeSystem") == c.OID_PROFESSION for r in roles):
            raise bad("urn:oasis:names:tc:xacml:2.0:subject:role", ",".join(r.get("codeSystem") for r in roles),
                      f"a role in the profession code system {c.OID_PROFESSION} is required")
        purposes = attrs["urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"]
        purpose = purposes[0].find(f"{{{c.HL7V3}}}PurposeOfUse") if len(purposes) == 1 else None
        if purpose is None:
            raise bad("urn:oasis:names:tc:xspa:1.0:subject:purposeofuse", "", "one hl7:PurposeOfUse value expected")
        if purpose.get("code") not in c.PURPOSES_OF_USE or purpose.get("codeSystem") != c.OID_PURPOSE_OF_USE:
            raise bad("urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
                      f"{purpose.get('code')}^{purpose.get('codeSystem')}",
                      f"code in {c.PURPOSES_OF_USE}, codeSystem {c.OID_PURPOSE_OF_USE}")
        summary = {name: [(v.text or "").strip() for v in values] for name, values in attrs.items()}
        return VihfContext(name_id, structure, resource, purpose.get("code"), plain["Authentification_Mode"], issuer,
                           summary)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, Exception):
        return False
