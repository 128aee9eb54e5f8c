from __future__ import annotations

import base64

import pytest
from dmp_testdata import NOW
from lxml import etree

from drimbox.dmp import mtom, patients, queries, retrieve, xds_ids
from drimbox.dmp.errors import DmpUnavailable
from drimbox.reports.model import Code

NS = {"rim": xds_ids.RIM, "query": xds_ids.QUERY}
PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"


def parameters(request):
    return {s.get("name"): s.findtext(".//rim:Value", namespaces=NS) for s in request.iterfind(".//rim:Slot", NS)}


def test_find_documents_parameters():
    request = queries.find_documents(PATIENT, type_codes=[Code("IMG-KOS", "1.2.250.1.213.1.1.4.12")],
                                     event_codes=[Code("CT", "1.2.250.1.213.1.1.5.618"), Code("MR", "x")],
                                     creation_from="20240101", creation_to="20241231")
    assert request.find("rim:AdhocQuery", NS).get("id") == "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
    assert request.find("query:ResponseOption", NS).get("returnType") == "LeafClass"
    assert parameters(request) == {
        "$XDSDocumentEntryPatientId": f"'{PATIENT}'",
        "$XDSDocumentEntryStatus": "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')",
        "$XDSDocumentEntryTypeCode": "('IMG-KOS^^1.2.250.1.213.1.1.4.12')",
        "$XDSDocumentEntryEventCodeList": "('CT^^1.2.250.1.213.1.1.5.618','MR^^x')",
        "$XDSDocumentEntryCreationTimeFrom": "20240101",
        "$XDSDocumentEntryCreationTimeTo": "20241231",
    }


def test_get_documents_and_by_reference_id():
    assert queries.get_documents(["1.2'3"]).find("rim:AdhocQuery", NS).get("id") == (
        "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4")
    assert parameters(queries.get_documents(["1.2'3"])) == {"$XDSDocumentEntryUniqueId": "('1.2''3')"}
    request = queries.find_documents_by_reference_id(PATIENT, ["A^^^&1.2&ISO^urn:ihe:iti:xds:2013:accession"])
    assert request.find("rim:AdhocQuery", NS).get("id") == "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"
    assert parameters(request)["$XDSDocumentEntryReferenceIdList"] == "('A^^^&1.2&ISO^urn:ihe:iti:xds:2013:accession')"


def test_document_entries_are_read_back_from_our_own_metadata(kos, report, settings, identity, signing):
    from drimbox.dmp.lot import build_lot
    lot = build_lot(kos, report, {"MASQUE_PS": True}, settings, identity, signing=signing, now=NOW)
    response = etree.Element(f"{{{xds_ids.QUERY}}}AdhocQueryResponse",
                             status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success")
    objects = etree.SubElement(response, f"{{{xds_ids.RIM}}}RegistryObjectList")
    kos_entry = lot.submit_objects.find(f".//rim:ExtrinsicObject[@id='{lot.ids.kos_entry_id}']", NS)
    kos_entry.set("status", xds_ids.STATUS_APPROVED)
    etree.SubElement(kos_entry, f"{{{xds_ids.RIM}}}Slot", name="repositoryUniqueId").append(
        etree.fromstring(f'<rim:ValueList xmlns:rim="{xds_ids.RIM}"><rim:Value>1.2.250.1</rim:Value></rim:ValueList>'))
    objects.append(kos_entry)
    [summary] = queries.document_entries(response)
    assert summary.entry_uuid == lot.ids.kos_entry_id and summary.unique_id == lot.ids.kos_unique_id
    assert summary.repository_id == "1.2.250.1" and summary.status == xds_ids.STATUS_APPROVED
    assert summary.type_code.code == "IMG-KOS" and summary.class_code.code == "31"
    assert [c.code for c in summary.confidentiality] == ["N", "MASQUE_PS"]
    assert summary.size == len(kos) and summary.patient_id == PATIENT
    assert summary.study_uids == (report.studies[0].study_uid,)


def test_retrieved_documents_from_mtom_and_inline():
    response = etree.fromstring(
        f'<xds:RetrieveDocumentSetResponse xmlns:xds="{xds_ids.XDS}" xmlns:xop="{xds_ids.XOP}">'
        '<xds:DocumentResponse><xds:RepositoryUniqueId>1.2</xds:RepositoryUniqueId>'
        '<xds:DocumentUniqueId>9.1</xds:DocumentUniqueId><xds:mimeType>application/dicom</xds:mimeType>'
        '<xds:Document><xop:Include href="cid:p1%40x"/></xds:Document></xds:DocumentResponse>'
        '<xds:DocumentResponse><xds:RepositoryUniqueId>1.2</xds:RepositoryUniqueId>'
        f'<xds:DocumentUniqueId>9.2</xds:DocumentUniqueId><xds:Document>{base64.b64encode(b"abc").decode()}'
        '</xds:Document></xds:DocumentResponse></xds:RetrieveDocumentSetResponse>')
    parts = mtom.MtomParts(root=b"", attachments={"p1@x": mtom.Attachment("p1@x", b"\x00DICM")})
    documents = retrieve.retrieved_documents(response, parts)
    assert [(d.unique_id, d.data) for d in documents] == [("9.1", b"\x00DICM"), ("9.2", b"abc")]
    with pytest.raises(DmpUnavailable):
        retrieve.retrieved_documents(response, None)


def test_patient_existence_query_and_answer():
    query = patients.existence_query("279035121518989", "1.2.250.1.213.1.4.10", sender_root="1.2.3",
                                     sender_name="DRIMbox", now=NOW)
    v3 = {"v3": xds_ids.HL7V3}
    assert query.find("v3:controlActProcess/v3:reasonCode", v3).get("code") == "TEST_EXST"
    value = query.find(".//v3:patientIdentifier/v3:value", v3)
    assert (value.get("root"), value.get("extension")) == ("1.2.250.1.213.1.4.10", "279035121518989")
    answer = etree.fromstring(
        f'<PRPA_IN201308UV02 xmlns="{xds_ids.HL7V3}"><acknowledgement><typeCode code="AA"/></acknowledgement>'
        '<controlActProcess><subject><registrationEvent><subject1><patient><statusCode code="active"/></patient>'
        '</subject1></registrationEvent></subject><queryAck><queryResponseCode code="OK"/></queryAck>'
        '</controlActProcess></PRPA_IN201308UV02>')
    assert patients.read_existence_answer(answer) == patients.PatientCheck(True, "AA", "OK", "active", "")
    missing = etree.fromstring(
        f'<PRPA_IN201308UV02 xmlns="{xds_ids.HL7V3}"><acknowledgement><typeCode code="AA"/></acknowledgement>'
        '<controlActProcess><queryAck><queryResponseCode code="NF"/></queryAck></controlActProcess>'
        '</PRPA_IN201308UV02>')
    assert patients.read_existence_answer(missing).exists is False


def test_settings_are_validated():
    from drimbox.config import load_settings
    from drimbox.config.fields import SettingsError
    assert load_settings({"DRIMbox": {"Dmp": {"AuthMode": "INDIRECTE"}}}).dmp.auth_mode == "INDIRECTE"
    with pytest.raises(SettingsError, match="AuthMode"):
        load_settings({"DRIMbox": {"Dmp": {"AuthMode": "MAGIC"}}})
    with pytest.raises(SettingsError, match="BaseUrl"):
        load_settings({"DRIMbox": {"Dmp": {"BaseUrl": "dmp.example"}}})
