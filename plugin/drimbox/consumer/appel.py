"""The appel contextuel (spec-facts section 8): the form a RIS or DPI posts to open a patient's context.

Parameter names are case-sensitive. An unknown parameter, a repeated one, or an empty mandatory one is
refused (HTTP 400) naming it; so is a body that is not UTF-8 form data. Spaces may come as ``+`` or ``%20``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from urllib.parse import parse_qsl

MANDATORY = (
    "Patient.identifier.value",
    "Patient.identifier.system",
    "Patient.name.family",
    "Patient.name.given",
    "Patient.gender",
    "Patient.birthDate",
    "Address.district",
    "InformationEtConsentement",
    "PatientID",
    "PatientIDIssuer",
)
OPTIONAL = ("Situation",)
FORM_TYPE = "application/x-www-form-urlencoded"
# INS-NIR, INS-NIA, INS-NIR test, demo (spec-facts section 1): accept all of them.
INS_OIDS = ("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11")
MAX_BODY_BYTES = 16 * 1024
_SEX = {"male": "M", "female": "F", "other": "O", "unknown": "U", "m": "M", "f": "F", "o": "O", "u": "U"}


class AppelRefused(ValueError):
    """The call cannot open a context; ``parameter`` names the culprit ('' for the body as a whole)."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}" if parameter else problem)
        self.parameter = parameter
        self.problem = problem  # unknown | empty | repeated | invalid | not_form


@dataclass(frozen=True)
class AppelContextuel:
    ins: str
    ins_oid: str
    family: str  # birth name
    given: str  # first birth given name
    gender: str  # as sent
    birth_date: dt.date
    birthplace: str  # Address.district: INSEE code of the birth place
    consent: str  # InformationEtConsentement, as sent
    local_patient_id: str  # PatientID: the local IPP
    local_patient_id_issuer: str  # PatientIDIssuer
    situation: str = ""  # the structure id the professional works for, when given

    @property
    def sex(self) -> str:
        """M, F, O or U (the DICOM/HL7 letter), from FHIR's male/female/other/unknown or a letter."""
        return _SEX.get(self.gender.strip().lower(), "U")

    def to_json(self) -> dict[str, str]:
        data = asdict(self)
        data["birth_date"] = self.birth_date.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, str]) -> "AppelContextuel":
        values = {k: str(data.get(k) or "") for k in cls.__dataclass_fields__}
        return cls(**{**values, "birth_date": dt.date.fromisoformat(values["birth_date"])})  # type: ignore[arg-type]


def parse_appel(body: bytes, content_type: str) -> AppelContextuel:
    if content_type.split(";")[0].strip().lower() != FORM_TYPE:
        raise AppelRefused("", "not_form")
    if len(body) > MAX_BODY_BYTES:
        raise AppelRefused("", "not_form")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), encoding="utf-8",
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise AppelRefused("", "not_form") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in MANDATORY and name not in OPTIONAL:
            raise AppelRefused(name, "unknown")
        if name in values:
            raise AppelRefused(name, "repeated")
        values[name] = value.strip()
    for name in MANDATORY:
        if not values.get(name):
            raise AppelRefused(name, "empty")
    return AppelContextuel(
        ins=values["Patient.identifier.value"],
        ins_oid=_ins_oid(values["Patient.identifier.system"]),
        family=values["Patient.name.family"],
        given=values["Patient.name.given"],
        gender=values["Patient.gender"],
        birth_date=_date(values["Patient.birthDate"]),
        birthplace=values["Address.district"],
        consent=values["InformationEtConsentement"],
        local_patient_id=values["PatientID"],
        local_patient_id_issuer=values["PatientIDIssuer"],
        situation=values.get("Situation", ""),
    )


def _ins_oid(system: str) -> str:
    oid = system.removeprefix("urn:oid:")
    if oid not in INS_OIDS:
        raise AppelRefused("Patient.identifier.system", "invalid")
    return oid


def _date(text: str) -> dt.date:
    for pattern in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise AppelRefused("Patient.birthDate", "invalid")
