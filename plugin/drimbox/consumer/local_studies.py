"""The local PACS's own studies of the context's patient, for comparison with the exams fetched from the DMP.

A study is the patient's when its PatientID and IssuerOfPatientID are the appel contextuel's ``PatientID`` and
``PatientIDIssuer`` (both: an IPP means nothing without its issuer). Studies of the consumer cache (foreign,
even imported) are left out: they are listed as exams already.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from drimbox.pacs.rest import OrthancRest

MAX_STUDIES = 50


@dataclass(frozen=True)
class LocalStudy:
    study_uid: str
    date: str  # YYYY-MM-DD or ''
    description: str
    modalities: tuple[str, ...]


def local_studies(rest: OrthancRest, patient_id: str, issuer: str, *,
                  is_foreign: Callable[[str], bool]) -> list[LocalStudy]:
    if not patient_id or not issuer:
        return []
    found = rest.post_json("/tools/find", {"Level": "Study", "Query": {"PatientID": patient_id}, "Expand": True,
                                           "Limit": MAX_STUDIES})
    studies = []
    for study in found:
        tags = study.get("MainDicomTags", {})
        uid = tags.get("StudyInstanceUID", "")
        if not uid or study.get("PatientMainDicomTags", {}).get("PatientID") != patient_id or is_foreign(uid):
            continue
        shared = rest.get_json(f"/studies/{study['ID']}/shared-tags", simplify="")
        if shared.get("IssuerOfPatientID", "") != issuer:
            continue
        day = tags.get("StudyDate", "")
        series = rest.get_json(f"/studies/{study['ID']}/series", expand="")
        modalities = dict.fromkeys(s.get("MainDicomTags", {}).get("Modality", "") for s in series)
        studies.append(LocalStudy(uid, f"{day[:4]}-{day[4:6]}-{day[6:8]}" if len(day) == 8 else "",
                                  tags.get("StudyDescription", ""), tuple(m for m in modalities if m)))
    return sorted(studies, key=lambda s: s.date, reverse=True)
