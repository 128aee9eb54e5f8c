"""What the box understands of a report and of the HL7 message that carried it.

These plain, frozen records are the contract between intake (HL7/CDA parsing), the KOS builder,
the publication pipeline and the DMP client.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum


class ReportEvent(str, Enum):
    PUBLISH = "publish"  # new validated report (ORU NW / MDM^T02, OBX-11 F)
    REPLACE = "replace"  # corrected report (MDM^T10, ORC RO, OBX-11 C, CDA relatedDocument RPLC)
    WITHDRAW = "withdraw"  # report withdrawn (ORC CA, MDM^T04, OBX-11 D)
    CANCEL = "cancel"  # order/exam cancelled (OMI^O23 ORC CA)


@dataclass(frozen=True)
class Code:
    code: str
    system: str  # OID of the coding scheme
    display: str = ""


@dataclass(frozen=True)
class PatientIdentity:
    ins: str | None = None
    ins_oid: str | None = None
    ipp: str | None = None
    ipp_issuer: str | None = None
    family: str = ""  # birth name
    given: str = ""  # first birth first-name
    sex: str = ""  # M, F, U (DICOM/HL7 style)
    birth_date: str = ""  # YYYYMMDD
    birthplace: str | None = None  # INSEE code
    used_family: str = ""  # used name (CDA qualifier CL, HL7 PID-5 type D)
    used_given: str = ""
    identity_reliability: tuple[str, ...] = ()  # PID-32 codes, e.g. ("VALI",)

    @property
    def ins_validated(self) -> bool:
        """PID-32 says VALI: the INS was checked against the national service."""
        return "VALI" in self.identity_reliability


@dataclass(frozen=True)
class Person:
    id_nat: str = ""  # 8 + RPPS
    family: str = ""
    given: str = ""
    id_root: str = "1.2.250.1.71.4.2.1"


@dataclass(frozen=True)
class Organization:
    id: str = ""  # structure id (FINESS prefixed 1, SIRET 3, RPPS 4)
    id_root: str = "1.2.250.1.71.4.2.2"
    name: str = ""
    sector: Code | None = None  # standardIndustryClassCode (1.2.250.1.213.1.1.4.9)
    facility_type: Code | None = None  # healthCareFacility code SAxx (1.2.250.1.71.4.2.4)


@dataclass(frozen=True)
class StudyOrder:
    """One (study, order) pair a report covers."""

    study_uid: str
    accession: str = ""
    accession_issuer: str = ""
    order: str = ""  # placer order number
    order_issuer: str = ""


@dataclass(frozen=True)
class Report:
    """A CR-IMG (CDA R2) as far as the box needs it."""

    report_id: str  # ClinicalDocument/id as "root" or "root^extension"
    set_id: str = ""
    version: int = 1
    replaces_report_id: str | None = None  # relatedDocument typeCode=RPLC
    title: str = ""
    effective_time: str = ""
    confidentiality: Code | None = None
    patient: PatientIdentity = field(default_factory=PatientIdentity)
    studies: tuple[StudyOrder, ...] = ()
    act: Code | None = None
    act_translations: tuple[Code, ...] = ()  # CCAM, modality, anatomical region...
    modalities: tuple[str, ...] = ()  # normalised DICOM modality codes (RM -> MR)
    anatomic_regions: tuple[Code, ...] = ()
    service_start: str = ""
    service_stop: str = ""
    author: Person = field(default_factory=Person)
    organization: Organization = field(default_factory=Organization)
    legal_authenticator: Person = field(default_factory=Person)
    practice_setting: Code | None = None
    warnings: tuple[str, ...] = ()  # repairs and oddities met while parsing (double UTF-8, RM...)

    @property
    def study_uids(self) -> tuple[str, ...]:
        seen: list[str] = []
        for item in self.studies:
            if item.study_uid not in seen:
                seen.append(item.study_uid)
        return tuple(seen)

    def orders_for(self, study_uid: str) -> tuple[StudyOrder, ...]:
        return tuple(item for item in self.studies if item.study_uid == study_uid)


@dataclass(frozen=True)
class ReportMessage:
    """One inbound HL7v2 message, parsed. ``errors`` empty means usable."""

    message_type: str  # e.g. ORU^R01
    control_id: str = ""
    event: ReportEvent | None = None
    report_id: str | None = None
    replaces_report_id: str | None = None
    patient: PatientIdentity = field(default_factory=PatientIdentity)
    studies: tuple[StudyOrder, ...] = ()
    modalities: tuple[str, ...] = ()
    flags: dict[str, bool] = field(default_factory=dict)  # MetaDMPMSS flags
    viewer_partial_url: str | None = None
    sending_structure: str = ""  # PRT-8
    cda: bytes | None = None
    report: Report | None = None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        """The documented JSON shape of ``drimbox hl7 parse --json``."""
        patient = asdict(self.patient)
        return {
            "message_type": self.message_type,
            "control_id": self.control_id,
            "event": self.event.value if self.event else None,
            "report_id": self.report_id,
            "replaces_report_id": self.replaces_report_id,
            "patient": {k: patient[k] for k in (
                "ins", "ins_oid", "ipp", "ipp_issuer", "family", "given", "sex", "birth_date", "birthplace")},
            "studies": [asdict(s) for s in self.studies],
            "modalities": list(self.modalities),
            "flags": dict(self.flags),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }
