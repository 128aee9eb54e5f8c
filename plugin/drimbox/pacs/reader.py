"""What Orthanc holds for a study, shaped as :class:`drimbox.studies.model.StudyContent`.

Orthanc 1.10 does not index the SOP Class UID of instances, but keeps it in each instance's metadata, and its
``/tools/bulk-content`` route answers the main tags and metadata of many instances in one call. So a manifest
is built from a few calls at the study-stable moment (a series's instance ids, then its instances by the
thousand), and nothing runs as Orthanc stores an instance: a stored-instance callback, even empty, costs a bare
Orthanc ~3% of its ingest time on small images (bench/ingest.py). Key objects (a handful per study) are read
once to learn their kind and what a rejection note rejects; the store keeps that.
"""

from __future__ import annotations

import calendar
import logging
import time
from dataclasses import dataclass
from typing import Iterator

from drimbox.kos.classify import apply_rejections
from drimbox.pacs.key_objects import KOS_SOP_CLASS, read_key_object
from drimbox.pacs.rest import OrthancRest, OrthancRestError
from drimbox.store import InstanceFact, Store
from drimbox.studies.model import InstanceRef, SeriesContent, StudyContent

log = logging.getLogger("drimbox.pacs")


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
    def __init__(self, rest: OrthancRest, store: Store, *, batch_size: int = 1000, quiet_seconds: float = 0.0,
                 clock=time.time):
        """``batch_size``: instances asked of Orthanc per call (about 0.7 kB of JSON each);
        ``quiet_seconds``: see :meth:`study_by_id`."""
        self.rest = rest
        self.store = store
        self.batch_size = batch_size
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

    def series_instances(self, instance_ids: list[str]) -> Iterator[tuple[str, tuple[str, str], str]]:
        """(Orthanc id, (SOPInstanceUID, InstanceNumber), SOP Class UID) of each instance still stored,
        ``batch_size`` per call.

        An instance deleted since the series was listed is left out (bulk-content skips unknown ids); one
        without the SopClassUid metadata (Orthanc records it whenever the data set has the tag) too, with a
        warning."""
        for start in range(0, len(instance_ids), self.batch_size):
            chunk = instance_ids[start:start + self.batch_size]
            for item in self.rest.post_json("/tools/bulk-content",
                                            {"Resources": chunk, "Level": "Instance", "Metadata": True}):
                sop_class = (item.get("Metadata") or {}).get("SopClassUid", "")
                if not sop_class:
                    log.warning("instance %s has no SOP Class UID: left out of the manifest", item.get("ID"))
                    continue
                tags = item.get("MainDicomTags") or {}
                yield item["ID"], (tags.get("SOPInstanceUID", ""), tags.get("InstanceNumber", "")), sop_class

    def key_object_facts(self, orthanc_ids: list[str]) -> dict[str, InstanceFact]:
        """Kind and rejected instances of key objects: from the store, else read once from their bytes."""
        facts = self.store.instance_facts(orthanc_ids)
        learnt = {}
        for orthanc_id in orthanc_ids:
            if orthanc_id in facts:
                continue
            try:
                data = self.rest.get_bytes(f"/instances/{orthanc_id}/file")
            except OrthancRestError as error:
                if error.status == 404:  # deleted meanwhile
                    continue
                raise
            try:
                learnt[orthanc_id] = read_key_object(KOS_SOP_CLASS, data)
            except ValueError as error:
                # not kept: read again at the next build, so the warning stays in the log until it is fixed
                log.warning("key object %s: %s; counted as an ordinary instance", orthanc_id, error)
                facts[orthanc_id] = InstanceFact(KOS_SOP_CLASS, "other")
        self.store.save_instance_facts(learnt)
        facts.update(learnt)
        return facts

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
            listed = list(self.series_instances(list(s.get("Instances") or [])))
            key_objects = self.key_object_facts([oid for oid, _, sop_class in listed if sop_class == KOS_SOP_CLASS])
            refs = []
            for orthanc_id, (sop_instance_uid, instance_number), sop_class in listed:
                kind = ""
                if sop_class == KOS_SOP_CLASS:
                    fact = key_objects.get(orthanc_id)
                    if fact is None:  # deleted while we looked
                        continue
                    rejected.update(fact.rejects)
                    kind = fact.kind
                refs.append(InstanceRef(sop_class_uid=sop_class, sop_instance_uid=sop_instance_uid,
                                        instance_number=_int(instance_number), kind=kind))
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
