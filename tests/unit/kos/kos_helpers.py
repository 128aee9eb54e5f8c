"""Shared fixtures of the KOS tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from drimbox.reports.model import Code, PatientIdentity, Report, StudyOrder
from drimbox.studies.model import StudyContent

INS = "279035121518989"
INS_OID = "1.2.250.1.213.1.4.10"
IPP = "IPP0042"
UID_ROOT = "1.2.826.0.1.3680043.8.498.77"
RETRIEVE_BASE = "https://db.example.org/wado-rs"
PATIENT = dict(patient_id=IPP, patient_name="DUPONT^Marie", birth_date="19790315", sex="F")


def make_report(*studies: StudyContent | str, orders_per_study: int = 1, ins: str | None = INS) -> Report:
    """A report on the given studies, with ``orders_per_study`` orders each."""
    items = []
    for study in studies:
        uid = study if isinstance(study, str) else study.study_uid
        accession = "" if isinstance(study, str) else study.accession
        for n in range(orders_per_study):
            items.append(StudyOrder(
                study_uid=uid,
                accession=accession if n == 0 else f"{accession}-{n}",
                accession_issuer="1.2.250.1.999.1.1",
                order=f"ORD-{n}",
                order_issuer="1.2.250.1.999.1.2",
            ))
    return Report(
        report_id="1.2.250.1.999.2.1^42",
        patient=PatientIdentity(ins=ins, ins_oid=INS_OID if ins else None, ipp=IPP, ipp_issuer="1.2.250.1.999.3",
                                family="DUPONT", given="Marie", sex="F", birth_date="19790315"),
        studies=tuple(items),
        act=Code("24727-0", "2.16.840.1.113883.6.1", "CT Head W contrast IV"),
    )


def dciodvfy(path: Path) -> list[str]:
    """Warnings of dciodvfy on ``path``; fails the test on any Error line."""
    if not shutil.which("dciodvfy"):
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    lines = (result.stdout + result.stderr).splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    assert not errors, f"dciodvfy errors on {path}:\n" + "\n".join(errors)
    return [line for line in lines if line.startswith("Warning")]
