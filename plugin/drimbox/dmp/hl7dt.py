"""HL7v2 data types as XDS metadata writes them (CX, XCN, XON, DTM) and small parsers for answers."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from drimbox.dmp import xds_ids
from drimbox.reports.model import Organization, PatientIdentity, Person


def escape(value: str) -> str:
    """Escape HL7v2 delimiters inside one component (ITI TF-3 4.2.3.1.7 uses the standard escapes)."""
    return (
        value.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")
        .replace("~", "\\R\\")
    )


def patient_cx(ins: str, ins_oid: str) -> str:
    """``<INS>^^^&<OID>&ISO^NH``: the DMP patient id."""
    if not ins or not ins_oid:
        raise ValueError("the patient's INS and its OID are required to address the DMP")
    return f"{ins}^^^&{ins_oid}&ISO^NH"


def patient_cx_of(patient: PatientIdentity) -> str:
    return patient_cx(patient.ins or "", patient.ins_oid or "")


def xcn(person: Person) -> str:
    """``<idNat>^<FAMILY>^<Given>^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS``."""
    if not person.id_nat:
        raise ValueError("a health professional without national id (idNat) cannot be written as XCN")
    root = person.id_root or xds_ids.SYSTEM_ID_NAT_PS
    return f"{escape(person.id_nat)}^{escape(person.family)}^{escape(person.given)}^^^^^^&{root}&ISO^D^^^IDNPS"


def device_xcn(device_id: str, device_name: str, oid_root: str) -> str:
    """A software author: its id under the box's OID root, its name as family name, type RI (resource id)."""
    return f"{escape(device_id)}^{escape(device_name)}^^^^^^^&{oid_root}&ISO^D^^^RI"


def xon(organization: Organization) -> str:
    """``<Name>^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^<structure id>``."""
    if not organization.id:
        raise ValueError("the author organisation has no structure id")
    root = organization.id_root or xds_ids.SYSTEM_ID_NAT_STRUCTURE
    return f"{escape(organization.name)}^^^^^&{root}&ISO^IDNST^^^{escape(organization.id)}"


def reference_id(value: str, authority_oid: str, id_type: str) -> str:
    """CXi of referenceIdList: ``<value>^^^&<OID>&ISO^<type>`` (``<value>^^^^<type>`` without authority)."""
    authority = f"&{authority_oid}&ISO" if authority_oid else ""
    return f"{escape(value)}^^^{authority}^{id_type}"


_HL7_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$")


def dtm_utc(moment: datetime) -> str:
    """XDS time: UTC, ``YYYYMMDDHHMMSS``."""
    if moment.tzinfo is None:
        raise ValueError("XDS times must be built from timezone-aware datetimes")
    return moment.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")


def hl7_ts_to_utc(value: str) -> str:
    """An HL7 TS (``20210108111700+0100``, ``20210108``...) as an XDS UTC time, keeping its precision.

    Without offset the value is taken as UTC already; a date alone stays a date (no invented time).
    """
    value = (value or "").strip()
    match = _HL7_TS.match(value)
    if not match:
        raise ValueError(f"not an HL7 timestamp: {value!r}")
    year, month, day, hour, minute, second, offset = match.groups()
    digits = "".join(part for part in (year, month, day, hour, minute, second) if part)
    if offset is None or hour is None:
        return digits
    moment = datetime(
        int(year), int(month or 1), int(day or 1), int(hour), int(minute or 0), int(second or 0)
    )
    sign = 1 if offset[0] == "+" else -1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    utc = moment - sign * delta
    return utc.strftime("%Y%m%d%H%M%S")[: len(digits)]
