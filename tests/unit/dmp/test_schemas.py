"""The rendered messages validate against the OASIS ebRS 3.0 and IHE XDS.b schemas."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest
from dmp_testdata import NOW
from lxml import etree

import drimbox.dmp
from drimbox.dmp import metadata, queries, retrieve, xds_ids
from drimbox.dmp.lot import build_lot
from drimbox.dmp.render import render_envelope
from drimbox.dmp.uids import new_urn_uuid

SCHEMAS = Path(drimbox.dmp.__file__).parent / "schemas"


@lru_cache
def schema(relative: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / relative)))


def assert_valid(element: etree._Element, relative: str) -> None:
    validator = schema(relative)
    document = etree.fromstring(etree.tostring(element))
    assert validator.validate(document), validator.error_log


@pytest.mark.parametrize("replaces", [None, "urn:uuid:11111111-2222-4333-8444-555555555555"])
def test_rendered_lot_validates(kos, report, settings, identity, signing, replaces):
    lot = build_lot(kos, report, {"MASQUE_PS": True}, settings, identity, signing=signing, now=NOW,
                    replaces_entry_uuid=replaces)
    envelope = render_envelope(lot, report, settings, signing, NOW)
    body = envelope.find(f"{{{xds_ids.SOAP12}}}Body")[0]
    assert body.tag == f"{{{xds_ids.XDS}}}ProvideAndRegisterDocumentSetRequest"
    assert_valid(body, "IHE/IHEXDSB.xsd")


def test_the_mtom_form_differs_only_by_xop(kos, report, settings, identity, signing):
    lot = build_lot(kos, report, {}, settings, identity, signing=signing, now=NOW)
    request, attachments = lot.provide_and_register()
    assert [a.data for a in attachments] == [lot.kos, lot.signature]
    includes = request.findall(f"{{{xds_ids.XDS}}}Document/{{{xds_ids.XOP}}}Include")
    assert [i.get("href") for i in includes] == [f"cid:{a.content_id}" for a in attachments]


def test_deletion_validates(report, settings, identity):
    request = metadata.availability_update_request(
        entry_uuid="urn:uuid:11111111-2222-4333-8444-555555555555", report=report, settings=settings,
        identity=identity, submission_set_id=new_urn_uuid(), submission_set_unique_id="1.2.3", now=NOW,
        new_uuid=new_urn_uuid)
    assert_valid(request, "ebRS30/lcm.xsd")
    association = request.find(f".//{{{xds_ids.RIM}}}Association")
    assert association.get("associationType") == "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
    slots = {s.get("name"): s.findtext(f".//{{{xds_ids.RIM}}}Value") for s in association}
    assert slots == {"OriginalStatus": "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
                     "NewStatus": "urn:asip:ci-sis:2010:StatusType:Deleted"}


def test_queries_and_retrieve_validate():
    from drimbox.reports.model import Code
    patient = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
    assert_valid(queries.find_documents(patient, type_codes=[Code("IMG-KOS", "1.2.250.1.213.1.1.4.12")],
                                        event_codes=[Code("CT", "1.2.250.1.213.1.1.5.618")],
                                        creation_from="20240101"), "ebRS30/query.xsd")
    assert_valid(queries.find_documents_by_reference_id(patient, ["1.2.3^^^^urn:ihe:iti:xds:2016:studyInstanceUID"]),
                 "ebRS30/query.xsd")
    assert_valid(queries.get_documents(["1.2.3"]), "ebRS30/query.xsd")
    assert_valid(retrieve.retrieve_request("1.2.250.1.213.4.1.1.999.1", ["1.2.3"]), "IHE/IHEXDSB.xsd")
