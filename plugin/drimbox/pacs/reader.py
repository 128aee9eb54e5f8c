"""What Orthanc holds for a study, shaped as :class:`drimbox.studies.model.StudyContent`.

Orthanc 1.10 does not index the SOP Class UID of instances, and asking it instance by instance costs about a
millisecond each. So the SOP class (and, for key objects, their kind) is recorded as Orthanc stores each
instance (:mod:`drimbox.pipeline.instance_facts`). Building a manifest then lists the study's instances (one
call) and reads their SOP classes from the store; only instances the recorder missed are read one by one.
"""

from __future__ import annotations

import calendar
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable

from drimbox.kos.classify import apply_rejections
from drimbox.pacs.key_objects import KOS_SOP_CLASS, read_key_object
from drimbox.pacs.rest import OrthancRest, OrthancRestError
from drimbox.store import InstanceFact, Store
from drimbox.studies.model import InstanceRef, SeriesContent, StudyContent


@dataclass(frozen=True)
class PacsStudy:
    orthanc_id: str
    study_uid: str
    is_stable: bool


def orthanc_time(text: str) -> float:
    """Orthanc's ``LastUpdate`` (UTC, ``YYYYMMDDTHHMMSS``) as a Unix time; 0 when unreadable."""
    try:
        return float(calendar.timegm(time.strptime(text, "%Y%m%dT%H%M%S")))
    except ValueError:
        return 0.0


class PacsReader:
    def __init__(self, rest: OrthancRest, store: Store, *, lookup_threads: int = 4, quiet_seconds: float = 0.0,
                 clock=time.time):
        self.rest = rest
        self.store = store
        self.lookup_threads = lookup_threads
        self.quiet_seconds = quiet_seconds
        self.clock = clock

    def find_study(self, study_uid: str) -> PacsStudy | None:
        matches = self.rest.post_json("/tools/lookup", study_uid)
        for match in matches:
            if match.get("Type") == "Study":
                return self.study_by_id(match["ID"])
        return None

    def study_by_id(self, orthanc_id: str) -> PacsStudy | None:
        try:
            study = self.rest.get_json(f"/studies/{orthanc_id}")
        except OrthancRestError as error:
            if error.status == 404:
                return None
            raise
        stable = bool(study.get("IsStable"))
        if stable and self.quiet_seconds > 0:  # another node may be receiving it: its last image tells
            stable = self.clock() - orthanc_time(study.get("LastUpdate", "")) >= self.quiet_seconds
        return PacsStudy(orthanc_id, study["MainDicomTags"].get("StudyInstanceUID", ""), stable)

    def learn_instances(self, orthanc_ids: Iterable[str]) -> dict[str, InstanceFact]:
        """Read through the REST API the instances whose facts the store lacks; returns every fact known."""
        ids = list(dict.fromkeys(orthanc_ids))
        facts = self.store.instance_facts(ids)
        missing = [i for i in ids if i not in facts]
        if missing:
            with ThreadPoolExecutor(max_workers=self.lookup_threads) as pool:
                read = pool.map(self._read_instance, missing)
                learnt = {oid: fact for oid, fact in zip(missing, read, strict=True) if fact}
            self.store.save_instance_facts(learnt)
            facts.update(learnt)
        return facts

    def _read_instance(self, orthanc_id: str) -> InstanceFact | None:
        try:
            sop_class = self.rest.get_text(f"/instances/{orthanc_id}/metadata/SopClassUid").strip()
            if sop_class == KOS_SOP_CLASS:
                return read_key_object(sop_class, self.rest.get_bytes(f"/instances/{orthanc_id}/file"))
            return InstanceFact(sop_class)
        except OrthancRestError as error:
            if error.status == 404:  # deleted meanwhile
                return None
            raise

    def study_summary(self, study: PacsStudy) -> StudyContent:
        """Study and patient attributes only (one call): enough to check a report against the images."""
        return _study_attributes(study, self.rest.get_json(f"/studies/{study.orthanc_id}"), ())

    def study_content(self, study: PacsStudy) -> StudyContent:
        """Every instance of the study, key-object kinds filled, instances rejected by IOCM notes left out.

        Instances are listed series by series: the listing of a 10,000-instance study is 7 MB of JSON, and
        parsing it at once would make the plugin's memory peak (and stay) that much higher."""
        info = self.rest.get_json(f"/studies/{study.orthanc_id}")
        rejected: set[str] = set()
        series = []
        for s in self.rest.get_json(f"/studies/{study.orthanc_id}/series"):
            tags = s.get("MainDicomTags", {})
            refs = []
            listed = [(i["ID"], i.get("MainDicomTags", {})) for i in self.rest.get_json(f"/series/{s['ID']}/instances")]
            facts = self.learn_instances(orthanc_id for orthanc_id, _ in listed)
            for orthanc_id, instance_tags in listed:
                fact = facts.get(orthanc_id)
                if fact is None:  # deleted while we looked
                    continue
                rejected.update(fact.rejects)
                refs.append(InstanceRef(sop_class_uid=fact.sop_class_uid,
                                        sop_instance_uid=instance_tags.get("SOPInstanceUID", ""),
                                        instance_number=_int(instance_tags.get("InstanceNumber")), kind=fact.kind))
            refs.sort(key=lambda r: (r.instance_number is None, r.instance_number or 0, r.sop_instance_uid))
            series.append(SeriesContent(
                series_uid=tags.get("SeriesInstanceUID", ""),
                modality=tags.get("Modality", ""),
                description=tags.get("SeriesDescription", ""),
                number=_int(tags.get("SeriesNumber")),
                instances=tuple(refs),
            ))
        series.sort(key=lambda s: (s.number is None, s.number or 0, s.series_uid))
        content = _study_attributes(study, info, tuple(series))
        return apply_rejections(content, rejected) if rejected else content


def _study_attributes(study: PacsStudy, info: dict, series: tuple[SeriesContent, ...]) -> StudyContent:
    study_tags = info.get("MainDicomTags", {})
    patient_tags = info.get("PatientMainDicomTags", {})
    return StudyContent(
        study_uid=study_tags.get("StudyInstanceUID", study.study_uid),
        patient_id=patient_tags.get("PatientID", ""),
        patient_name=patient_tags.get("PatientName", ""),
        patient_birth_date=patient_tags.get("PatientBirthDate", ""),
        patient_sex=patient_tags.get("PatientSex", ""),
        accession=study_tags.get("AccessionNumber", ""),
        description=study_tags.get("StudyDescription", ""),
        study_date=study_tags.get("StudyDate", ""),
        study_time=study_tags.get("StudyTime", ""),
        study_id=study_tags.get("StudyID", ""),
        referring_physician=study_tags.get("ReferringPhysicianName", ""),
        series=series,
    )


def _int(value) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
