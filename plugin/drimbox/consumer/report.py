"""The exam's report: the DMP's CR-IMG document sharing the KOS's study UIDs, and the PDF its CDA carries.

The CR (classCode ``10``, typeCode LOINC ``18748-4``) and the KOS are separate DMP documents linked only by
their referenceIdList values (spec-facts section 5): the report is found with ITI-18
FindDocumentsByReferenceId on the exam's study UIDs, then fetched with ITI-43.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from lxml import etree

from drimbox.consumer.history import ExamRow
from drimbox.dmp import hl7dt, xds_ids
from drimbox.dmp.queries import DocumentEntrySummary
from drimbox.reports.model import Code

REPORT_TYPE = Code("18748-4", "2.16.840.1.113883.6.1", "CR d'imagerie médicale")
_HL7 = "urn:hl7-org:v3"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def reference_ids(exam: ExamRow) -> list[str]:
    """The referenceIdList values (CXi) the exam's report shares with its KOS: one per study UID."""
    return [hl7dt.reference_id(uid, "", xds_ids.REF_STUDY_UID) for uid in exam.study_uids]


def newest(entries: Iterable[DocumentEntrySummary]) -> DocumentEntrySummary | None:
    """The most recent CR among ``entries`` (a replaced report is no longer Approved)."""
    reports = [e for e in entries if e.type_code and (e.type_code.code, e.type_code.system)
               == (REPORT_TYPE.code, REPORT_TYPE.system)]
    return max(reports, key=lambda e: (e.creation_time or "", e.unique_id), default=None)


def pdf_of(cda: bytes) -> bytes:
    """The PDF in the CDA's ``nonXMLBody``; ValueError when there is none."""
    try:
        root = etree.fromstring(cda, _PARSER)
    except etree.XMLSyntaxError as error:
        raise ValueError(f"the report is not readable XML: {error}") from None
    for text in root.iter(f"{{{_HL7}}}text"):
        parent = text.getparent()
        if parent is None or etree.QName(parent).localname != "nonXMLBody":
            continue
        if text.get("mediaType", "").lower() != "application/pdf" or text.get("representation", "") != "B64":
            continue
        try:
            data = base64.b64decode("".join(text.itertext()), validate=False)
        except (binascii.Error, ValueError):
            raise ValueError("the report's PDF is not valid base64") from None
        if data.startswith(b"%PDF"):
            return data
    raise ValueError("the report carries no PDF")
