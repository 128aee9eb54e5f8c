"""Replacement (RPLC), deletion (ITI-57), stored queries (ITI-18), retrieval (ITI-43) and persistence."""

from __future__ import annotations

import hashlib

import pytest
from lxml import etree

from drimbox.sim.dmp import DmpSimulator

from dmp_sim_fixtures import (
    APPROVED, DELETED, DEPRECATED, FAILURE, OTHER_STRUCTURE, PATIENT, QUERY, RIM, SUCCESS, XDSB, DmpTestClient,
    build_lot, build_vihf, q, vihf_attributes,
)

pytestmark = pytest.mark.integration
FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
BY_REF = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"
GET = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"


def _entry_uuid(client, unique_id):
    return next(d["entryUUID"] for d in client.documents() if d["uniqueId"] == unique_id)


def _status(client, unique_id):
    return next(d["status"] for d in client.documents() if d["uniqueId"] == unique_id)


def _submit_ok(client, lot):
    answer = client.submit(lot)
    assert answer.response_status() == SUCCESS, answer.errors() or answer.fault_reason()
    return lot


def test_replacement_deprecates_the_old_entry(client):
    old = _submit_ok(client, build_lot())
    old_uuid = _entry_uuid(client, old.kos_uid)
    new = _submit_ok(client, build_lot(replaces=old_uuid))
    assert _status(client, old.kos_uid) == DEPRECATED
    assert _status(client, new.kos_uid) == APPROVED
    assert next(d for d in client.documents() if d["uniqueId"] == new.kos_uid)["replaces"] == old_uuid

    again = client.submit(build_lot(replaces=old_uuid))
    assert "XDSRegistryDeprecatedDocumentError" in again.error_codes()
    unknown = client.submit(build_lot(replaces="urn:uuid:00000000-0000-0000-0000-000000000000"))
    assert "UnresolvedReferenceException" in unknown.error_codes()


def test_replacement_by_another_structure_refused(client, pki):
    old = _submit_ok(client, build_lot())
    lot = build_lot(structure=OTHER_STRUCTURE, replaces=_entry_uuid(client, old.kos_uid))
    vihf = build_vihf(pki.other_signer, attributes=vihf_attributes(structure=OTHER_STRUCTURE))
    answer = client.submit(lot, vihf=vihf)
    assert answer.response_status() == FAILURE
    assert any(e["errorCode"] == "XDSRegistryError" and "author structure" in e["codeContext"]
               for e in answer.errors())
    assert _status(client, old.kos_uid) == APPROVED


def test_deletion_by_author_and_refusal_for_another_structure(client, pki):
    lot = _submit_ok(client, build_lot())
    entry = _entry_uuid(client, lot.kos_uid)
    other_vihf = build_vihf(pki.other_signer, attributes=vihf_attributes(structure=OTHER_STRUCTURE))
    refused = client.update_status(entry, structure=OTHER_STRUCTURE, vihf=other_vihf)
    assert refused.response_status() == FAILURE
    assert any(e["errorCode"] == "XDSMetadataUpdateError" and "author structure" in e["codeContext"]
               for e in refused.errors()), refused.errors()
    assert _status(client, lot.kos_uid) == APPROVED

    deleted = client.update_status(entry)
    assert deleted.response_status() == SUCCESS, deleted.errors()
    assert _status(client, lot.kos_uid) == DELETED
    twice = client.update_status(entry)
    assert "XDSMetadataUpdateError" in twice.error_codes()
    gone = client.retrieve([lot.kos_uid])
    assert "XDSDocumentUniqueIdError" in gone.error_codes()


def _leaf_unique_ids(answer):
    assert answer.response_status() == SUCCESS, answer.errors()
    return {ei.get("value") for ei in answer.payload.iter(q(RIM, "ExternalIdentifier"))
            if ei.get("identificationScheme") == "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"}


def test_find_documents_filters(client):
    first = _submit_ok(client, build_lot(study_uid="1.2.3.1"))
    second = _submit_ok(client, build_lot(study_uid="1.2.3.2"))
    patient = [f"'{PATIENT}'"]
    approved = [f"('{APPROVED}')"]
    everything = _leaf_unique_ids(client.query(FIND, {"$XDSDocumentEntryPatientId": patient,
                                                      "$XDSDocumentEntryStatus": approved}))
    assert everything == {first.kos_uid, first.signature_uid, second.kos_uid, second.signature_uid}
    kos_only = _leaf_unique_ids(client.query(FIND, {
        "$XDSDocumentEntryPatientId": patient, "$XDSDocumentEntryStatus": approved,
        "$XDSDocumentEntryTypeCode": ["('IMG-KOS^^1.2.250.1.213.1.1.4.12')"],
        "$XDSDocumentEntryClassCode": ["('31^^1.2.250.1.213.1.1.4.1')"],
        "$XDSDocumentEntryEventCodeList": ["('CT^^1.2.250.1.213.1.1.5.618')"],
        "$XDSDocumentEntryCreationTimeFrom": ["20000101"], "$XDSDocumentEntryCreationTimeTo": ["29990101"]}))
    assert kos_only == {first.kos_uid, second.kos_uid}
    no_mr = _leaf_unique_ids(client.query(FIND, {
        "$XDSDocumentEntryPatientId": patient, "$XDSDocumentEntryStatus": approved,
        "$XDSDocumentEntryEventCodeList": ["('MR^^1.2.250.1.213.1.1.5.618')"]}))
    assert no_mr == set()
    too_old = _leaf_unique_ids(client.query(FIND, {
        "$XDSDocumentEntryPatientId": patient, "$XDSDocumentEntryStatus": approved,
        "$XDSDocumentEntryCreationTimeTo": ["20000101"]}))
    assert too_old == set()
    other_patient = _leaf_unique_ids(client.query(FIND, {
        "$XDSDocumentEntryPatientId": ["'111111111111111^^^&1.2.250.1.213.1.4.10&ISO^NH'"],
        "$XDSDocumentEntryStatus": approved}))
    assert other_patient == set()
    client.update_status(_entry_uuid(client, first.kos_uid))
    after_delete = _leaf_unique_ids(client.query(FIND, {
        "$XDSDocumentEntryPatientId": patient, "$XDSDocumentEntryStatus": approved,
        "$XDSDocumentEntryTypeCode": ["('IMG-KOS^^1.2.250.1.213.1.1.4.12')"]}))
    assert after_delete == {second.kos_uid}


