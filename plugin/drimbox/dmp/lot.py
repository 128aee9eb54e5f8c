"""One DMP lot put together: ids, DSG signature document, metadata, and the ITI-41 request body."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from drimbox.config.sections import IdentitySettings
from drimbox.dmp import dsg, metadata, mtom, xds_ids
from drimbox.dmp.kosfacts import KosFacts, read_kos_facts
from drimbox.dmp.settings import DmpSettings
from drimbox.dmp.signing import SigningMaterial
from drimbox.dmp.uids import new_urn_uuid, uid_under
from drimbox.reports.model import Report

SUBMISSION_SET_ARC = "5"
SIGNATURE_ARC = "6"


@dataclass(frozen=True)
class PreparedLot:
    ids: metadata.LotIds
    submit_objects: etree._Element  # lcm:SubmitObjectsRequest
    kos: bytes
    signature: bytes
    kos_facts: KosFacts

    @property
    def documents(self) -> tuple[tuple[str, str, bytes], ...]:
        """``(entry id, mime type, bytes)`` of each document, in request order."""
        return (
            (self.ids.kos_entry_id, "application/dicom", self.kos),
            (self.ids.signature_entry_id, "text/xml", self.signature),
        )

    def provide_and_register(self, *, inline: bool = False) -> tuple[etree._Element, list[mtom.Attachment]]:
        """``xds:ProvideAndRegisterDocumentSetRequest`` and its MTOM attachments.

        With ``inline`` the documents are base64 text inside xds:Document (no attachments): the form the
        XDS schema validates, and a readable rendering.
        """
        request = etree.Element(f"{{{xds_ids.XDS}}}ProvideAndRegisterDocumentSetRequest",
                                nsmap={"xds": xds_ids.XDS, "xop": xds_ids.XOP})
        request.append(self.submit_objects)
        attachments: list[mtom.Attachment] = []
        for entry_id, mime_type, data in self.documents:
            document = etree.SubElement(request, f"{{{xds_ids.XDS}}}Document", id=entry_id)
            if inline:
                document.text = base64.b64encode(data).decode("ascii")
            else:
                part = mtom.Attachment(content_id=mtom.new_content_id(), data=data, content_type=mime_type)
                etree.SubElement(document, f"{{{xds_ids.XOP}}}Include", href=mtom.cid_href(part.content_id))
                attachments.append(part)
        return request, attachments


def build_lot(
    kos: bytes,
    report: Report,
    flags: Mapping[str, bool],
    settings: DmpSettings,
    identity: IdentitySettings,
    *,
    signing: SigningMaterial,
    now: datetime,
    replaces_entry_uuid: str | None = None,
    new_uid: Callable[[str], str] | None = None,
    new_uuid: Callable[[], str] = new_urn_uuid,
) -> PreparedLot:
    """Everything of an ITI-41 lot except transport. ``new_uid(arc)`` makes OIDs (default: under the box root)."""
    make_uid = new_uid or (lambda arc: uid_under(identity.oid_root, arc))
    facts = read_kos_facts(kos)
    ids = metadata.LotIds(
        submission_set_id=new_uuid(),
        submission_set_unique_id=make_uid(SUBMISSION_SET_ARC),
        kos_entry_id=new_uuid(),
        kos_unique_id=facts.sop_instance_uid,
        signature_entry_id=new_uuid(),
        signature_unique_id=make_uid(SIGNATURE_ARC),
    )
    signature = dsg.build_dsg(
        [dsg.SignedDocument(ids.kos_unique_id, kos)],
        key=signing.key, cert=signing.cert, chain=signing.chain,
        signing_time=now, signature_id=f"sig-{ids.signature_entry_id.rsplit(':', 1)[-1]}",
    )
    request = metadata.submit_objects_request(
        ids=ids, kos=kos, kos_facts=facts, signature=signature, report=report, flags=flags,
        settings=settings, identity=identity, now=now, new_uuid=new_uuid,
        replaces_entry_uuid=replaces_entry_uuid,
    )
    return PreparedLot(ids=ids, submit_objects=request, kos=kos, signature=signature, kos_facts=facts)
