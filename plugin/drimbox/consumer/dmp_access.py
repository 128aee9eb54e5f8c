"""The consumer's DMP questions: who asks (the VIHF actor) and what the existence test's answer means."""

from __future__ import annotations

from dataclasses import dataclass

from drimbox.consumer.appel import AppelContextuel
from drimbox.consumer.reasons import ConsumerReason
from drimbox.dmp.client import Actor
from drimbox.dmp.hl7dt import patient_cx
from drimbox.dmp.patients import PatientCheck
from drimbox.psc.model import PROFESSION_CODE_SYSTEM, SECTOR_CODE_SYSTEM, SPECIALTY_CODE_SYSTEM, ActivityChoice
from drimbox.psc.model import Professional
from drimbox.reports.model import Code, Organization, Person


def actor(professional: Professional, choice: ActivityChoice, reason: ConsumerReason) -> Actor:
    """The VIHF's subject: the logged-in professional, in the chosen activity, for the chosen reason."""
    exercice, activity = choice.exercice, choice.activity
    roles = [Code(exercice.profession_code, PROFESSION_CODE_SYSTEM)] if exercice.profession_code else []
    if exercice.specialty_code:
        roles.append(Code(exercice.specialty_code, SPECIALTY_CODE_SYSTEM))
    return Actor(
        professional=Person(id_nat=professional.id_nat, family=exercice.family_name or professional.family_name,
                            given=exercice.given_name or professional.given_name),
        organization=Organization(id=activity.structure_id, name=activity.structure_name,
                                  facility_type=Code(activity.sector_code, SECTOR_CODE_SYSTEM)),
        purpose=reason.purpose_of_use,
        roles=tuple(roles),
    )


def patient_of(appel: AppelContextuel) -> str:
    """The patient's XDS CX (``<INS>^^^&<OID>&ISO^NH``)."""
    return patient_cx(appel.ins, appel.ins_oid)


@dataclass(frozen=True)
class DmpAccess:
    allowed: bool
    reason: str  # ok | no_dmp | not_authorized | refused


def explain(check: PatientCheck) -> DmpAccess:
    """The TEST_EXST answer as a decision the page can explain in plain words."""
    if check.acknowledgement in ("AE", "AR"):
        return DmpAccess(False, "refused")
    if not check.exists:
        return DmpAccess(False, "no_dmp")
    if check.status and check.status != "active":
        return DmpAccess(False, "not_authorized")
    return DmpAccess(True, "ok")
