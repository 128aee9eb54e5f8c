from __future__ import annotations

import hashlib
import itertools

import pytest
from dmp_testdata import KOS_UID, NOW, STUDY_UID, make_kos, make_report

from drimbox.dmp import xds_ids
from drimbox.dmp.errors import MetadataError
from drimbox.dmp.lot import build_lot
from drimbox.reports.model import Code, Organization

NS = {"rim": xds_ids.RIM, "lcm": xds_ids.LCM}


def lot_for(kos, report, settings, identity, signing, flags=None, **kwargs):
    counter = itertools.count(1)
    return build_lot(kos, report, flags or {}, settings, identity, signing=signing, now=NOW,
                     new_uuid=lambda: f"urn:uuid:00000000-0000-4000-8000-{next(counter):012d}",
                     new_uid=lambda arc: f"1.2.3.{arc}.99", **kwargs)


def slot(element, name):
    return [v.text for v in element.xpath(f"rim:Slot[@name='{name}']/rim:ValueList/rim:Value", namespaces=NS)]


def codes(element, scheme):
    return [(c.get("nodeRepresentation"), slot(c, "codingScheme")[0],
             c.find("rim:Name/rim:LocalizedString", NS).get("value"))
            for c in element.xpath(f"rim:Classification[@classificationScheme='{scheme}']", namespaces=NS)]


def external(element, scheme):
    found = element.xpath(f"rim:ExternalIdentifier[@identificationScheme='{scheme}']", namespaces=NS)
    assert len(found) == 1
    assert found[0].get("registryObject") == element.get("id")
    return found[0].get("value"), found[0].find("rim:Name/rim:LocalizedString", NS).get("value")


@pytest.fixture
def lot(kos, report, settings, identity, signing):
    return lot_for(kos, report, settings, identity, signing)


def entry(lot, entry_id):
    return lot.submit_objects.xpath(f"rim:RegistryObjectList/rim:ExtrinsicObject[@id='{entry_id}']", namespaces=NS)[0]


def test_kos_entry_slots(lot, kos):
    kos_entry = entry(lot, lot.ids.kos_entry_id)
    assert kos_entry.get("mimeType") == "application/dicom"
    assert kos_entry.get("objectType") == "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
    assert slot(kos_entry, "creationTime") == ["20240305102000"]  # 11:20 at +01:00, in UTC
    assert slot(kos_entry, "hash") == [hashlib.sha1(kos).hexdigest()]
    assert slot(kos_entry, "size") == [str(len(kos))]
    assert slot(kos_entry, "languageCode") == ["fr-FR"]
    assert slot(kos_entry, "legalAuthenticator") == ["801234567890^RADIO^Jean^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"]
    assert slot(kos_entry, "serviceStartTime") == ["20210108091700"]
    assert slot(kos_entry, "serviceStopTime") == ["20210108101700"]
    assert slot(kos_entry, "sourcePatientId") == ["279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"]
    assert slot(kos_entry, "sourcePatientInfo") == ["PID-5|PAT-TROIS^DOMINIQUE^^^^^L", "PID-7|19790328", "PID-8|F"]
    assert slot(kos_entry, "urn:ihe:iti:xds:2013:referenceIdList") == [
        "ACC-1^^^&1.2.3.4.5.6&ISO^urn:ihe:iti:xds:2013:accession",
        "ORD-1^^^&1.2.3.4.5.7&ISO^urn:ihe:iti:xds:2013:order",
        f"{STUDY_UID}^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
    ]


def test_kos_entry_classifications(lot):
    kos_entry = entry(lot, lot.ids.kos_entry_id)
    assert codes(kos_entry, "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a") == [
        ("31", "1.2.250.1.213.1.1.4.1", "Imagerie médicale")]
    assert [c[:2] for c in codes(kos_entry, "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983")] == [
        ("IMG-KOS", "1.2.250.1.213.1.1.4.12")]
    assert [c[:2] for c in codes(kos_entry, "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d")] == [
        ("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1")]
    assert [c[:2] for c in codes(kos_entry, "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f")] == [
        ("N", "2.16.840.1.113883.5.25")]
    assert codes(kos_entry, "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1") == [
        ("SA08", "1.2.250.1.71.4.2.4", "Cabinet de groupe")]
    assert [c[:2] for c in codes(kos_entry, "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead")] == [
        ("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9")]
    assert [c[:2] for c in codes(kos_entry, "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4")] == [
        ("CT", "1.2.250.1.213.1.1.5.618"), ("MR", "1.2.250.1.213.1.1.5.618"),
        ("51185008", "1.2.250.1.213.1.1.5.695")]
    for classification in kos_entry.iterfind("rim:Classification", NS):
        assert classification.get("classifiedObject") == lot.ids.kos_entry_id
        assert classification.get("id").startswith("urn:uuid:")


