"""Each ITI-41 rule violation is refused with the right XDS error code and names the offending item."""

from __future__ import annotations

import hashlib

import pytest
from lxml import etree
from pydicom.uid import generate_uid

from dmp_sim_fixtures import (
    FAILURE, RIM, SUCCESS, XDSB, XOP, build_kos, build_lot, build_signature_document, build_vihf, q, sub,
    vihf_attributes,
)

pytestmark = pytest.mark.integration

CLASS = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
TYPE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
FORMAT = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
CONF = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_PATIENT = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"


def kos_type_wrong(lot):
    lot.classification_of("DocumentKOS", TYPE).set("nodeRepresentation", "IMG-CR")


def kos_class_scheme_wrong(lot):
    cl = lot.classification_of("DocumentKOS", CLASS)
    cl.find(f"{q(RIM, 'Slot')}/{q(RIM, 'ValueList')}/{q(RIM, 'Value')}").text = "2.16.840.1.113883.6.1"


def kos_format_missing(lot):
    cl = lot.classification_of("DocumentKOS", FORMAT)
    cl.getparent().remove(cl)


def creation_time_missing(lot):
    lot.remove("//rim:ExtrinsicObject[@id='DocumentKOS']/rim:Slot[@name='creationTime']")


def object_type_wrong(lot):
    lot.find("//rim:ExtrinsicObject[@id='DocumentKOS']").set("objectType",
                                                               "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248")


def entry_patient_differs(lot):
    lot.find(f"//rim:ExtrinsicObject[@id='Signature01']/rim:ExternalIdentifier[@identificationScheme="
             f"'{DE_PATIENT}']").set("value", "111111111111111^^^&1.2.250.1.213.1.4.10&ISO^NH")


def hash_wrong(lot):
    lot.set_slot("DocumentKOS", "hash", "0" * 40)


def size_wrong(lot):
    lot.set_slot("DocumentKOS", "size", "12")


def document_part_missing(lot):
    lot.remove("//xdsb:Document[@id='DocumentKOS']")


def document_without_metadata(lot):
    doc = sub(lot.request, XDSB, "Document", id="Stray01")
    sub(doc, XOP, "Include", href="cid:stray@test")
    lot.extra_parts["stray@test"] = b"stray"


def association_target_unknown(lot):
    lot.find("//rim:Association[@id='assoc-kos']").set("targetObject", "Nowhere")


def signs_association_missing(lot):
    lot.remove("//rim:Association[@id='assoc-signs']")


def submission_set_node_missing(lot):
    lot.remove("//rim:Classification[@id='cl-ss-node']")


def submission_unique_id_missing(lot):
    lot.remove("//rim:RegistryPackage/rim:ExternalIdentifier[@identificationScheme="
               "'urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8']")


def signature_language_wrong(lot):
    lot.set_slot("Signature01", "languageCode", "fr-FR")


def confidentiality_wrong(lot):
    lot.classification_of("DocumentKOS", CONF).set("nodeRepresentation", "SECRET")


def study_reference_missing(lot):
    lot.set_slot("DocumentKOS", "urn:ihe:iti:xds:2013:referenceIdList",
                 "ACC42^^^&1.2.250.1.999.2&ISO^urn:ihe:iti:xds:2013:accession")


def has_member_status_wrong(lot):
    slot_value = lot.find("//rim:Association[@id='assoc-kos']/rim:Slot/rim:ValueList/rim:Value")
    slot_value.text = "Reference"


def kos_content_uid_differs(lot):
    data = build_kos(generate_uid())
    lot.documents["DocumentKOS"] = data
    lot.set_slot("DocumentKOS", "hash", hashlib.sha1(data).hexdigest())
    lot.set_slot("DocumentKOS", "size", str(len(data)))


def source_patient_info_incomplete(lot):
    lot.set_slot("DocumentKOS", "sourcePatientInfo", "PID-5|TEST^Jean^^^^^L")


def signature_manifest_wrong(lot):
    data = build_signature_document({lot.kos_uid: b"other bytes"})
    lot.documents["Signature01"] = data
    lot.set_slot("Signature01", "hash", hashlib.sha1(data).hexdigest())
    lot.set_slot("Signature01", "size", str(len(data)))


def event_code_scheme_wrong(lot):
    cl = lot.classification_of("DocumentKOS", "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4")
    cl.find(f"{q(RIM, 'Slot')}/{q(RIM, 'ValueList')}/{q(RIM, 'Value')}").text = "9.9.9"


def rplc_symbolic_target(lot):
    sub(lot.find("//rim:RegistryObjectList"), RIM, "Association", id="assoc-rplc",
        associationType="urn:ihe:iti:2007:AssociationType:RPLC", sourceObject="DocumentKOS", targetObject="Old01")