def test_leaf_class_carries_status_and_repository(client):
    lot = _submit_ok(client, build_lot())
    answer = client.query(GET, {"$XDSDocumentEntryUniqueId": [f"('{lot.kos_uid}')"]})
    objects = answer.payload.findall(f"{q(RIM, 'RegistryObjectList')}/{q(RIM, 'ExtrinsicObject')}")
    assert len(objects) == 1
    eo = objects[0]
    assert eo.get("status") == APPROVED
    assert eo.get("id") == _entry_uuid(client, lot.kos_uid)
    slots = {s.get("name"): s.findtext(f"{q(RIM, 'ValueList')}/{q(RIM, 'Value')}") for s in eo.iter(q(RIM, "Slot"))}
    assert slots["repositoryUniqueId"] == "1.2.250.1.213.4.1.1.999.1"
    assert all(cl.get("classifiedObject") == eo.get("id") for cl in eo.iter(q(RIM, "Classification")))


def test_find_by_reference_id_and_get_documents_object_ref(client):
    lot = _submit_ok(client, build_lot(study_uid="1.2.3.99"))
    _submit_ok(client, build_lot(study_uid="1.2.3.100"))
    found = _leaf_unique_ids(client.query(BY_REF, {
        "$XDSDocumentEntryPatientId": [f"'{PATIENT}'"],
        "$XDSDocumentEntryStatus": [f"('{APPROVED}')"],
        "$XDSDocumentEntryReferenceIdList": ["('1.2.3.99^^^^urn:ihe:iti:xds:2016:studyInstanceUID')"]}))
    assert found == {lot.kos_uid}
    entry = _entry_uuid(client, lot.kos_uid)
    refs = client.query(GET, {"$XDSDocumentEntryEntryUUID": [f"('{entry}')"]}, return_type="ObjectRef")
    assert [r.get("id") for r in refs.payload.iter(q(RIM, "ObjectRef"))] == [entry]


def test_query_errors(client):
    missing = client.query(FIND, {"$XDSDocumentEntryStatus": [f"('{APPROVED}')"]})
    assert missing.error_codes() == ["XDSStoredQueryMissingParam"]
    assert etree.QName(missing.payload).namespace == QUERY
    unknown = client.query("urn:uuid:00000000-0000-0000-0000-000000000001", {})
    assert unknown.error_codes() == ["XDSUnknownStoredQuery"]
    both = client.query(GET, {"$XDSDocumentEntryEntryUUID": ["('urn:uuid:x')"],
                              "$XDSDocumentEntryUniqueId": ["('1.2')"]})
    assert both.error_codes() == ["XDSStoredQueryParamNumber"]


def test_retrieve_answers_mtom_with_exact_bytes(client):
    lot = _submit_ok(client, build_lot())
    answer = client.retrieve([lot.kos_uid, "1.2.3.404"])
    assert answer.content_type.startswith("multipart/related")
    assert 'type="application/xop+xml"' in answer.content_type
    status = answer.payload.find("{urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0}RegistryResponse").get("status")
    assert status == "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
    assert answer.error_codes() == ["XDSDocumentUniqueIdError"]
    responses = answer.payload.findall(q(XDSB, "DocumentResponse"))
    assert len(responses) == 1
    assert responses[0].findtext(q(XDSB, "mimeType")) == "application/dicom"
    href = responses[0].find(f"{q(XDSB, 'Document')}/{{http://www.w3.org/2004/08/xop/include}}Include").get("href")
    data = answer.parts[href[4:]]
    assert hashlib.sha1(data).hexdigest() == hashlib.sha1(lot.documents["DocumentKOS"]).hexdigest()
    wrong_repo = client.retrieve([lot.kos_uid], repository="1.2.3")
    assert wrong_repo.error_codes() == ["XDSUnknownRepositoryId"]


def test_state_persists_across_restart(tmp_path, signing_ca_file, pki):
    data_dir = str(tmp_path / "persist")
    with DmpSimulator(data_dir, signing_ca=signing_ca_file) as sim:
        client = DmpTestClient(sim.url, pki.signer)
        old = _submit_ok(client, build_lot())
        old_uuid = _entry_uuid(client, old.kos_uid)
    with DmpSimulator(data_dir, signing_ca=signing_ca_file) as sim:
        client = DmpTestClient(sim.url, pki.signer)
        assert _status(client, old.kos_uid) == APPROVED
        _submit_ok(client, build_lot(replaces=old_uuid))
        assert _status(client, old.kos_uid) == DEPRECATED
        again = client.submit(build_lot(kos_uid=old.kos_uid))
        assert "XDSDuplicateUniqueIdInRegistry" in again.error_codes()
