"""The DMP publication worker: takes due jobs from the durable queue and carries them out.

A job is a durable row (state, attempts, next attempt, last error). Transport failures are retried with
exponential backoff and jitter; a refusal by the DMP is not retried blindly but left FAILED for an operator.
A study's jobs run in order, and a registration replaces (RPLC) whatever entry of the study is Approved,
so the box never leaves two Approved manifests for one study.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from typing import Callable, Protocol

from drimbox.dmp.errors import DmpRejected, DmpUnavailable, MetadataError
from drimbox.dmp.settings import DmpSettings
from drimbox.reports.cda import parse_cda
from drimbox.reports.model import Report
from drimbox.store import Store
from drimbox.store.records import ManifestRecord, PublicationRecord, PublicationState

log = logging.getLogger("drimbox.publisher")


class DmpGateway(Protocol):
    """The part of :class:`drimbox.dmp.client.DmpClient` the publisher uses."""

    def publish(self, kos: bytes, report: Report, flags: dict, *, replaces_entry_uuid: str | None = None): ...
    def find_entry_uuid(self, unique_id: str, *, actor, patient_cx: str) -> str | None: ...
    def delete(self, entry_uuid: str, report: Report, *, actor=None) -> None: ...


class DmpStatus:
    QUEUED = "queued"
    APPROVED = "approved"
    DEPRECATED = "deprecated"
    DELETED = "deleted"
    DELETION_QUEUED = "deletion_queued"
    REJECTED = "rejected"
    NOT_SENT = "not_sent"


class Publisher:
    # With a heartbeat (renew_leases, from the workers) a claim needs only a short lease: a node that dies leaves
    # its job to another node within this time instead of the whole worst-case duration of a publication.
    HEARTBEAT_LEASE_SECONDS = 30.0

    def __init__(self, store: Store, dmp: DmpGateway, settings: DmpSettings, *, worker_name: str | None = None,
                 on_attempt: Callable[[PublicationRecord], None] | None = None, heartbeat: bool = False):
        self.store = store
        self.dmp = dmp
        self.settings = settings
        self.heartbeat = heartbeat
        # the process id tells nodes of one machine apart
        self.worker_name = worker_name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.on_attempt = on_attempt  # told of each attempt's outcome (the job as the attempt left it)

    def run_once(self) -> PublicationRecord | None:
        """Carry out one due job, if any; returns it (as claimed)."""
        lease = self.HEARTBEAT_LEASE_SECONDS if self.heartbeat else self.settings.timeout_seconds * 4 + 30
        job = self.store.claim_publication(self.worker_name, lease_seconds=lease)
        if job is None:
            return None
        try:
            if job.action == "register":
                self._register(job)
            elif job.action == "delete":
                self._delete(job)
            else:
                self.store.finish_publication(job.id, PublicationState.FAILED, error=f"unknown action {job.action}")
        except DmpUnavailable as error:
            delay = self._backoff(job.attempts)
            log.warning("publication %s: DMP unavailable (%s); retry in %.0f s", job.id, error, delay)
            self.store.retry_publication_later(job.id, error=f"DMP unavailable: {error}", delay_seconds=delay)
        except DmpRejected as error:
            log.error("publication %s refused by the DMP: %s", job.id, error)
            self.store.finish_publication(job.id, PublicationState.FAILED, error=f"refused by the DMP: {error}")
            if job.action == "register":
                self.store.set_manifest_dmp(job.kos_uid, dmp_status=DmpStatus.REJECTED)
        except (MetadataError, ValueError) as error:
            log.error("publication %s cannot be built: %s", job.id, error)
            self.store.finish_publication(job.id, PublicationState.FAILED, error=f"cannot build the lot: {error}")
        except Exception as error:  # unexpected: keep the job, retry later, tell the operator
            log.exception("publication %s failed unexpectedly", job.id)
            self.store.retry_publication_later(job.id, error=f"{type(error).__name__}: {error}",
                                               delay_seconds=self._backoff(job.attempts))
        if self.on_attempt is not None:
            after = self.store.get_publication(job.id)
            if after is not None:
                try:
                    self.on_attempt(after)
                except Exception:
                    log.exception("publication %s: recording the attempt failed", job.id)
        return job

    def renew_leases(self) -> int:
        """Called every third of the lease while this node lives."""
        if not self.heartbeat:
            return 0
        return self.store.renew_claims(self.worker_name, lease_seconds=self.HEARTBEAT_LEASE_SECONDS)

    def _backoff(self, attempts: int) -> float:
        base = self.settings.retry_initial_seconds * (2 ** max(attempts - 1, 0))
        return min(self.settings.retry_max_seconds, base) * random.uniform(0.8, 1.2)

    def _context(self, manifest: ManifestRecord | None, kos_uid: str) -> tuple[ManifestRecord, Report, dict]:
        if manifest is None:
            raise ValueError(f"manifest {kos_uid} is not in the store")
        record = self.store.get_report(manifest.report_id)
        if record is None or record.cda is None:
            raise ValueError(f"report {manifest.report_id} of manifest {kos_uid} is not in the store")
        return manifest, parse_cda(record.cda), record.flags
    def _approved_entry(self, study_uid: str, *, include_deletion_queued: bool = False) -> ManifestRecord | None:
        """The study's manifest whose entry is Approved in the DMP. A withdrawn manifest waiting for its ITI-57
        is marked ``deletion_queued`` by the reconciler, but its entry is still Approved until the deletion."""
        statuses = {DmpStatus.APPROVED, DmpStatus.DELETION_QUEUED} if include_deletion_queued \
            else {DmpStatus.APPROVED}
        approved = [m for m in self.store.manifests_for_study(study_uid)
                    if m.dmp_status in statuses and m.dmp_entry_uuid]
        return approved[-1] if approved else None

    def _register(self, job: PublicationRecord) -> None:
        manifest, report, flags = self._context(self.store.get_manifest(job.kos_uid), job.kos_uid)
        if job.attempts > 1:  # an earlier attempt may have registered the lot before its answer was lost
            entry_uuid = self._already_registered(manifest, report)
            if entry_uuid:
                previous = self._approved_entry(job.study_uid)
                if previous is not None and previous.kos_uid != manifest.kos_uid:
                    self.store.set_manifest_dmp(previous.kos_uid, dmp_status=DmpStatus.DEPRECATED)
                return self._registered(job, manifest, entry_uuid)
        previous = self._approved_entry(job.study_uid)
        replaces = previous.dmp_entry_uuid if previous and previous.kos_uid != manifest.kos_uid else None
        result = self.dmp.publish(manifest.data, report, flags, replaces_entry_uuid=replaces)
        if previous is not None and replaces:
            self.store.set_manifest_dmp(previous.kos_uid, dmp_status=DmpStatus.DEPRECATED)
        self._registered(job, manifest, result.entry_uuid, replaces)

    def _registered(self, job: PublicationRecord, manifest: ManifestRecord, entry_uuid: str,
                    replaces: str | None = None) -> None:
        with self.store.atomically():  # the manifest's status and its job's tell the same story
            self.store.set_manifest_dmp(manifest.kos_uid, dmp_status=DmpStatus.APPROVED, entry_uuid=entry_uuid)
            self.store.finish_publication(job.id, PublicationState.DONE, entry_uuid=entry_uuid,
                                          replaces_entry_uuid=replaces)
        log.info("publication %s: manifest %s Approved in the DMP as %s", job.id, manifest.kos_uid, entry_uuid)

    def _already_registered(self, manifest: ManifestRecord, report: Report) -> str | None:
        """After a lost answer the lot may have been registered: look before sending it twice."""
        from drimbox.dmp.client import Actor
        from drimbox.dmp.hl7dt import patient_cx_of

        return self.dmp.find_entry_uuid(manifest.kos_uid, actor=Actor.for_report(report),
                                        patient_cx=patient_cx_of(report.patient))

    def _delete(self, job: PublicationRecord) -> None:
        approved = self._approved_entry(job.study_uid, include_deletion_queued=True)
        if approved is None or not approved.dmp_entry_uuid:
            self.store.finish_publication(job.id, PublicationState.DONE,
                                          error="nothing Approved in the DMP for this study")
            return
        _, report, _ = self._context(approved, approved.kos_uid)  # the deletion acts as the entry's own report
        self.dmp.delete(approved.dmp_entry_uuid or "", report)  # _approved_entry returns only entries with an id
        with self.store.atomically():
            self.store.set_manifest_dmp(approved.kos_uid, dmp_status=DmpStatus.DELETED)
            if approved.kos_uid != job.kos_uid:
                self.store.set_manifest_dmp(job.kos_uid, dmp_status=DmpStatus.NOT_SENT)
            self.store.finish_publication(job.id, PublicationState.DONE, entry_uuid=approved.dmp_entry_uuid)
        log.info("publication %s: entry %s deleted from the DMP", job.id, approved.dmp_entry_uuid)
