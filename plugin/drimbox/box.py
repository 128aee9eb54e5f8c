"""The composition root: builds the box's parts from its settings. Knows nothing of ``orthanc``.

The Orthanc adapter creates one :class:`Box`, calls :meth:`start` when Orthanc has started, routes HTTP
requests to :meth:`handle_http`, asks :meth:`allows` from its HTTP filter, and calls :meth:`stop` at the end.
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from drimbox import __version__
from drimbox.audit.publication import attempt_event
from drimbox.audit.retention import AuditArchiver
from drimbox.config import Settings
from drimbox.indicators import DailyExport
from drimbox.metrics import Metrics, PeerAccessLog, TimedDmp
from drimbox.reachability import Reachability, probes_from_settings
from drimbox.pacs.reader import PacsReader
from drimbox.pacs.rest import OrthancRest
from drimbox.pipeline.changes import ChangeFollower
from drimbox.pipeline.intake import MessageQuota, ReportIntake
from drimbox.pipeline.manifests import ManifestReconciler
from drimbox.pipeline.publisher import Publisher
from drimbox.pipeline.study_queue import StudyQueue
from drimbox.pipeline.workers import Workers
from drimbox.store import Store
from drimbox.store.consumer import RetrievalStore
from drimbox.trust.gate import Gate, GateRequest
from drimbox.trust.operator_access import OperatorAccess
from drimbox.trust.peer_facts import BoxPeerFacts
from drimbox.web.consumer_api import build_consumer_api
from drimbox.web.curated_retrieve import CuratedRetrieve
from drimbox.web.dashboard import Dashboard
from drimbox.web.explorer_panel import ExplorerPanel
from drimbox.web.http import Request, Response, Router
from drimbox.web.links import LinkService
from drimbox.web.operator_actions import OperatorActions
from drimbox.web.operator_api import OperatorApi
from drimbox.web.operator_login import OperatorLogin
from drimbox.web.operator_ui import OperatorUi
from drimbox.web.peer_api import PeerApi
from drimbox.web.viewer_api import ViewerApi

if TYPE_CHECKING:
    from drimbox.reports.mllp import MllpServer

log = logging.getLogger("drimbox")


class Box:
    def __init__(self, settings: Settings, *, orthanc_url: str, stable_age_seconds: float = 60.0):
        self.settings = settings
        self.started_at = time.time()
        self.internal_secret = secrets.token_urlsafe(32)
        self.store = Store.open(settings.store_url)
        self.gate = Gate(self._gate_secret(), self.internal_secret, settings.edge.proxy_secret())
        if not settings.edge.proxy_secret_file:
            log.warning("no DRIMbox.Edge.ProxySecretFile: every request through nginx will be refused")
        self.rest = OrthancRest(orthanc_url, self.internal_secret)
        self.reader = PacsReader(self.rest, self.store, quiet_seconds=settings.publication.study_quiet_seconds)
        # the source pipeline: Orthanc's changes and the HL7 intake schedule studies, worker threads reconcile
        # them into manifests and publish those
        self.studies = StudyQueue(self.store.clock)
        self.follower = ChangeFollower(self.rest, self.reader, self.store, self.studies.schedule,
                                       on_instances_arrived=lambda at: self.workers.instances_arrived(at))
        foreign = RetrievalStore(self.store.db, self.store.clock)
        self.reconciler = ManifestReconciler(self.store, self.reader, settings.identity, settings.publication,
                                             dmp_enabled=settings.dmp.enabled,
                                             is_foreign=lambda uid: foreign.cached(uid) is not None)
        self.dmp_timing: TimedDmp | None = None
        self.publisher = self._publisher()
        self.workers = Workers(
            self.store, self.studies, self.reconciler, self.follower, self.publisher,
            reconcile_threads=settings.publication.worker_threads,
            follower_poll_seconds=settings.publication.changes_poll_seconds,
            sweep_seconds=settings.publication.sweep_seconds, stable_age_seconds=stable_age_seconds)
        self.intake = ReportIntake(self.store, self._study_summary, self.studies.schedule, settings.publication,
                                   quota=MessageQuota(settings.hl7.message_store_quota_bytes,
                                                      settings.hl7.min_free_disk_bytes, settings.data_dir))
        self.psc = self._psc_client()
        self.whitelist = self._whitelist_keeper()
        self.peer_facts = BoxPeerFacts(
            self.store, self.psc, self.whitelist, self.rest,
            client_certificate_required=settings.peer_access.client_certificate_required,
            accepted_token_clients=settings.peer_access.accepted_token_clients,
            token_issuer=self.psc.issuer or "")
        self._stopping = threading.Event()
        # the HTTP routes of the three entries (drimbox.trust.gate decides which entry reaches which)
        self.router = Router()
        self.operator_api = OperatorApi(self.store, self.intake, schedule=self.studies.schedule,
                                        wake_publisher=self.workers.wake_publisher, status=self.status)
        self.operator_api.register(self.router)
        self.peer_api = PeerApi(settings, self.store, self.gate, self.rest, self.whitelist, self.peer_facts)
        self.peer_api.register(self.router)
        CuratedRetrieve(self.rest, self.peer_facts).register(self.router)
        self.viewer_api = ViewerApi(
            store=self.store, gate=self.gate, psc=self.psc, viewer_url=settings.identity.public_viewer_url,
            settings=settings.viewer, links=LinkService.from_settings(self.store, settings), rest=self.rest,
            facts=self.peer_facts, foreign_study=foreign.cached)
        self.viewer_api.register(self.router)
        self.consumer = (build_consumer_api(settings, self.store, self.rest, self.whitelist, self.viewer_api)
                         if settings.consumer.enabled else None)
        if self.consumer is not None:
            self.consumer.register(self.router)
        panel = ExplorerPanel(self.store, dmp_enabled=settings.dmp.enabled)
        panel.register(self.router)
        OperatorUi(panel).register(self.router)
        OperatorActions(self.store, self.intake, schedule=self.studies.schedule,
                        wake_publisher=self.workers.wake_publisher,
                        dmp_enabled=settings.dmp.enabled).register(self.router)
        self.operator_access = OperatorAccess(self.store, settings.operator)
        OperatorLogin(self.operator_access).register(self.router)
        self.mllp: MllpServer | None = None
        peer_log = settings.edge.peer_access_log
        self.metrics = Metrics(self.store, dmp=self.dmp_timing,
                               peer_log=PeerAccessLog(Path(peer_log)) if peer_log else None,
                               whitelist_status=lambda: self.whitelist.status() if self.whitelist else None)
        self.reachability = Reachability(probes_from_settings(settings, self._whitelist_domains))
        self.indicators = DailyExport(self.store, Path(settings.data_dir) / "indicators", clock=time.time) \
            if settings.data_dir else None
        self.audit_archiver = self._audit_archiver()
        Dashboard(self.store, status=self.status, metrics=self.metrics,
                  reachability=self.reachability).register(self.router)

    def _audit_archiver(self) -> AuditArchiver | None:
        audit = self.settings.audit
        if not audit.retention_days:
            return None
        folder = audit.archive_folder(self.settings.data_dir)
        if not folder:
            log.warning("no DRIMbox.Audit.ArchiveDir nor DataDir: the audit trail stays in the store")
            return None
        return AuditArchiver(self.store, Path(folder), audit.retention_days, self.store.clock)

    def _gate_secret(self) -> bytes:
        stored = self.store.get_fact("gate_secret")
        if stored is None:
            stored = self.store.first_fact("gate_secret", secrets.token_hex(32))
        return bytes.fromhex(stored)

    def _publisher(self) -> Publisher | None:
        if not self.settings.dmp.enabled:
            return None
        from drimbox.dmp.client import DmpClient

        self.dmp_timing = TimedDmp(DmpClient(self.settings.dmp, self.settings.identity))
        return Publisher(self.store, self.dmp_timing, self.settings.dmp,
                         on_attempt=lambda job: self.store.add_audit(attempt_event(job).to_row()),
                         heartbeat=True)

    def _psc_client(self):
        from drimbox.psc.client import PscClient

        redirect = self.settings.identity.public_viewer_url.rstrip("/") + "/drimbox/psc/callback"
        return PscClient(self.settings.psc, redirect_uri=redirect)

    def _whitelist_keeper(self):
        """The signed list in force lives in the store, so a restart or another node sees the same list."""
        settings = self.settings.whitelist
        if not settings.source:
            log.warning("no whitelist configured (DRIMbox.Whitelist.Source): no peer is trusted")
            return None
        from drimbox.crypto.keys import load_certificate_chain
        from drimbox.trust.whitelist import WhitelistKeeper

        stored = self.store.get_fact("whitelist_in_force")
        return WhitelistKeeper(
            settings.source, load_certificate_chain(settings.trust_anchor),
            last_valid=base64.b64decode(stored) if stored else None,
            on_accept=lambda xml, verdict: self.store.set_fact("whitelist_in_force", base64.b64encode(xml).decode()),
            crl_urls=settings.crl_urls, signer_cn=settings.signer_cn, signer_ou=settings.signer_ou,
            require_revocation_check=settings.require_revocation_check)

    def _whitelist_domains(self) -> list:
        current = self.whitelist.current if self.whitelist is not None else None
        return list(current.domains) if current is not None else []

    def _refresh_whitelist_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                verdict = self.whitelist.refresh()
                if not verdict.valid:
                    log.warning("whitelist refused, the previous one stays in force: %s", verdict.reason)
            except Exception:
                log.exception("whitelist refresh failed; the previous list stays in force")
            self._stopping.wait(self.settings.whitelist.refresh_hours * 3600)

    def _study_summary(self, study_uid: str):
        study = self.reader.find_study(study_uid)
        return self.reader.study_summary(study) if study else None

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.workers.start()
        if self.settings.hl7.enabled:
            from drimbox.reports.mllp import MllpLimits, MllpServer

            hl7 = self.settings.hl7
            limits = MllpLimits(max_message_bytes=hl7.max_message_bytes, frame_deadline=hl7.frame_deadline_seconds,
                                idle_timeout=hl7.idle_timeout_seconds, max_connections=hl7.max_connections,
                                max_connections_per_source=hl7.max_connections_per_source)
            mllp = MllpServer(hl7.host, hl7.port, self._handle_mllp, limits,
                              on_refusal=lambda source, reason, sample: self.intake.record_refusal(
                                  "mllp", source, reason, sample))
            mllp.start()
            self.mllp = mllp
            log.info("HL7 MLLP listener on %s:%d", hl7.host, mllp.port)
        for study_uid in self.store.pending_studies():
            self.workers.schedule(study_uid)
        self.workers.wake_follower()
        threading.Thread(target=self._rescan, name="drimbox-rescan", daemon=True).start()
        self.reachability.start()
        if self.indicators is not None:
            self.indicators.start()
        if self.whitelist is not None:
            threading.Thread(target=self._refresh_whitelist_forever, name="drimbox-whitelist", daemon=True).start()
        if self.consumer is not None and self.consumer.purger is not None:
            threading.Thread(target=self.consumer.purger.run_forever, name="drimbox-consumer-purge", daemon=True,
                             args=(self._stopping, self.settings.consumer.purge_interval_seconds)).start()
        if self.audit_archiver is not None:
            threading.Thread(target=self.audit_archiver.run_forever, name="drimbox-audit-archive", daemon=True,
                             args=(self._stopping, self.settings.audit.archive_interval_minutes * 60)).start()

    def _rescan(self) -> None:
        try:
            scheduled = self.follower.rescan_followed_studies()
            if scheduled:
                log.info("%d studies changed while the box was stopped: looked at again", scheduled)
        except Exception:
            log.exception("the start-up scan of followed studies failed")

    def stop(self) -> None:
        self._stopping.set()
        self.reachability.stop()
        if self.indicators is not None:
            self.indicators.stop()
        if self.mllp is not None:
            self.mllp.stop()
        self.workers.stop()

    # --- entry points ---------------------------------------------------------------------------
    def _handle_mllp(self, raw: bytes) -> bytes:
        ack, _ = self.intake.receive_hl7(raw, channel="mllp")
        return ack

    def start_when_orthanc_answers(self, then: Callable[[], None] | None = None, interval: float = 0.1) -> None:
        """Returns at once; a thread starts the box (then calls ``then``) once Orthanc's REST API answers, unless
        :meth:`stop` came first."""
        def wait() -> None:
            while not self._stopping.is_set() and not self.orthanc_answers():
                self._stopping.wait(interval)
            if not self._stopping.is_set():
                self.start()
                if then is not None:
                    then()

        threading.Thread(target=wait, name="drimbox-start", daemon=True).start()

    def orthanc_answers(self) -> bool:
        """Orthanc's REST API answers (it does once Orthanc has started)."""
        try:
            self.rest.get_json("/system")
            return True
        except Exception:
            return False

    def allows(self, uri: str, method: str, headers: dict) -> bool:
        return self.gate.allows(GateRequest(uri, method, headers))

    def handle_http(self, request: Request) -> Response:
        try:
            return self.router.dispatch(request)
        except Exception as error:  # a bug must not become Orthanc's generic 500 without a trace
            log.exception("error handling %s %s", request.method, request.path)
            return Response.error(500, f"internal error: {type(error).__name__}: {error}")

    def status(self) -> dict:
        jobs = self.store.list_publications(state="queued", limit=10000)
        failed = self.store.list_publications(state="failed", limit=10000)
        return {
            "version": __version__,
            "uptime_seconds": round(time.time() - self.started_at),
            "hl7_port": self.mllp.port if self.mllp else None,
            "wado_rs_base": self.settings.identity.wado_rs_base,
            "changes_cursor": self.follower.cursor,
            "publications": {"queued": len(jobs), "failed": len(failed)},
            "studies_with_problems": [s.study_uid for s in self.store.list_studies(limit=1000) if s.problem],
            "whitelist": self.whitelist.status() if self.whitelist else None,
            "peer_access": self.peer_api.access_summary(),
        }
