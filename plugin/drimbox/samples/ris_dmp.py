"""What a RIS does beside the box, for demos and tests: register the CR-IMG report itself in the DMP.

The CR document (classCode ``10``, typeCode LOINC ``18748-4``) shares the KOS's referenceIdList values
(accession, order, study UID); it is a separate ITI-41 lot, signed (IHE DSG) like the box's. Built here from the
box's own lot builder with the CR's codes, because only the demo and the tests need it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from drimbox.consumer.report import REPORT_TYPE
from drimbox.dmp import dsg, hl7dt, metadata, soap, transactions, xds_ids
from drimbox.dmp.client import Actor, DmpClient
from drimbox.dmp.kosfacts import KosFacts
from drimbox.dmp.lot import PreparedLot
from drimbox.dmp.uids import new_urn_uuid, uid_under
from drimbox.reports.cda import parse_cda
from drimbox.reports.model import Code

CR_CLASS = Code("10", xds_ids.SYSTEM_CLASS_CODE, "Compte rendu")
CR_TYPE = REPORT_TYPE
CR_FORMAT = Code("urn:asip:ci-sis:cr-img:2013", "1.2.250.1.213.1.1.4.2.282", "CR d'imagerie médicale")
_REPLACED = {xds_ids.DE_CLASS_CODE: CR_CLASS, xds_ids.DE_TYPE_CODE: CR_TYPE, xds_ids.DE_FORMAT_CODE: CR_FORMAT}


@dataclass(frozen=True)
class _CrLot(PreparedLot):
    @property
    def documents(self) -> tuple[tuple[str, str, bytes], ...]:
        return ((self.ids.kos_entry_id, "text/xml", self.kos),
                (self.ids.signature_entry_id, "text/xml", self.signature))


def register_report(client: DmpClient, cda: bytes, *, now: dt.datetime | None = None) -> str:
    """Register ``cda`` (a CR-IMG) in the DMP as its RIS would; returns the DocumentEntry's uniqueId."""
    report = parse_cda(cda)
    now = now or dt.datetime.now(dt.timezone.utc)
    unique_id = report.report_id.split("^", 1)[0]
    ids = metadata.LotIds(
        submission_set_id=new_urn_uuid(), submission_set_unique_id=uid_under(client.identity.oid_root, "5"),
        kos_entry_id=new_urn_uuid(), kos_unique_id=unique_id, signature_entry_id=new_urn_uuid(),
        signature_unique_id=uid_under(client.identity.oid_root, "6"))
    signature = dsg.build_dsg([dsg.SignedDocument(unique_id, cda)], key=client.signing.key,
                              cert=client.signing.cert, chain=client.signing.chain, signing_time=now,
                              signature_id=f"sig-{ids.signature_entry_id.rsplit(':', 1)[-1]}")
    facts = KosFacts(unique_id, tuple(report.study_uids), created=now)
    request = metadata.submit_objects_request(
        ids=ids, kos=cda, kos_facts=facts, signature=signature, report=report, flags={}, settings=client.settings,
        identity=client.identity, now=now, new_uuid=new_urn_uuid)
    entry = next(e for e in request.iter(f"{{{metadata.RIM}}}ExtrinsicObject") if e.get("id") == ids.kos_entry_id)
    entry.set("mimeType", "text/xml")
    builder = metadata._Builder(new_urn_uuid)
    for classification in list(entry.iter(f"{{{metadata.RIM}}}Classification")):
        scheme = classification.get("classificationScheme", "")
        if scheme in _REPLACED:
            classification.getparent().replace(classification, builder.coded(scheme, ids.kos_entry_id,
                                                                              _REPLACED[scheme]))
    for name in entry.iter(f"{{{metadata.RIM}}}Name"):
        for value in name.iter(f"{{{metadata.RIM}}}LocalizedString"):
            value.set("value", "CR d'imagerie médicale")
        break
    lot = _CrLot(ids=ids, submit_objects=request, kos=cda, signature=signature, kos_facts=facts)
    security = client._vihf(Actor.for_report(report), hl7dt.patient_cx_of(report.patient), now)
    answer = client._send(transactions.provide_and_register(client.settings.base_url, lot, security))
    soap.check_registry_status(answer.payload)
    return unique_id
