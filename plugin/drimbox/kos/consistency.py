"""Does a report describe these images? Problems worth refusing a publication for."""

from __future__ import annotations

import re
import unicodedata

from drimbox.reports.model import Report
from drimbox.studies.model import StudyContent

_UNKNOWN_SEX = {"", "U", "O", "UNK"}
_LIGATURES = str.maketrans({"Œ": "OE", "Æ": "AE"})


def find_conflicts(report: Report, study: StudyContent) -> list[str]:
    """Human-readable disagreements between ``report`` and ``study``; empty when consistent."""
    problems: list[str] = []
    uid = study.study_uid
    if uid not in report.study_uids:
        problems.append(f"study {uid} is not covered by report {report.report_id} "
                        f"(it names {', '.join(report.study_uids) or 'no study'})")
    accessions = {o.accession for o in report.orders_for(uid) if o.accession}
    if study.accession and accessions and study.accession not in accessions:
        problems.append(f"accession number mismatch for study {uid}: images say {study.accession!r}, "
                        f"report says {', '.join(sorted(accessions))}")
    problems.extend(_patient_conflicts(report, study))
    return problems


def _patient_conflicts(report: Report, study: StudyContent) -> list[str]:
    patient = report.patient
    problems = []
    known_ids = [i for i in (patient.ipp, patient.ins) if i]
    if known_ids and study.patient_id not in known_ids:
        problems.append(f"patient mismatch: images have PatientID {study.patient_id!r}, "
                        f"report has {' / '.join(repr(i) for i in known_ids)} (IPP / INS)")
    if patient.birth_date and study.patient_birth_date and patient.birth_date != study.patient_birth_date:
        problems.append(f"patient birth date mismatch: images {study.patient_birth_date}, "
                        f"report {patient.birth_date}")
    report_sex, study_sex = patient.sex.strip().upper(), study.patient_sex.strip().upper()
    if report_sex not in _UNKNOWN_SEX and study_sex not in _UNKNOWN_SEX and report_sex != study_sex:
        problems.append(f"patient sex mismatch: images {study_sex}, report {report_sex}")
    study_family = comparable_name(study.patient_name.split("^", 1)[0])
    report_families = {comparable_name(n) for n in (patient.family, getattr(patient, "used_family", "")) if n}
    report_families.discard("")
    if study_family and report_families and study_family not in report_families:
        names = " / ".join(n for n in (patient.family, getattr(patient, "used_family", "")) if n)
        problems.append(f"patient name mismatch: images {study.patient_name!r}, report {names!r}")
    return problems


def comparable_name(name: str) -> str:
    """Upper case, no accents, punctuation and runs of spaces folded to one space."""
    decomposed = unicodedata.normalize("NFKD", name.upper().translate(_LIGATURES))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[^0-9A-Z]+", " ", plain.upper()).strip()