CASES = [
    (kos_type_wrong, "XDSRegistryMetadataError", "DocumentKOS", "typeCode"),
    (kos_class_scheme_wrong, "XDSRegistryMetadataError", "DocumentKOS", "classCode"),
    (kos_format_missing, "XDSRegistryMetadataError", "DocumentKOS", "formatCode"),
    (creation_time_missing, "XDSRegistryMetadataError", "DocumentKOS", "creationTime"),
    (object_type_wrong, "XDSRegistryMetadataError", "DocumentKOS", "objectType"),
    (entry_patient_differs, "XDSPatientIdDoesNotMatch", "Signature01", "patientId"),
    (hash_wrong, "XDSNonIdenticalHash", "DocumentKOS", "hash"),
    (size_wrong, "XDSNonIdenticalSize", "DocumentKOS", "size"),
    (document_part_missing, "XDSMissingDocument", "DocumentKOS", "DocumentKOS"),
    (document_without_metadata, "XDSMissingDocumentMetadata", "Stray01", "Stray01"),
    (association_target_unknown, "UnresolvedReferenceException", "assoc-kos", "Nowhere"),
    (signs_association_missing, "XDSRegistryMetadataError", "Signature01", "signs"),
    (submission_set_node_missing, "XDSRegistryMetadataError", "SubmissionSet01", "SubmissionSet"),
    (submission_unique_id_missing, "XDSRegistryMetadataError", "SubmissionSet01", "uniqueId"),
    (signature_language_wrong, "XDSRegistryMetadataError", "Signature01", "languageCode"),
    (confidentiality_wrong, "XDSRegistryMetadataError", "DocumentKOS", "confidentialityCode"),
    (study_reference_missing, "XDSRegistryMetadataError", "DocumentKOS", "studyInstanceUID"),
    (has_member_status_wrong, "XDSRegistryMetadataError", "assoc-kos", "SubmissionSetStatus"),
    (kos_content_uid_differs, "InvalidDocumentContent", "DocumentKOS", "SOP Instance UID"),
    (source_patient_info_incomplete, "XDSRegistryMetadataError", "DocumentKOS", "PID-7"),
    (rplc_symbolic_target, "UnresolvedReferenceException", "assoc-rplc", "entryUUID"),
    (signature_manifest_wrong, "InvalidDocumentContent", "Signature01", "manifest digest"),
    (event_code_scheme_wrong, "XDSRegistryMetadataError", "DocumentKOS", "eventCodeList"),
]


@pytest.mark.parametrize("mutate,code,location,context", CASES, ids=[c[0].__name__ for c in CASES])
def test_rule_violation_refused(client, mutate, code, location, context):
    lot = build_lot()
    mutate(lot)
    answer = client.submit(lot)
    assert answer.status == 200
    assert answer.response_status() == FAILURE
    matching = [e for e in answer.errors() if e["errorCode"] == code]
    assert matching, answer.errors()
    assert any(e.get("location") == location and context in e["codeContext"] for e in matching), matching
    assert all(e["severity"] == "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error" for e in answer.errors())
    assert client.documents() == []


def test_duplicate_unique_id_refused(client):
    first = build_lot()
    assert client.submit(first).response_status() == SUCCESS
    again = build_lot(kos_uid=first.kos_uid)
    answer = client.submit(again)
    assert answer.response_status() == FAILURE
    assert any(e["errorCode"] == "XDSDuplicateUniqueIdInRegistry" and first.kos_uid in e["codeContext"]
               for e in answer.errors()), answer.errors()
    assert len(client.documents()) == 2


def test_vihf_patient_must_match_submission(client, pki):
    attributes = vihf_attributes(patient="111111111111111^^^&1.2.250.1.213.1.4.10&ISO^NH")
    answer = client.submit(build_lot(), vihf=build_vihf(pki.signer, attributes=attributes))
    assert "XDSPatientIdDoesNotMatch" in answer.error_codes()


def test_vihf_structure_must_be_an_author_institution(client, pki):
    answer = client.submit(build_lot(), vihf=build_vihf(pki.other_signer,
                                                        attributes=vihf_attributes(structure="310000000099999")))
    assert answer.response_status() == FAILURE
    assert any("Identifiant_Structure" in e["codeContext"] for e in answer.errors())


def test_inline_base64_documents_are_accepted(client):
    import base64
    lot = build_lot()
    for doc in lot.request.iterfind(q(XDSB, "Document")):
        doc.remove(doc[0])
        doc.text = base64.b64encode(lot.documents[doc.get("id")]).decode()
    lot.documents.clear()
    answer = client.submit(lot, use_mtom=False)
    assert answer.response_status() == SUCCESS, answer.errors()
    assert etree.QName(answer.payload).localname == "RegistryResponse"
