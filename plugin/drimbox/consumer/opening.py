"""Opening an exam of the history: its KOS from the DMP (ITI-43), the whitelist check of every Retrieve URL,
then its series into the local Orthanc, one after the other so the first one is viewable early.

Runs on a worker thread; progress and outcome go to the store, where the exam's page reads them.
States: fetching_kos, fetching, complete, partial (some series failed: what came is usable, a retry fetches
the rest), failed, refused_host (a Retrieve URL host is not in the whitelist), refused_certificate (the source's
server certificate is not the one the whitelist names for its host), other_patient (the KOS is not about the
context's patient).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from drimbox.consumer.appel import AppelContextuel
from drimbox.consumer.fetch import OrthancFetcher
from drimbox.consumer.history import ExamRow
from drimbox.consumer.retrieval import plan_retrieval
from drimbox.consumer.source_tls import UNREACHABLE, SourceCheck
from drimbox.dmp.client import Actor
from drimbox.dmp.errors import DmpRejected, DmpUnavailable
from drimbox.kos.reader import read_manifest
from drimbox.store.consumer import RetrievalStore

log = logging.getLogger("drimbox.consumer")


@dataclass(frozen=True)
class OpenRequest:
    context_id: str
    exam: ExamRow
    appel: AppelContextuel
    actor: Actor
    patient_cx: str
    access_token: str
    who: dict  # audit fields: professional_id, structure_id, patient_id, purpose


@dataclass(frozen=True)
class Outcome:
    state: str
    study_uid: str = ""
    source_host: str = ""
    bytes: int = 0
    detail: str = ""


class ExamOpener:
    def __init__(self, *, dmp, fetcher: OrthancFetcher, retrievals: RetrievalStore,
                 is_trusted_db_host: Callable[[str], bool], cache_seconds: float, executor: Executor,
                 clock: Callable[[], float], on_done: Callable[[OpenRequest, Outcome], None],
                 check_source: Callable[[str], SourceCheck]):
        self.dmp = dmp
        self.fetcher = fetcher
        self.retrievals = retrievals
        self.is_trusted_db_host = is_trusted_db_host
        self.cache_seconds = cache_seconds
        self.executor = executor
        self.clock = clock
        self.on_done = on_done
        self.check_source = check_source

    def open(self, request: OpenRequest) -> bool:
        """Start the retrieval unless one is running or done for this context; True when started."""
        if not self.retrievals.start(request.context_id, request.exam.unique_id):
            return False
        self.executor.submit(self._run_and_report, request)
        return True

    def _run_and_report(self, request: OpenRequest) -> None:
        try:
            outcome = self.run(request)
        except Exception as error:  # a bug must leave an explained state, not a retrieval stuck "fetching"
            log.exception("opening exam %s failed", request.exam.unique_id)
            outcome = Outcome("failed", detail=f"{type(error).__name__}: {error}")
            self.retrievals.update(request.context_id, request.exam.unique_id, state="failed", error=outcome.detail)
        self.on_done(request, outcome)

    def run(self, request: OpenRequest) -> Outcome:
        context_id, kos_uid = request.context_id, request.exam.unique_id

        def finish(outcome: Outcome, **values: object) -> Outcome:
            self.retrievals.update(context_id, kos_uid, state=outcome.state, error=outcome.detail, **values)
            return outcome

        try:
            if request.exam.manual_kos:
                data = base64.b64decode(request.exam.manual_kos)
            else:
                data = self.dmp.retrieve(request.exam.repository_id, kos_uid, actor=request.actor,
                                         patient_cx=request.patient_cx)
            manifest = read_manifest(data)
        except (DmpUnavailable, DmpRejected) as error:
            return finish(Outcome("failed", detail=f"DMP: {error}"))
        except ValueError as error:
            return finish(Outcome("failed", detail=f"unreadable KOS: {error}"))
        if manifest.patient_id != request.appel.ins:
            return finish(Outcome("other_patient", manifest.study_uid, detail=f"KOS PatientID {manifest.patient_id}"))
        plan = plan_retrieval(manifest, self.is_trusted_db_host)
        if plan.refused_hosts:
            return finish(Outcome("refused_host", plan.study_uid, ", ".join(plan.refused_hosts)),
                          refused_hosts=plan.refused_hosts, study_uid=plan.study_uid)
        if not plan.usable:
            return finish(Outcome("failed", plan.study_uid, detail=f"unusable Retrieve URL for {plan.malformed}"),
                          study_uid=plan.study_uid)
        host = plan.series[0].host
        if self.retrievals.cached(plan.study_uid) is None and self.fetcher.has_study(plan.study_uid):
            # this box's own (local) study: viewed in place, never cached, so never purged
            return finish(Outcome("complete", plan.study_uid, "local"), study_uid=plan.study_uid,
                          series_total=len(plan.series), series_done=len(plan.series))
        for checked_host in dict.fromkeys(source.host for source in plan.series):
            check = self.check_source(checked_host)
            if check.outcome == UNREACHABLE:
                return finish(Outcome("failed", plan.study_uid, checked_host,
                                      detail=f"source unreachable: {check.detail}"), study_uid=plan.study_uid)
            if not check.ok:
                return finish(Outcome("refused_certificate", plan.study_uid, checked_host, detail=check.detail),
                              study_uid=plan.study_uid)
        self.retrievals.cache(plan.study_uid, kos_uid=kos_uid, patient_ins=request.appel.ins, source_host=host,
                              expires_at=self.clock() + self.cache_seconds)
        self.retrievals.update(context_id, kos_uid, state="fetching", study_uid=plan.study_uid,
                               series_total=len(plan.series))
        done, size, errors = 0, 0, []
        for source in plan.series:
            result = self.fetcher.fetch_series(source, access_token=request.access_token, kos_uid=kos_uid)
            size += result.bytes
            if result.ok:
                done += 1
                self.retrievals.update(context_id, kos_uid, series_done=done)
            else:
                errors.append(f"{result.series_uid}: {result.error}")
        state = "complete" if done == len(plan.series) else ("partial" if done else "failed")
        return finish(Outcome(state, plan.study_uid, host, size, "; ".join(errors)), series_done=done)
