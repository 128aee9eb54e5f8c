"""Minimal HL7v3 answers: patient existence test (PRPA_IN201307UV02, reasonCode TEST_EXST) and habilitations."""

from __future__ import annotations

import datetime as dt
import uuid

from lxml import etree

from . import constants as c
from .errors import SoapFaultError
from .store import DmpStore
from .vihf import VihfContext

V3 = f"{{{c.HL7V3}}}"


def _sub(parent: etree._Element, name: str, attrs: dict[str, str] | None = None) -> etree._Element:
    return etree.SubElement(parent, V3 + name, attrs or {})


def patient_query(payload: etree._Element, vihf: VihfContext, store: DmpStore) -> etree._Element:
    if payload.tag != V3 + "PRPA_IN201307UV02":
        raise SoapFaultError("soap:Sender", f"expected hl7:PRPA_IN201307UV02, got {payload.tag}", http_status=400)
    act = payload.find(V3 + "controlActProcess")
    if act is None:
        raise SoapFaultError("soap:Sender", "PRPA_IN201307UV02 without controlActProcess", http_status=400)
    reason = act.find(V3 + "reasonCode")
    if reason is None or reason.get("code") != "TEST_EXST":
        raise SoapFaultError("soap:Sender", "controlActProcess/reasonCode must be TEST_EXST", http_status=400)
    query = act.find(V3 + "queryByParameter")
    value = query.find(f"{V3}parameterList/{V3}patientIdentifier/{V3}value") if query is not None else None
    if value is None or not value.get("extension") or value.get("root") not in c.OID_INS:
        raise SoapFaultError("soap:Sender", "queryByParameter/parameterList/patientIdentifier/value needs an INS "
                             "(@extension) with an INS OID (@root)", http_status=400)
    ins, oid = value.get("extension"), value.get("root")
    patient_cx = f"{ins}^^^&{oid}&ISO^NH"
    known = store.patient(patient_cx)
    exists, authorized = known if known is not None else (True, True)

    answer = etree.Element(V3 + "PRPA_IN201308UV02", {"ITSVersion": "XML_1.0"}, nsmap={None: c.HL7V3})
    _sub(answer, "id", {"root": str(uuid.uuid4())})
    _sub(answer, "creationTime", {"value": dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S")})
    _sub(answer, "interactionId", {"root": "2.16.840.1.113883.1.6", "extension": "PRPA_IN201308UV02"})
    _sub(answer, "processingCode", {"code": "P"})
    _sub(answer, "processingModeCode", {"code": "T"})
    _sub(answer, "acceptAckCode", {"code": "NE"})
    ack = _sub(answer, "acknowledgement")
    _sub(ack, "typeCode", {"code": "AA"})
    request_id = payload.find(V3 + "id")
    if request_id is not None:
        _sub(_sub(ack, "targetMessage"), "id", dict(request_id.attrib))
    out_act = _sub(answer, "controlActProcess", {"classCode": "CACT", "moodCode": "EVN"})
    if exists:
        subject = _sub(out_act, "subject", {"typeCode": "SUBJ"})
        event = _sub(subject, "registrationEvent", {"classCode": "REG", "moodCode": "EVN"})
        _sub(event, "statusCode", {"code": "active"})
        patient = _sub(_sub(event, "subject1", {"typeCode": "SBJ"}), "patient", {"classCode": "PAT"})
        _sub(patient, "id", {"root": oid, "extension": ins})
        _sub(patient, "statusCode", {"code": "active" if authorized else "suspended"})
    query_ack = _sub(out_act, "queryAck")
    if query is not None and query.find(V3 + "queryId") is not None:
        _sub(query_ack, "queryId", dict(query.find(V3 + "queryId").attrib))
    _sub(query_ack, "queryResponseCode", {"code": "OK" if exists else "NF"})
    if query is not None:
        out_act.append(etree.fromstring(etree.tostring(query)))
    return answer


def habilitations(payload: etree._Element, vihf: VihfContext) -> etree._Element:
    answer = etree.Element(V3 + "MCCI_IN000002UV01", {"ITSVersion": "XML_1.0"}, nsmap={None: c.HL7V3})
    _sub(answer, "id", {"root": str(uuid.uuid4())})
    ack = _sub(answer, "acknowledgement")
    _sub(ack, "typeCode", {"code": "AA"})
    return answer