def test_author_is_device_and_structure(lot):
    author = entry(lot, lot.ids.kos_entry_id).xpath(
        "rim:Classification[@classificationScheme='urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d']", namespaces=NS)
    assert len(author) == 1 and author[0].get("nodeRepresentation") == ""
    assert slot(author[0], "authorPerson") == [
        "DRIMBOX-ORTHANC^DRIMbox for Orthanc^^^^^^^&1.2.826.0.1.3680043.8.498.77&ISO^D^^^RI"]
    assert slot(author[0], "authorInstitution") == [
        "Cabinet de radiologie^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^3123456789012345"]


def test_author_can_be_the_report_author(kos, report, settings, identity, signing):
    from dataclasses import replace
    lot = lot_for(kos, report, replace(settings, author_is_device=False), identity, signing)
    author = entry(lot, lot.ids.kos_entry_id).xpath(
        "rim:Classification[@classificationScheme='urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d']", namespaces=NS)[0]
    assert slot(author, "authorPerson") == ["801234567890^RADIO^Jean^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"]
    assert slot(author, "authorSpecialty") == ["SM44^Radio-diagnostic^1.2.250.1.71.4.2.5"]


def test_external_identifiers(lot):
    kos_entry = entry(lot, lot.ids.kos_entry_id)
    assert external(kos_entry, "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427") == (
        "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH", "XDSDocumentEntry.patientId")
    assert external(kos_entry, "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab") == (
        KOS_UID, "XDSDocumentEntry.uniqueId")
    package = lot.submit_objects.find("rim:RegistryObjectList/rim:RegistryPackage", NS)
    assert external(package, "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8") == (
        "1.2.3.5.99", "XDSSubmissionSet.uniqueId")
    assert external(package, "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832") == (
        "1.2.826.0.1.3680043.8.498.77", "XDSSubmissionSet.sourceId")
    assert external(package, "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446")[0] == (
        "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH")


def test_submission_set(lot):
    package = lot.submit_objects.find("rim:RegistryObjectList/rim:RegistryPackage", NS)
    assert package.get("id") == lot.ids.submission_set_id
    assert slot(package, "submissionTime") == ["20240305102030"]
    assert [c[:2] for c in codes(package, "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500")] == [
        ("04", "1.2.250.1.213.2.2")]
    node = package.xpath("rim:Classification[@classificationNode='urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd']",
                         namespaces=NS)
    assert len(node) == 1 and node[0].get("classifiedObject") == lot.ids.submission_set_id
    author = package.xpath("rim:Classification[@classificationScheme='urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d']",
                           namespaces=NS)
    assert len(author) == 1


def test_signature_entry(lot):
    signature = entry(lot, lot.ids.signature_entry_id)
    assert signature.get("mimeType") == "text/xml"
    assert slot(signature, "hash") == [hashlib.sha1(lot.signature).hexdigest()]
    assert slot(signature, "size") == [str(len(lot.signature))]
    assert slot(signature, "languageCode") == ["art"]
    assert codes(signature, "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a")[0][:2] == (
        "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1", "URN")
    assert codes(signature, "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983")[0][:2] == ("E1762", "ASTM")
    assert codes(signature, "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d")[0][:2] == (
        "http://www.w3.org/2000/09/xmldsig#", "URN")
    assert codes(signature, "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4")[0][:2] == (
        "1.2.840.10065.1.12.1.14", "1.2.840.10065.1.12")
    assert [c[0] for c in codes(signature, "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f")] == [
        "N", "MASQUE_PS", "INVISIBLE_PATIENT"]
    assert external(signature, "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab")[0] == "1.2.3.6.99"


def test_associations(lot):
    associations = lot.submit_objects.findall("rim:RegistryObjectList/rim:Association", NS)
    described = [(a.get("associationType"), a.get("sourceObject"), a.get("targetObject"),
                  slot(a, "SubmissionSetStatus")) for a in associations]
    ids = lot.ids
    assert described == [
        ("urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember", ids.submission_set_id, ids.kos_entry_id,
         ["Original"]),
        ("urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember", ids.submission_set_id, ids.signature_entry_id,
         ["Original"]),
        ("urn:ihe:iti:2007:AssociationType:signs", ids.signature_entry_id, ids.submission_set_id, []),
    ]
    all_ids = [e.get("id") for e in lot.submit_objects.iter() if e.get("id")]
    assert len(all_ids) == len(set(all_ids))


