"""DmpClient against the real DMP simulator, over TLS with client certificates."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from dmp_client_helpers import box_settings
from dmp_testdata import make_kos, make_report

from drimbox.config.sections import IdentitySettings
from drimbox.dmp import xds_ids
from drimbox.dmp.client import Actor, DmpClient
from drimbox.dmp.errors import DmpRejected, DmpUnavailable

pytestmark = pytest.mark.integration

INS, INS_OID = "279035121518989", "1.2.250.1.213.1.4.10"
PATIENT = f"{INS}^^^&{INS_OID}&ISO^NH"


@pytest.fixture
def report(pki):
    base = make_report()
    structure = pki["boxes"]["box-a"]["structure_id"]
    return dataclasses.replace(base, organization=dataclasses.replace(base.organization, id=structure))


@pytest.fixture
def actor(report):
    return Actor.for_report(report)


def test_publish_find_retrieve_replace_delete(client, report, actor):
    kos = make_kos("1.2.826.0.1.3680043.8.498.77.1.100")
    published = client.publish(kos, report, {"MASQUE_PS": True})
    assert published.unique_id == "1.2.826.0.1.3680043.8.498.77.1.100"
    assert client.find_entry_uuid(published.unique_id, actor=actor, patient_cx=PATIENT) == published.entry_uuid

    found = client.find_documents(PATIENT, actor=actor)
    assert [d.entry_uuid for d in found] == [published.entry_uuid]
    assert "MASQUE_PS" in [c.code for c in found[0].confidentiality]
    assert client.retrieve(found[0].repository_id, published.unique_id, actor=actor, patient_cx=PATIENT) == kos

    by_study = client.find_documents(PATIENT, actor=actor, reference_ids=[
        f"{report.studies[0].study_uid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID"])
    assert [d.unique_id for d in by_study] == [published.unique_id]

    new_kos = make_kos("1.2.826.0.1.3680043.8.498.77.1.101")
    replaced = client.publish(new_kos, report, {}, replaces_entry_uuid=published.entry_uuid)
    approved = client.find_documents(PATIENT, actor=actor)
    assert [d.entry_uuid for d in approved] == [replaced.entry_uuid]
    deprecated = client.find_documents(PATIENT, actor=actor, statuses=[xds_ids.STATUS_DEPRECATED])
    assert [d.entry_uuid for d in deprecated] == [published.entry_uuid]

    client.delete(replaced.entry_uuid, report)
    assert client.find_documents(PATIENT, actor=actor) == []
    deleted = client.find_documents(PATIENT, actor=actor, statuses=[xds_ids.STATUS_DELETED_DMP])
    assert [d.entry_uuid for d in deleted] == [replaced.entry_uuid]


def test_patient_existence(client, actor):
    check = client.check_patient(INS, INS_OID, actor=actor)
    assert check.exists and check.query_response == "OK"


def test_rejected_lot_is_not_retryable(client, report):
    client.publish(make_kos("1.2.826.0.1.3680043.8.498.77.1.200"), report, {})
    different_bytes_same_uid = make_kos("1.2.826.0.1.3680043.8.498.77.1.200", studies=("1.2.3.4",))
    with pytest.raises(DmpRejected) as caught:
        client.publish(different_bytes_same_uid, report, {})
    assert caught.value.errors and not caught.value.retryable


def test_foreign_structure_cannot_replace_or_delete(simulator, pki, client, report):
    published = client.publish(make_kos("1.2.826.0.1.3680043.8.498.77.1.300"), report, {})
    other_structure = pki["boxes"]["box-b"]["structure_id"]
    other_report = dataclasses.replace(report, organization=dataclasses.replace(report.organization,
                                                                                id=other_structure))
    other = DmpClient(box_settings(pki, simulator.url, "box-b"), IdentitySettings())
    try:
        with pytest.raises(DmpRejected):
            other.delete(published.entry_uuid, other_report)
    finally:
        other.close()


@pytest.mark.parametrize("mode", ["http500", "soap_fault", "drop"])
def test_outages_are_retryable(simulator, client, report, mode):
    simulator.faults.configure(mode, count=1)
    with pytest.raises(DmpUnavailable) as caught:
        client.publish(make_kos("1.2.826.0.1.3680043.8.498.77.1.400"), report, {})
    assert caught.value.retryable
    # the next attempt goes through
    assert client.publish(make_kos("1.2.826.0.1.3680043.8.498.77.1.400"), report, {}).entry_uuid


def test_timeout_is_retryable(simulator, pki, report):
    simulator.faults.configure("slow", delay_seconds=2.0, count=1)
    impatient = DmpClient(box_settings(pki, simulator.url, timeout_seconds=0.5), IdentitySettings())
    try:
        with pytest.raises(DmpUnavailable, match="timeout"):
            impatient.publish(make_kos("1.2.826.0.1.3680043.8.498.77.1.500"), report, {})
    finally:
        impatient.close()


def test_threads_share_one_client_quickly(client, report):
    count, threads = 40, 4
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(offset, count, threads):
                client.publish(make_kos(f"1.2.826.0.1.3680043.8.498.77.2.{n + 1}"), report, {})
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    assert errors == []
    print(f"{count / elapsed:.1f} lots/s")
    assert count / elapsed >= 10, f"{count / elapsed:.1f} lots/s"
