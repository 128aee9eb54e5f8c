"""The appel contextuel a RIS or DPI would post for a patient (demo launch links and tests)."""

from __future__ import annotations

from drimbox.reports.model import PatientIdentity

SEX_TO_GENDER = {"F": "female", "M": "male", "O": "other"}


def appel_for(patient: PatientIdentity, **extra: str) -> dict[str, str]:
    """The form fields (spec-facts section 8) for ``patient``; ``extra`` adds or overrides parameters."""
    birth = patient.birth_date
    return {
        "Patient.identifier.value": patient.ins or "",
        "Patient.identifier.system": f"urn:oid:{patient.ins_oid}",
        "Patient.name.family": patient.family,
        "Patient.name.given": patient.given,
        "Patient.gender": SEX_TO_GENDER.get(patient.sex, "unknown"),
        "Patient.birthDate": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}",
        "Address.district": patient.birthplace or "",
        "InformationEtConsentement": "true",
        "PatientID": patient.ipp or "",
        "PatientIDIssuer": patient.ipp_issuer or "",
        **extra,
    }
