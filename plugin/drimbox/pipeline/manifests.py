"""Reconciliation: bring one study's manifest in line with its report and its images.

Idempotent and driven by durable facts only (reports, studies, manifests in the store; what the PACS
holds), so it can run again after a crash, in any order of events, on any node.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Protocol

from drimbox.config.sections import IdentitySettings, PublicationSettings
from drimbox.kos.builder import ManifestError, build_manifest, encode_manifest, referenced_series
from drimbox.kos.consistency import find_conflicts
from drimbox.reports.cda import parse_cda
from drimbox.store import Store
from drimbox.store.records import (ManifestRecord, ManifestStatus, PublicationState, ReportRecord, ReportState,
                                   StudyState)
from drimbox.studies.model import StudyContent

log = logging.getLogger("drimbox.pipeline")


class Pacs(Protocol):
    def find_study(self, study_uid: str): ...  # -> PacsStudy | None (orthanc_id, study_uid, is_stable)
    def study_content(self, study) -> StudyContent: ...


@dataclass(frozen=True)
class ReconcileResult:
    study_uid: str
    state: str
    problem: str = ""
    new_manifest: str | None = None
    recheck_at: float | None = None  # store clock time at which the study should be reconciled again


class ManifestReconciler:
    def __init__(self, store: Store, pacs: Pacs, identity: IdentitySettings, publication: PublicationSettings,
                 *, dmp_enabled: bool = True, is_foreign: Callable[[str], bool] | None = None):
        self.store = store
        self.is_foreign = is_foreign  # studies the consumer role retrieved from other boxes
        self.pacs = pacs
        self.identity = identity
        self.publication = publication
        self.dmp_enabled = dmp_enabled
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, study_uid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(study_uid, threading.Lock())

    def reconcile(self, study_uid: str) -> ReconcileResult:
        with self._lock(study_uid):
            # the study stays pending while it is looked at: if this node dies now, another one's sweep (or this
            # one's restart) takes it up; marks made meanwhile survive the settling below
            seen = self.store.pending_mark(study_uid)
            try:
                result = self._reconcile(study_uid)
            except Exception as error:  # recorded for the operator; the study is retried on the next event
                log.exception("reconciling study %s failed", study_uid)
                result = ReconcileResult(study_uid, StudyState.FAILED, f"{type(error).__name__}: {error}")
            self.store.update_study(study_uid, state=result.state, problem=result.problem)
            # a study that is not stable yet stays pending: if its STABLE_STUDY event is lost (Orthanc stopped,
            # or the node that received its images died), a sweep or the start-up pass builds its manifest
            self.store.settle_pending(study_uid, seen, keep=result.state == StudyState.WAITING_STABLE)
            return result

    def _reconcile(self, study_uid: str) -> ReconcileResult:
        if self.is_foreign is not None and self.is_foreign(study_uid):
            return ReconcileResult(study_uid, StudyState.FOREIGN, "retrieved from another box: never published here")
        report_record = self._report_in_force(study_uid)
        current = self.store.current_manifest(study_uid)
        if report_record is None:
            if current is not None:
                self._withdraw(current)
                return ReconcileResult(study_uid, StudyState.WITHDRAWN,
                                       "the report was withdrawn or the order cancelled")
            withdrawn = self.store.manifests_for_study(study_uid)
            state = StudyState.WITHDRAWN if withdrawn else StudyState.WAITING_REPORT
            return ReconcileResult(study_uid, state)
        self.store.update_study(study_uid, report_id=report_record.report_id)

        study = self.pacs.find_study(study_uid)
        if study is None:
            limit = self.publication.report_wait_for_study_seconds
            waited = self.store.clock() - report_record.received_at
            if waited >= limit:
                problem = (f"report {report_record.report_id} names study {study_uid}, but no image of it has been "
                           f"received in {_duration(waited)} (Publication.ReportWaitForStudySeconds = {limit})")
                return ReconcileResult(study_uid, StudyState.WAITING_IMAGES, problem)
            # look again when the wait is over, so the operator hears of it on time
            return ReconcileResult(study_uid, StudyState.WAITING_IMAGES,
                                   recheck_at=report_record.received_at + limit + 0.5)
        self.store.update_study(study_uid, orthanc_id=study.orthanc_id)
        if not study.is_stable:
            return ReconcileResult(study_uid, StudyState.WAITING_STABLE)

        if report_record.cda is None:
            return ReconcileResult(study_uid, StudyState.FAILED, f"report {report_record.report_id} has no CDA")
        report = parse_cda(report_record.cda)
        content = self.pacs.study_content(study)
        conflicts = find_conflicts(report, content)
        if conflicts:
            return ReconcileResult(study_uid, StudyState.CONFLICT,
                                   f"report {report.report_id} and the images disagree: " + "; ".join(conflicts))
        series = referenced_series(content)
        referenced = {s.series_uid: {i.sop_instance_uid: i.sop_class_uid for i in s.instances} for s in series}
        fingerprint = _fingerprint(referenced)
        if current is not None and current.report_id == report.report_id and current.fingerprint == fingerprint:
            return ReconcileResult(study_uid, StudyState.MANIFEST_READY)
        if not referenced:
            if current is not None:
                self._withdraw(current)
            return ReconcileResult(study_uid, StudyState.WITHDRAWN, "every instance of the study was rejected")

        try:
            ds = build_manifest(report, content, retrieve_base=self.identity.wado_rs_base,
                                uid_root=self.identity.oid_root, institution_name=self.identity.institution_name)
        except ManifestError as error:
            return ReconcileResult(study_uid, StudyState.FAILED, str(error))
        data = encode_manifest(ds)
        send = self.dmp_enabled and report_record.flags.get("DESTDMP", True)
        # one transaction: a manifest recorded without its registration would never be sent (the next pass finds
        # it current and unchanged)
        with self.store.atomically():
            manifest = self.store.add_manifest(
                kos_uid=ds.SOPInstanceUID, study_uid=study_uid, report_id=report.report_id, fingerprint=fingerprint,
                series_count=len(referenced), instance_count=sum(len(v) for v in referenced.values()),
                content=referenced, data=data, dmp_status="queued" if send else "not_sent")
            self._queue_registration(manifest, send, report_record)
        log.info("study %s: manifest %s v%d (%d instances)", study_uid, manifest.kos_uid, manifest.version,
                 manifest.instance_count)
        return ReconcileResult(study_uid, StudyState.MANIFEST_READY, new_manifest=manifest.kos_uid)

    def _report_in_force(self, study_uid: str) -> ReportRecord | None:
        active = [r for r in self.store.reports_for_study(study_uid) if r.state == ReportState.ACTIVE]
        if not active:
            return None
        latest = max(active, key=lambda r: (r.received_at, r.report_id))
        cancelled = self.store.get_fact(f"cancelled:{study_uid}")
        if cancelled and float(cancelled) >= latest.received_at:
            return None
        return latest

    def _queue_registration(self, manifest: ManifestRecord, send: bool, report: ReportRecord) -> None:
        if not send:
            reason = "DESTDMP=N: the RIS asked for no DMP publication" if self.dmp_enabled else "DMP disabled"
            self.store.enqueue_publication(study_uid=manifest.study_uid, kos_uid=manifest.kos_uid,
                                           action="register", state=PublicationState.SKIPPED, last_error=reason)
            return
        self.store.supersede_queued_registrations(manifest.study_uid)
        self.store.enqueue_publication(study_uid=manifest.study_uid, kos_uid=manifest.kos_uid, action="register")

    def _withdraw(self, manifest: ManifestRecord) -> None:
        # one transaction: a manifest marked withdrawn without its deletion queued would stay Approved in the DMP
        with self.store.atomically():
            self._withdraw_and_queue_deletion(manifest)

    def _withdraw_and_queue_deletion(self, manifest: ManifestRecord) -> None:
        self.store.set_manifest_status(manifest.kos_uid, ManifestStatus.WITHDRAWN)
        dropped = self.store.supersede_queued_registrations(manifest.study_uid)
        sent_or_sending = any(
            p.action == "register" and p.state in (PublicationState.DONE, PublicationState.QUEUED)
            for p in self.store.list_publications(study_uid=manifest.study_uid))
        if sent_or_sending and self.dmp_enabled:
            self.store.enqueue_publication(study_uid=manifest.study_uid, kos_uid=manifest.kos_uid, action="delete")
            self.store.set_manifest_dmp(manifest.kos_uid, dmp_status="deletion_queued")
        elif dropped:
            self.store.set_manifest_dmp(manifest.kos_uid, dmp_status="not_sent")


def _fingerprint(referenced: dict[str, dict[str, str]]) -> str:
    canonical = json.dumps({k: sorted(v) for k, v in sorted(referenced.items())}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
