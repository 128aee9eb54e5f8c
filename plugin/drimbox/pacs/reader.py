"""What Orthanc holds for a study, shaped as :class:`drimbox.studies.model.StudyContent`.

Orthanc 1.10 does not index the SOP Class UID of instances, and asking it instance by instance costs about a
millisecond each. So the SOP class (and, for key objects, their kind) is learnt once per instance, as instances
arrive, and kept in the store; building a manifest then needs two list calls.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable

import pydicom

from drimbox.kos.classify import apply_rejections, classify_key_object, rejected_instances
from drimbox.pacs.rest import OrthancRest, OrthancRestError
from drimbox.store import Store
from drimbox.studies.model import InstanceRef, SeriesContent, StudyContent

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"


@dataclass(frozen=True)
class PacsStudy:
    orthanc_id: str
    study_uid: str
    is_stable: bool


class PacsReader:
    def __init__(self, rest: OrthancRest, store: Store, *, lookup_threads: int = 4):
        self.rest = rest
        self.store = store
        self.lookup_threads = lookup_threads
        self._series_study: dict[str, str] = {}  # Orthanc series id -> Study Instance UID (never changes)

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
        return PacsStudy(orthanc_id, study["MainDicomTags"].get("StudyInstanceUID", ""), bool(study.get("IsStable")))

    def study_uid_of_instance(self, orthanc_id: str) -> str | None:
        try:
            return self.rest.get_json(f"/instances/{orthanc_id}/study")["MainDicomTags"].get("StudyInstanceUID")
        except OrthancRestError as error:
            if error.status == 404:
                return None
            raise

    def study_uids_of_instances(self, orthanc_ids: Iterable[str]) -> set[str]:
        """Study Instance UIDs of the given instances (deleted ones are skipped): one light call per instance,
        one or two per series and study not seen before."""
        ids = list(dict.fromkeys(orthanc_ids))
        if not ids:
            return set()
        with ThreadPoolExecutor(max_workers=self.lookup_threads) as pool:
            parents = list(pool.map(self._parent_series, ids))
        studies: set[str] = set()
        for series_id in dict.fromkeys(p for p in parents if p):
            study_uid = self._study_uid_of_series(series_id)
            if study_uid:
                studies.add(study_uid)
        return studies

    def _parent_series(self, orthanc_id: str) -> str | None:
        try:
            return self.rest.get_json(f"/instances/{orthanc_id}").get("ParentSeries")
        except OrthancRestError as error:
            if error.status == 404:
                return None
            raise

    def _study_uid_of_series(self, series_id: str) -> str | None:
        cached = self._series_study.get(series_id)
        if cached:
            return cached
        try:
            study = self.rest.get_json(f"/series/{series_id}/study")
        except OrthancRestError as error:
            if error.status == 404:
                return None
            raise
        study_uid = study.get("MainDicomTags", {}).get("StudyInstanceUID")
        if study_uid:
            if len(self._series_study) > 10000:
                self._series_study.clear()
            self._series_study[series_id] = study_uid
        return study_uid

    def learn_instances(self, orthanc_ids: Iterable[str]) -> None:
        """Record the SOP class (and key-object kind) of instances not yet known to the store."""
        ids = list(dict.fromkeys(orthanc_ids))
        known = self.store.instance_facts(ids)
        missing = [i for i in ids if i not in known]
        if not missing:
            return
        with ThreadPoolExecutor(max_workers=self.lookup_threads) as pool:
            results = list(pool.map(self._instance_fact, missing))
        self.store.save_instance_facts({oid: fact for oid, fact in zip(missing, results) if fact is not None})

    def _instance_fact(self, orthanc_id: str) -> tuple[str, str, tuple[str, ...]] | None:
        try:
            sop_class = self.rest.get_text(f"/instances/{orthanc_id}/metadata/SopClassUid").strip()
            if sop_class != KOS_SOP_CLASS:
                return sop_class, "", ()
            ds = pydicom.dcmread(io.BytesIO(self.rest.get_bytes(f"/instances/{orthanc_id}/file")), force=True)
            kind = classify_key_object(ds)
            rejects = tuple(sorted(rejected_instances(ds))) if kind == "rejection" else ()
            return sop_class, kind, rejects
        except OrthancRestError as error:
            if error.status == 404:  # deleted meanwhile
                return None
            raise

    def study_summary(self, study: PacsStudy) -> StudyContent:
        """Study and patient attributes only (one call): enough to check a report against the images."""
        return _study_attributes(study, self.rest.get_json(f"/studies/{study.orthanc_id}"), ())

    def study_content(self, study: PacsStudy) -> StudyContent:
        """Every instance of the study, key-object kinds filled, instances rejected by IOCM notes left out."""
        info = self.rest.get_json(f"/studies/{study.orthanc_id}")
        series_list = self.rest.get_json(f"/studies/{study.orthanc_id}/series")
        instances = self.rest.get_json(f"/studies/{study.orthanc_id}/instances")
        self.learn_instances(i["ID"] for i in instances)
        facts = self.store.instance_facts(i["ID"] for i in instances)

        by_series: dict[str, list[InstanceRef]] = {}
        rejected: set[str] = set()
        for inst in instances:
            fact = facts.get(inst["ID"])
            if fact is None:
                continue
            sop_class, kind, rejects = fact
            rejected.update(rejects)
            tags = inst.get("MainDicomTags", {})
            by_series.setdefault(inst["ParentSeries"], []).append(InstanceRef(
                sop_class_uid=sop_class,
                sop_instance_uid=tags.get("SOPInstanceUID", ""),
                instance_number=_int(tags.get("InstanceNumber")),
                kind=kind,
            ))
        series = []
        for s in series_list:
            tags = s.get("MainDicomTags", {})
            refs = sorted(by_series.get(s["ID"], []),
                          key=lambda r: (r.instance_number is None, r.instance_number or 0, r.sop_instance_uid))
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
