from __future__ import annotations

import pytest

from dmp_sim_fixtures import APPROVED, PATIENT, STRUCTURE, SUCCESS, build_lot

pytestmark = pytest.mark.integration


def test_valid_lot_is_accepted_and_listed(client):
    lot = build_lot()
    answer = client.submit(lot)
    assert answer.status == 200, answer.fault_reason()
    assert answer.response_status() == SUCCESS, answer.errors()
    docs = {d["uniqueId"]: d for d in client.documents()}
    kos = docs[lot.kos_uid]
    assert kos["status"] == APPROVED
    assert kos["patientId"] == PATIENT
    assert kos["typeCode"] == "IMG-KOS^^1.2.250.1.213.1.1.4.12"
    assert kos["authorStructure"] == STRUCTURE
    assert kos["entryUUID"].startswith("urn:uuid:")
    assert kos["size"] == len(lot.documents["DocumentKOS"])
    assert "1.2.3.4.5.6.7.8^^^^urn:ihe:iti:xds:2016:studyInstanceUID" in kos["referenceIds"]
    assert docs[lot.signature_uid]["kind"] == "SIGNATURE"
