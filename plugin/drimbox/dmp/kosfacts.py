"""The few attributes of a KOS manifest the XDS metadata needs, read with pydicom."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pydicom

from drimbox.dmp.errors import MetadataError
from drimbox.dmp.xds_ids import KOS_SOP_CLASS


@dataclass(frozen=True)
class KosFacts:
    sop_instance_uid: str
    study_uids: tuple[str, ...]  # from CurrentRequestedProcedureEvidenceSequence, in order
    patient_id: str = ""
    created: datetime | None = None  # aware datetime when the KOS states its offset from UTC


def read_kos_facts(kos: bytes) -> KosFacts:
    try:
        dataset = pydicom.dcmread(io.BytesIO(kos), stop_before_pixels=True)
    except Exception as error:  # pydicom raises several unrelated types for bad input
        raise MetadataError(f"the KOS is not readable DICOM: {error}") from None
    sop_class = str(dataset.get("SOPClassUID", ""))
    if sop_class != KOS_SOP_CLASS:
        raise MetadataError(f"not a Key Object Selection document (SOP Class UID {sop_class or 'missing'})")
    uid = str(dataset.get("SOPInstanceUID", ""))
    if not uid:
        raise MetadataError("the KOS has no SOP Instance UID")
    studies: list[str] = []
    for item in dataset.get("CurrentRequestedProcedureEvidenceSequence", []) or []:
        study = str(item.get("StudyInstanceUID", ""))
        if study and study not in studies:
            studies.append(study)
    return KosFacts(
        sop_instance_uid=uid,
        study_uids=tuple(studies),
        patient_id=str(dataset.get("PatientID", "")),
        created=_creation(dataset),
    )


def _creation(dataset) -> datetime | None:
    offset = str(dataset.get("TimezoneOffsetFromUTC", "") or "")
    date = str(dataset.get("InstanceCreationDate", "") or dataset.get("ContentDate", "") or "")
    time = str(dataset.get("InstanceCreationTime", "") or dataset.get("ContentTime", "") or "")
    if len(offset) != 5 or len(date) != 8:
        return None
    try:
        clock = (time.split(".")[0] + "000000")[:6]
        naive = datetime.strptime(date + clock, "%Y%m%d%H%M%S")
        sign = 1 if offset[0] == "+" else -1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
    except ValueError:
        return None
    return naive.replace(tzinfo=zone)
