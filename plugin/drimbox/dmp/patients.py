"""HL7v3 PRPA_IN201307UV02 with reasonCode TEST_EXST: does this patient have a DMP?"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from drimbox.dmp import hl7dt, xds_ids

V3 = xds_ids.HL7V3
REASON_SYSTEM = "1.2.250.1.213.1.1.4.11"
DMP_DEVICE_ROOT = "1.2.250.1.213.4.1.1.1"


@dataclass(frozen=True)
class PatientCheck:
    exists: bool
    acknowledgement: str = ""  # AA, AE, AR
    query_response: str = ""  # OK, NF, AE, QE
    status: str = ""  # patient statusCode when returned (active, ...)
    detail: str = ""


def _v3(tag: str) -> str:
    return f"{{{V3}}}{tag}"


def _sub(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, _v3(tag), attributes)


def existence_query(ins: str, ins_oid: str, *, sender_root: str, sender_name: str, now: datetime) -> etree._Element:
    message = etree.Element(_v3("PRPA_IN201307UV02"), ITSVersion="XML_1.0", nsmap={None: V3, "xsi": xds_ids.XSI})
    _sub(message, "id", root=sender_root, extension=str(uuid.uuid4()))
    _sub(message, "creationTime", value=hl7dt.dtm_utc(now))
    _sub(message, "interactionId", root="2.16.840.1.113883.1.6", extension="PRPA_IN201307UV02")
    _sub(message, "processingCode", code="P")
    _sub(message, "processingModeCode", code="T")
    _sub(message, "acceptAckCode", code="AL")
    device = _sub(_sub(message, "receiver", typeCode="RCV"), "device", classCode="DEV", determinerCode="INSTANCE")
    _sub(device, "id", root=DMP_DEVICE_ROOT)
    device = _sub(_sub(message, "sender", typeCode="SND"), "device", classCode="DEV", determinerCode="INSTANCE")
    _sub(device, "id", root=sender_root)
    _sub(device, "softwareName").text = sender_name
    control = _sub(message, "controlActProcess", classCode="CACT", moodCode="EVN")
    _sub(control, "reasonCode", code="TEST_EXST", codeSystem=REASON_SYSTEM, displayName="Test d'existence de dossier")
    query = _sub(control, "queryByParameter")
    _sub(query, "queryId", root=sender_root, extension=str(uuid.uuid4()))
    _sub(query, "statusCode", code="new")
    parameters = _sub(query, "parameterList")
    identifier = _sub(parameters, "patientIdentifier")
    _sub(identifier, "value", root=ins_oid, extension=ins)
    _sub(identifier, "semanticsText").text = "Patient.id"
    return message


def read_existence_answer(answer: etree._Element) -> PatientCheck:
    """Read a PRPA_IN201308UV02: queryResponseCode OK with a patient means the DMP exists."""
    ns = {"v3": V3}
    acknowledgement = answer.find("v3:acknowledgement/v3:typeCode", ns)
    ack = acknowledgement.get("code", "") if acknowledgement is not None else ""
    response_code = answer.find(".//v3:queryAck/v3:queryResponseCode", ns)
    code = response_code.get("code", "") if response_code is not None else ""
    patient = answer.find(".//v3:subject1/v3:patient", ns)
    status_element = patient.find("v3:statusCode", ns) if patient is not None else None
    status = status_element.get("code", "") if status_element is not None else ""
    details = [text.strip() for text in answer.xpath(".//v3:acknowledgementDetail//text()", namespaces=ns)
               if text.strip()]
    exists = ack in ("AA", "CA", "") and code == "OK" and patient is not None
    return PatientCheck(exists=exists, acknowledgement=ack, query_response=code, status=status,
                        detail=" ".join(details))
