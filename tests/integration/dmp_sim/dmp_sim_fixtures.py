"""Test-side builders of minimal valid DMP requests (VIHF, ITI-41 lots, queries), independent of drimbox.dmp."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import io
import re
import uuid
from dataclasses import dataclass, field

import requests
from lxml import etree
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from drimbox.crypto.pki import Issued, issue_certificate, make_name, make_root_ca
from drimbox.crypto.xmlsig import MANIFEST_TYPE, sign_enveloped, sign_xades_enveloping

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
HL7 = "urn:hl7-org:v3"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
XOP = "http://www.w3.org/2004/08/xop/include"
NS = {"soap": SOAP, "wsa": WSA, "rim": RIM, "rs": RS, "lcm": LCM, "query": QUERY, "xdsb": XDSB, "xop": XOP,
      "saml": SAML, "hl7": HL7}

INS = "248039263001064"
INS_OID = "1.2.250.1.213.1.4.10"
PATIENT = f"{INS}^^^&{INS_OID}&ISO^NH"
STRUCTURE = "499700367909006"
OTHER_STRUCTURE = "310000000099999"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
KOS_CLASS_UID = "1.2.840.10008.5.1.4.1.1.88.59"
REPOSITORY = "1.2.250.1.213.4.1.1.999.1"


@dataclass
class TestPki:
    root: Issued
    intermediate: Issued
    signer: Issued  # structure STRUCTURE
    other_signer: Issued  # structure OTHER_STRUCTURE
    rogue_signer: Issued  # self-made root, not trusted


@functools.cache
def make_test_pki() -> TestPki:
    """One test PKI per session: the simulator trusts its root, lots are signed by its signer by default."""
    root = make_root_ca()
    intermediate = issue_certificate(root, make_name("TEST AC ORGANISATIONS", ou="IGC-SANTE TEST"), profile="ca")
    signer = issue_certificate(intermediate, make_name("DRIMbox", ou=STRUCTURE, o="CABINET TEST"), profile="signing")
    other = issue_certificate(intermediate, make_name("Other", ou=OTHER_STRUCTURE, o="OTHER"), profile="signing")
    rogue_root = make_root_ca("ROGUE ROOT")
    rogue = issue_certificate(rogue_root, make_name("DRIMbox", ou=STRUCTURE, o="CABINET TEST"), profile="signing")
    return TestPki(root, intermediate, signer, other, rogue)


def q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def sub(parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, q(ns, tag), {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


# ------------------------------------------------------------------ VIHF
def vihf_attributes(structure: str = STRUCTURE, patient: str = PATIENT) -> dict[str, object]:
    return {
        "VIHF_Version": "3.0",
        "Identifiant_Structure": structure,
        "Secteur_Activite": "SA07^1.2.250.1.71.4.2.4",
        "urn:oasis:names:tc:xspa:1.0:subject:subject-id": "Jean RADIOLOGUE",
        "urn:oasis:names:tc:xacml:2.0:subject:role": [("Role", "10", "1.2.250.1.71.1.2.7"),
                                                       ("Role", "SM44", "1.2.250.1.71.4.2.5")],
        "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse": [("PurposeOfUse", "normal", "1.2.250.1.213.1.1.4.248")],
        "urn:oasis:names:tc:xacml:2.0:resource:resource-id": patient,
        "Ressource_URN": "urn:dmp",
        "Authentification_Mode": "INDIRECTE",
        "LPS_ID": "DRIMBOX-TEST",
        "LPS_Nom": "DRIMbox test",
        "LPS_Version": "0.1",
        "LPS_ID_HOMOLOGATION_DMP": "TEST-HOMOL",
    }


def build_vihf(signer: Issued | None, *, attributes: dict[str, object] | None = None,
               name_id: str = "810001234567", issuer: str | None = None,
               authn: str = "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient") -> etree._Element:
    attributes = vihf_attributes() if attributes is None else attributes
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assertion = etree.Element(q(SAML, "Assertion"), {"ID": f"_{uuid.uuid4()}", "IssueInstant": now,
                                                     "Version": "2.0"}, nsmap={"saml2": SAML})
    issuer_text = issuer if issuer is not None else (signer.cert.subject.rfc4514_string() if signer else "CN=x")
    sub(assertion, SAML, "Issuer", issuer_text, Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName")
    sub(sub(assertion, SAML, "Subject"), SAML, "NameID", name_id)
    statement = sub(assertion, SAML, "AuthnStatement", AuthnInstant=now)
    sub(sub(statement, SAML, "AuthnContext"), SAML, "AuthnContextClassRef", authn)
    attr_statement = sub(assertion, SAML, "AttributeStatement")
    for name, value in attributes.items():
        attr = sub(attr_statement, SAML, "Attribute", Name=name)
        if isinstance(value, list):
            for tag, code, system in value:
                holder = sub(attr, SAML, "AttributeValue")
                etree.SubElement(holder, q(HL7, tag), {"code": code, "codeSystem": system, "displayName": code},
                                 nsmap={None: HL7})
        else:
            sub(attr, SAML, "AttributeValue", str(value))
    if signer is not None:
        sign_enveloped(assertion, signer.key, signer.cert, signer.chain[:1])
    return assertion


# ------------------------------------------------------------------ documents
def build_kos(uid: str, patient_id: str = INS) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = KOS_CLASS_UID
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = KOS_CLASS_UID
    ds.SOPInstanceUID = uid
    ds.PatientID = patient_id
    ds.Modality = "KO"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


DSG_PURPOSE = "1.2.840.10065.1.12.1.14"


def build_signature_document(documents: dict[str, bytes], signer: Issued | None = None, *,
                             purpose: str = DSG_PURPOSE) -> bytes:
    """An IHE DSG document: XAdES enveloping a ds:Manifest of {uniqueId: bytes} and the purpose of signature."""
    ds_ns = "http://www.w3.org/2000/09/xmldsig#"
    signer = signer or make_test_pki().signer
    manifest = etree.Element(q(ds_ns, "Manifest"), Id="IHEManifest", nsmap={"ds": ds_ns})
    for unique_id, data in documents.items():
        ref = sub(manifest, ds_ns, "Reference", URI=f"urn:oid:{unique_id}")
        sub(ref, ds_ns, "DigestMethod", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
        sub(ref, ds_ns, "DigestValue", base64.b64encode(hashlib.sha256(data).digest()).decode())
    signature_id = f"sig-{uuid.uuid4().hex}"
    holder = etree.Element(q(ds_ns, "Object"), Id="purposeOfSignatureObject", nsmap={"ds": ds_ns})
    sub(sub(holder, ds_ns, "SignatureProperties"), ds_ns, "SignatureProperty", purpose, Id="purposeOfSignature",
        Target=f"#{signature_id}")
    signature = sign_xades_enveloping([(manifest, MANIFEST_TYPE), (holder, ds_ns + "SignatureProperties")],
                                      signer.key, signer.cert, signer.chain[:1], signature_id=signature_id)
    return etree.tostring(signature, xml_declaration=True, encoding="UTF-8")


# ------------------------------------------------------------------ ebRIM
def slot(parent: etree._Element, name: str, *values: str) -> etree._Element:
    s = sub(parent, RIM, "Slot", name=name)
    vl = sub(s, RIM, "ValueList")
    for v in values:
        sub(vl, RIM, "Value", v)
    return s


def classification(parent: etree._Element, scheme: str, code: str, coding_scheme: str, display: str,
                   obj: str) -> etree._Element:
    cl = sub(parent, RIM, "Classification", classificationScheme=scheme, classifiedObject=obj,
             id=f"cl-{uuid.uuid4().hex[:12]}", nodeRepresentation=code)
    slot(cl, "codingScheme", coding_scheme)
    sub(sub(cl, RIM, "Name"), RIM, "LocalizedString", value=display)
    return cl


def author(parent: etree._Element, scheme: str, obj: str, structure: str) -> None:
    cl = sub(parent, RIM, "Classification", classificationScheme=scheme, classifiedObject=obj,
             id=f"cl-{uuid.uuid4().hex[:12]}", nodeRepresentation="")
    slot(cl, "authorInstitution", f"CABINET TEST^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^{structure}")
    slot(cl, "authorPerson", "810001234567^RADIOLOGUE^Jean^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS")


def external_id(parent: etree._Element, scheme: str, value: str, obj: str, name: str) -> None:
    ei = sub(parent, RIM, "ExternalIdentifier", id=f"ei-{uuid.uuid4().hex[:12]}", identificationScheme=scheme,
             registryObject=obj, value=value)
    sub(sub(ei, RIM, "Name"), RIM, "LocalizedString", value=name)


def _common_entry(eo: etree._Element, obj: str, data: bytes, patient: str, structure: str, creation: str) -> None:
    slot(eo, "creationTime", creation)
    slot(eo, "hash", hashlib.sha1(data).hexdigest())
    slot(eo, "size", str(len(data)))
    author(eo, "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d", obj, structure)
    classification(eo, "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1", "SA07", "1.2.250.1.71.4.2.4", "Cabinet", obj)
    classification(eo, "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead", "AMBULATOIRE", "1.2.250.1.213.1.1.4.9",
                   "Ambulatoire", obj)
    classification(eo, "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f", "N", "2.16.840.1.113883.5.25", "Normal", obj)


@dataclass
class Lot:
    request: etree._Element  # xdsb:ProvideAndRegisterDocumentSetRequest
    documents: dict[str, bytes]
    kos_uid: str
    signature_uid: str
    submission_uid: str
    extra_parts: dict[str, bytes] = field(default_factory=dict)

    def find(self, xpath: str) -> etree._Element:
        found = self.request.xpath(xpath, namespaces=NS)
        assert found, f"nothing at {xpath}"
        return found[0]

    def remove(self, xpath: str) -> None:
        el = self.find(xpath)
        el.getparent().remove(el)

    def set_slot(self, obj: str, name: str, *values: str) -> None:
        s = self.find(f"//rim:ExtrinsicObject[@id='{obj}']/rim:Slot[@name='{name}']")
        vl = s.find(q(RIM, "ValueList"))
        for v in list(vl):
            vl.remove(v)
        for v in values:
            sub(vl, RIM, "Value", v)

    def classification_of(self, obj: str, scheme: str) -> etree._Element:
        return self.find(f"//*[@id='{obj}']/rim:Classification[@classificationScheme='{scheme}']")


def build_lot(*, patient: str = PATIENT, structure: str = STRUCTURE, kos_uid: str | None = None,
              replaces: str | None = None, study_uid: str = "1.2.3.4.5.6.7.8") -> Lot:
    kos_uid = kos_uid or generate_uid()
    sig_uid = generate_uid()
    ss_uid = generate_uid()
    ins = patient.split("^", 1)[0]
    kos = build_kos(kos_uid, ins)
    signature = build_signature_document({kos_uid: kos})
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S")

    request = etree.Element(q(XDSB, "ProvideAndRegisterDocumentSetRequest"),
                            nsmap={"xdsb": XDSB, "lcm": LCM, "rim": RIM})
    rol = sub(sub(request, LCM, "SubmitObjectsRequest"), RIM, "RegistryObjectList")

    ss = sub(rol, RIM, "RegistryPackage", id="SubmissionSet01")
    slot(ss, "submissionTime", now)
    author(ss, "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d", "SubmissionSet01", structure)
    classification(ss, "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500", "04", "1.2.250.1.213.2.2", "Imagerie",
                   "SubmissionSet01")
    external_id(ss, "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446", patient, "SubmissionSet01",
                "XDSSubmissionSet.patientId")
    external_id(ss, "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832", "1.2.250.1.999.1", "SubmissionSet01",
                "XDSSubmissionSet.sourceId")
    external_id(ss, "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8", ss_uid, "SubmissionSet01",
                "XDSSubmissionSet.uniqueId")
    sub(ss, RIM, "Classification", id="cl-ss-node", classifiedObject="SubmissionSet01",
        classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd")

    kos_eo = sub(rol, RIM, "ExtrinsicObject", id="DocumentKOS", mimeType="application/dicom",
                 objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1")
    _common_entry(kos_eo, "DocumentKOS", kos, patient, structure, now)
    slot(kos_eo, "languageCode", "fr-FR")
    slot(kos_eo, "legalAuthenticator", "810001234567^RADIOLOGUE^Jean^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS")
    slot(kos_eo, "serviceStartTime", "20240102100000")
    slot(kos_eo, "serviceStopTime", "20240102103000")
    slot(kos_eo, "sourcePatientId", f"{ins}^^^&{INS_OID}&ISO^PI")
    slot(kos_eo, "sourcePatientInfo", "PID-5|TEST^Jean^^^^^L", "PID-7|19800101", "PID-8|M")
    slot(kos_eo, "urn:ihe:iti:xds:2013:referenceIdList", "ACC42^^^&1.2.250.1.999.2&ISO^urn:ihe:iti:xds:2013:accession",
         f"{study_uid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID")
    classification(kos_eo, "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a", "31", "1.2.250.1.213.1.1.4.1",
                   "Imagerie médicale", "DocumentKOS")
    classification(kos_eo, "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983", "IMG-KOS", "1.2.250.1.213.1.1.4.12",
                   "Référence d'objets d'un examen d'imagerie", "DocumentKOS")
    classification(kos_eo, "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d", KOS_CLASS_UID, "1.2.840.10008.2.6.1",
                   "KOS", "DocumentKOS")
    classification(kos_eo, "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4", "CT", "1.2.250.1.213.1.1.5.618",
                   "Scanner", "DocumentKOS")
    external_id(kos_eo, "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427", patient, "DocumentKOS",
                "XDSDocumentEntry.patientId")
    external_id(kos_eo, "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab", kos_uid, "DocumentKOS",
                "XDSDocumentEntry.uniqueId")

    sig_eo = sub(rol, RIM, "ExtrinsicObject", id="Signature01", mimeType="text/xml",
                 objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1")
    _common_entry(sig_eo, "Signature01", signature, patient, structure, now)
    slot(sig_eo, "languageCode", "art")
    slot(sig_eo, "sourcePatientId", patient)
    classification(sig_eo, "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a", "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1",
                   "URN", "Digital Signature", "Signature01")
    classification(sig_eo, "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983", "E1762", "ASTM", "Full Document",
                   "Signature01")
    classification(sig_eo, "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d", "http://www.w3.org/2000/09/xmldsig#",
                   "URN", "Default Signature Style", "Signature01")
    classification(sig_eo, "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4", "1.2.840.10065.1.12.1.14",
                   "1.2.840.10065.1.12", "Source", "Signature01")
    external_id(sig_eo, "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427", patient, "Signature01",
                "XDSDocumentEntry.patientId")
    external_id(sig_eo, "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab", sig_uid, "Signature01",
                "XDSDocumentEntry.uniqueId")

    for ident, target in (("assoc-kos", "DocumentKOS"), ("assoc-sig", "Signature01")):
        a = sub(rol, RIM, "Association", id=ident, associationType=
                "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember", sourceObject="SubmissionSet01",
                targetObject=target)
        slot(a, "SubmissionSetStatus", "Original")
    sub(rol, RIM, "Association", id="assoc-signs", associationType="urn:ihe:iti:2007:AssociationType:signs",
        sourceObject="Signature01", targetObject="SubmissionSet01")
    if replaces:
        sub(rol, RIM, "Association", id="assoc-rplc", associationType="urn:ihe:iti:2007:AssociationType:RPLC",
            sourceObject="DocumentKOS", targetObject=replaces)
    for ident in ("DocumentKOS", "Signature01"):
        doc = sub(request, XDSB, "Document", id=ident)
        sub(doc, XOP, "Include", href=f"cid:{ident}@test")
    return Lot(request, {"DocumentKOS": kos, "Signature01": signature}, kos_uid, sig_uid, ss_uid)


def update_status_request(entry_uuid: str, *, patient: str = PATIENT, structure: str = STRUCTURE,
                          original: str = APPROVED, new: str = DELETED) -> etree._Element:
    request = etree.Element(q(LCM, "SubmitObjectsRequest"), nsmap={"lcm": LCM, "rim": RIM})
    rol = sub(request, RIM, "RegistryObjectList")
    ss = sub(rol, RIM, "RegistryPackage", id="SubmissionSet01")
    slot(ss, "submissionTime", dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S"))
    author(ss, "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d", "SubmissionSet01", structure)
    classification(ss, "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500", "04", "1.2.250.1.213.2.2", "Imagerie",
                   "SubmissionSet01")
    sub(rol, RIM, "Classification", id="cl-ss", classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd",
        classifiedObject="SubmissionSet01")
    external_id(ss, "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446", patient, "SubmissionSet01", "patientId")
    external_id(ss, "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832", "1.2.250.1.999.1", "SubmissionSet01", "sourceId")
    external_id(ss, "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8", generate_uid(), "SubmissionSet01", "uniqueId")
    a = sub(rol, RIM, "Association", id="assoc-update",
            associationType="urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus",
            sourceObject="SubmissionSet01", targetObject=entry_uuid)
    slot(a, "OriginalStatus", original)
    slot(a, "NewStatus", new)
    return request


def stored_query(query_id: str, params: dict[str, list[str]], return_type: str = "LeafClass") -> etree._Element:
    request = etree.Element(q(QUERY, "AdhocQueryRequest"), nsmap={"query": QUERY, "rim": RIM})
    sub(request, QUERY, "ResponseOption", returnType=return_type, returnComposedObjects="true")
    aq = sub(request, RIM, "AdhocQuery", id=query_id)
    for name, values in params.items():
        slot(aq, name, *values)
    return request


# ------------------------------------------------------------------ SOAP / MTOM / HTTP
def envelope(action: str, to: str, vihf: etree._Element | None, payload: etree._Element) -> bytes:
    env = etree.Element(q(SOAP, "Envelope"), nsmap={"soap": SOAP, "wsa": WSA})
    header = sub(env, SOAP, "Header")
    sub(header, WSA, "MessageID", f"urn:uuid:{uuid.uuid4()}")
    sub(header, WSA, "To", to)
    action_el = sub(header, WSA, "Action", action)
    action_el.set(q(SOAP, "mustUnderstand"), "true")
    if vihf is not None:
        sub(header, WSSE, "Security").append(vihf)
    sub(env, SOAP, "Body").append(payload)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def mtom(env: bytes, parts: dict[str, bytes], action: str) -> tuple[str, bytes]:
    boundary = f"uuid:{uuid.uuid4()}"
    chunks = [f"--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\n"
              f"Content-Transfer-Encoding: binary\r\nContent-ID: <root@test>\r\n\r\n".encode(), env]
    for cid, data in parts.items():
        chunks += [f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary"
                   f"\r\nContent-ID: <{cid}>\r\n\r\n".encode(), data]
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    ctype = (f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; start="<root@test>"; '
             f'start-info="application/soap+xml"; action="{action}"')
    return ctype, b"".join(chunks)


@dataclass
class Answer:
    status: int
    root: etree._Element
    parts: dict[str, bytes]
    content_type: str

    @property
    def payload(self) -> etree._Element:
        return self.root.find(f"{{{SOAP}}}Body")[0]

    def errors(self) -> list[dict[str, str]]:
        return [dict(e.attrib) for e in self.root.iter(q(RS, "RegistryError"))]

    def error_codes(self) -> list[str]:
        return [e["errorCode"] for e in self.errors()]

    def response_status(self) -> str:
        el = next(self.root.iter(q(RS, "RegistryResponse"), q(QUERY, "AdhocQueryResponse")), None)
        return "" if el is None else el.get("status", "")

    def fault_subcode(self) -> str:
        return self.root.findtext(".//soap:Fault/soap:Code/soap:Subcode/soap:Value", namespaces=NS) or ""

    def fault_reason(self) -> str:
        return self.root.findtext(".//soap:Fault/soap:Reason/soap:Text", namespaces=NS) or ""


def split_mtom(content_type: str, body: bytes) -> tuple[bytes, dict[str, bytes]]:
    boundary = re.search(r'boundary="?([^";]+)"?', content_type).group(1).encode()
    parts = body.split(b"--" + boundary)
    root, attachments = None, {}
    for part in parts[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part[2:].partition(b"\r\n\r\n")
        content = content[:-2]  # CRLF before the next delimiter
        cid = re.search(rb"Content-ID:\s*<([^>]+)>", head, re.I).group(1).decode()
        if root is None:
            root = content
        else:
            attachments[cid] = content
    return root, attachments


class DmpTestClient:
    def __init__(self, base_url: str, signer: Issued | None, session: requests.Session | None = None, **kwargs):
        self.base_url = base_url
        self.signer = signer
        self.session = session or requests.Session()
        self.kwargs = kwargs  # cert=..., verify=...

    def post(self, endpoint: str, action: str, payload: etree._Element, *, vihf: etree._Element | None = None,
             parts: dict[str, bytes] | None = None, use_mtom: bool = True, raw: bytes | None = None,
             content_type: str | None = None) -> Answer:
        url = f"{self.base_url}/{endpoint}"
        if vihf is None and self.signer is not None:
            vihf = build_vihf(self.signer)
        env = raw if raw is not None else envelope(action, url, vihf, payload)
        if use_mtom:
            ctype, body = mtom(env, parts or {}, action)
        else:
            ctype, body = f'application/soap+xml; charset=UTF-8; action="{action}"', env
        resp = self.session.post(url, data=body, headers={"Content-Type": content_type or ctype}, timeout=30,
                                 **self.kwargs)
        rtype = resp.headers.get("Content-Type", "")
        if rtype.startswith("multipart/related"):
            root_bytes, attachments = split_mtom(rtype, resp.content)
        else:
            root_bytes, attachments = resp.content, {}
        return Answer(resp.status_code, etree.fromstring(root_bytes), attachments, rtype)

    def submit(self, lot: Lot, **kw) -> Answer:
        parts = {f"{ident}@test": data for ident, data in lot.documents.items()}
        parts.update(lot.extra_parts)
        return self.post("repository", "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b", lot.request,
                         parts=parts, **kw)

    def query(self, query_id: str, params: dict[str, list[str]], return_type: str = "LeafClass", **kw) -> Answer:
        return self.post("registry", "urn:ihe:iti:2007:RegistryStoredQuery", stored_query(query_id, params,
                                                                                          return_type),
                         use_mtom=False, **kw)

    def update_status(self, entry_uuid: str, **kw) -> Answer:
        vihf = kw.pop("vihf", None)
        return self.post("registry", "urn:ihe:iti:2010:UpdateDocumentSet", update_status_request(entry_uuid, **kw),
                         vihf=vihf, use_mtom=False)

    def retrieve(self, unique_ids: list[str], repository: str = REPOSITORY) -> Answer:
        request = etree.Element(q(XDSB, "RetrieveDocumentSetRequest"), nsmap={"xdsb": XDSB})
        for uid in unique_ids:
            dr = sub(request, XDSB, "DocumentRequest")
            sub(dr, XDSB, "RepositoryUniqueId", repository)
            sub(dr, XDSB, "DocumentUniqueId", uid)
        return self.post("repository", "urn:ihe:iti:2007:RetrieveDocumentSet", request)

    def documents(self) -> list[dict]:
        return self.session.get(f"{self.base_url}/_sim/documents", timeout=10, **self.kwargs).json()