def test_replacement_adds_rplc(kos, report, settings, identity, signing):
    old = "urn:uuid:11111111-2222-4333-8444-555555555555"
    lot = lot_for(kos, report, settings, identity, signing, replaces_entry_uuid=old)
    rplc = lot.submit_objects.xpath(
        "rim:RegistryObjectList/rim:Association[@associationType='urn:ihe:iti:2007:AssociationType:RPLC']",
        namespaces=NS)
    assert len(rplc) == 1
    assert (rplc[0].get("sourceObject"), rplc[0].get("targetObject")) == (lot.ids.kos_entry_id, old)


@pytest.mark.parametrize("flags, expected", [
    ({}, ["N"]),
    ({"MASQUE_PS": True}, ["N", "MASQUE_PS"]),
    ({"INVISIBLE_PATIENT": True, "MASQUE_PS": False}, ["N", "INVISIBLE_PATIENT"]),
    ({"MASQUE_PS": True, "INVISIBLE_PATIENT": True, "INVISIBLE_REP_LEGAUX": True, "DESTDMP": True},
     ["N", "MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"]),
])
def test_confidentiality_from_flags(kos, report, settings, identity, signing, flags, expected):
    lot = lot_for(kos, report, settings, identity, signing, flags=flags)
    found = codes(entry(lot, lot.ids.kos_entry_id), "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f")
    assert [c[0] for c in found] == expected
    assert all(system == ("2.16.840.1.113883.5.25" if code == "N" else "1.2.250.1.213.1.1.4.13")
               for code, system, _ in found)


def test_event_code_systems_are_configurable(kos, report, settings, identity, signing):
    from dataclasses import replace
    lot = lot_for(kos, report, replace(settings, event_code_modality_system="1.2.840.10008.2.16.4",
                                       event_code_region_system=""), identity, signing)
    found = codes(entry(lot, lot.ids.kos_entry_id), "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4")
    assert [c[:2] for c in found] == [("CT", "1.2.840.10008.2.16.4"), ("MR", "1.2.840.10008.2.16.4"),
                                      ("51185008", "2.16.840.1.113883.6.96")]


def test_kos_without_timezone_uses_now(report, settings, identity, signing):
    lot = lot_for(make_kos(offset=""), report, settings, identity, signing)
    assert slot(entry(lot, lot.ids.kos_entry_id), "creationTime") == ["20240305102030"]


def test_missing_facility_type_is_named(kos, settings, identity, signing):
    report = make_report(organization=Organization(id="3123", name="X"))
    with pytest.raises(MetadataError, match="healthcare facility type"):
        lot_for(kos, report, settings, identity, signing)


def test_missing_ins_is_named(kos, settings, identity, signing):
    from drimbox.reports.model import PatientIdentity
    with pytest.raises(MetadataError, match="INS"):
        lot_for(kos, make_report(patient=PatientIdentity(ipp="1")), settings, identity, signing)


def test_not_a_kos_is_refused(report, settings, identity, signing):
    with pytest.raises(MetadataError, match="not readable DICOM|Key Object"):
        lot_for(b"not dicom at all", report, settings, identity, signing)


def test_practice_setting_falls_back_to_sector(kos, settings, identity, signing):
    lot = lot_for(kos, make_report(practice_setting=None), settings, identity, signing)
    found = codes(entry(lot, lot.ids.kos_entry_id), "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead")
    assert found[0][:2] == ("AMBULATOIRE", "1.2.250.1.213.1.1.4.9")


def test_hl7_delimiters_are_escaped(kos, settings, identity, signing):
    report = make_report(organization=Organization(
        id="3123", name="Radio & Co^", facility_type=Code("SA08", "1.2.250.1.71.4.2.4", "Cabinet")))
    lot = lot_for(kos, report, settings, identity, signing)
    author = entry(lot, lot.ids.kos_entry_id).xpath(
        "rim:Classification[@classificationScheme='urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d']", namespaces=NS)[0]
    assert slot(author, "authorInstitution")[0].startswith("Radio \\T\\ Co\\S\\^^^^^&")
