"""What an operator may do to a study's DMP publication, from Orthanc Explorer's DRIMbox panel or the dashboard.

Every action is a POST on the admin entry, so nginx's admin decision (drimbox.trust.operator_access) has already
checked the session and the Origin before it gets here. The body must be JSON (a cross-site HTML form cannot send
that without a preflight, which never reaches Orthanc), and every outcome, refused or not, is audited with the
operator's name.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from drimbox.audit.event import ENTRY_OPERATOR, AuditEvent
from drimbox.pipeline.intake import ReportIntake
from drimbox.store import Store
from drimbox.store.records import ManifestStatus, PublicationState, ReportState, StudyState
from drimbox.trust.gate import OPERATOR_HEADER
from drimbox.web.http import Request, Response, Router

log = logging.getLogger("drimbox.operator")

STUDY_ACTIONS = ("retry", "cancel", "republish", "withdraw")


@dataclass(frozen=True)
class Outcome:
    status: int
    message: str
    kos_uid: str = ""
    publication_id: int | None = None


class OperatorActions:
    def __init__(self, store: Store, intake: ReportIntake, *, schedule: Callable[[str], None],
                 wake_publisher: Callable[[], None], dmp_enabled: bool, clock: Callable[[], float] = time.time):
        self.store = store
        self.intake = intake
        self.schedule = schedule
        self.wake_publisher = wake_publisher
        self.dmp_enabled = dmp_enabled
        self.clock = clock

    def register(self, router: Router) -> None:
        router.add("POST", "/drimbox/ui/studies/{study_uid}/actions/{action}", self.study_action)
        router.add("POST", "/drimbox/ui/messages/{message_id}/replay", self.replay_message)

    # --- studies ----------------------------------------------------------------------------------
    def study_action(self, request: Request) -> Response:
        study_uid, action = request.params["study_uid"], request.params["action"]
        operator = request.headers.get(OPERATOR_HEADER, "")
        if action not in STUDY_ACTIONS:
            return Response.error(404, f"no action {action!r}: one of {', '.join(STUDY_ACTIONS)}")
        body, refusal = _json_body(request)
        if refusal is not None:
            outcome = refusal
        elif self.store.get_study(study_uid) is None and not self.store.manifests_for_study(study_uid):
            outcome = Outcome(404, f"the box knows nothing of study {study_uid}")
        elif action in ("retry", "cancel"):
            outcome = self._on_publication(study_uid, action, body.get("publication"))
        elif action == "republish":
            outcome = self._republish(study_uid)
        else:
            outcome = self._withdraw(study_uid, operator)
        self._audit(f"operator-{action}", outcome, operator, study_uid=study_uid)
        if outcome.status < 300 and action != "cancel":
            self.wake_publisher()
        return Response.json({"status": outcome.status, "message": outcome.message, "kos_uid": outcome.kos_uid,
                              "publication": outcome.publication_id}, outcome.status)

    def _on_publication(self, study_uid: str, action: str, publication: object) -> Outcome:
        if not isinstance(publication, int) or isinstance(publication, bool):
            return Outcome(400, 'the body must name the publication: {"publication": <id>}')
        job = self.store.get_publication(publication)
        if job is None or job.study_uid != study_uid:
            return Outcome(404, f"no publication {publication} for study {study_uid}")
        if action == "retry":
            if not self.store.requeue_publication(job.id):
                return Outcome(409, f"publication {job.id} is {job.state}: nothing to retry", job.kos_uid, job.id)
            return Outcome(202, f"publication {job.id} will be attempted now", job.kos_uid, job.id)
        if not self.store.cancel_publication(job.id):
            return Outcome(409, f"publication {job.id} is {job.state}: it can no longer be cancelled",
                           job.kos_uid, job.id)
        return Outcome(200, f"publication {job.id} cancelled", job.kos_uid, job.id)

    def _republish(self, study_uid: str) -> Outcome:
        if not self.dmp_enabled:
            return Outcome(409, "DMP publication is disabled on this box")
        current = self.store.current_manifest(study_uid)
        if current is None:
            if not any(r.state == ReportState.ACTIVE for r in self.store.reports_for_study(study_uid)):
                return Outcome(409, f"study {study_uid} has no report in force: nothing to publish")
            # withdrawn by an operator while its report is still in force: the reconciler builds a new manifest
            # (a new KOS UID) and queues its registration
            self.store.mark_pending(study_uid)
            self.schedule(study_uid)
            return Outcome(202, f"a new manifest of study {study_uid} will be built and published")
        if current.dmp_status == "approved":
            return Outcome(409, f"manifest {current.kos_uid} is already Approved in the DMP", current.kos_uid)
        if any(p.state == PublicationState.QUEUED for p in self.store.list_publications(study_uid=study_uid)):
            return Outcome(409, "a publication of this study is already waiting: retry it instead", current.kos_uid)
        job_id = self.store.enqueue_publication(study_uid=study_uid, kos_uid=current.kos_uid, action="register")
        self.store.set_manifest_dmp(current.kos_uid, dmp_status="queued")
        return Outcome(202, f"manifest {current.kos_uid} queued for publication", current.kos_uid, job_id)

    def _withdraw(self, study_uid: str, operator: str) -> Outcome:
        if not self.dmp_enabled:
            return Outcome(409, "DMP publication is disabled on this box")
        approved = [m for m in self.store.manifests_for_study(study_uid)
                    if m.dmp_status == "approved" and m.dmp_entry_uuid]
        if not approved:
            return Outcome(409, f"nothing of study {study_uid} is Approved in the DMP: nothing to withdraw")
        entry = approved[-1]
        self.store.supersede_queued_registrations(study_uid)
        job_id = self.store.enqueue_publication(study_uid=study_uid, kos_uid=entry.kos_uid, action="delete")
        self.store.set_manifest_dmp(entry.kos_uid, dmp_status="deletion_queued")
        if entry.status == ManifestStatus.CURRENT:
            # the manifest stays withdrawn until the reconciler builds a new one (new images, a new report)
            self.store.set_manifest_status(entry.kos_uid, ManifestStatus.WITHDRAWN)
            self.store.update_study(study_uid, state=StudyState.WITHDRAWN,
                                    problem=f"withdrawn from the DMP by operator {operator}")
        return Outcome(202, f"entry {entry.dmp_entry_uuid} queued for withdrawal from the DMP", entry.kos_uid, job_id)

    # --- HL7 messages -----------------------------------------------------------------------------
    def replay_message(self, request: Request) -> Response:
        operator = request.headers.get(OPERATOR_HEADER, "")
        _, refusal = _json_body(request)
        record = None
        if refusal is None:
            try:
                record = self.store.get_message(int(request.params["message_id"]))
            except ValueError:
                record = None
        if refusal is not None:
            outcome = refusal
        elif record is None:
            outcome = Outcome(404, f"no message {request.params['message_id']}")
        elif record.ack_code == "AA":
            outcome = Outcome(409, f"message {record.id} was accepted: nothing to replay")
        else:
            _, result = self.intake.receive_hl7(record.raw, channel="replay")
            data = result.to_json()
            outcome = Outcome(200 if data.get("ack") == "AA" else 422,
                              f"message {record.id} replayed: ACK {data.get('ack')} {data.get('text') or ''}".strip())
        self._audit("operator-replay-message", outcome, operator, study_uid="")
        return Response.json({"status": outcome.status, "message": outcome.message}, outcome.status)

    def _audit(self, action: str, outcome: Outcome, operator: str, *, study_uid: str) -> None:
        event = AuditEvent(when=datetime.fromtimestamp(self.clock(), timezone.utc), entry_point=ENTRY_OPERATOR,
                           action=action, outcome_status=outcome.status, reason=outcome.message,
                           study_uid=study_uid, kos_uid=outcome.kos_uid, operator=operator)
        self.store.add_audit(event.to_row())


def _json_body(request: Request) -> tuple[dict, Outcome | None]:
    if request.content_type != "application/json":
        return {}, Outcome(415, "send the action as application/json")
    try:
        body = request.json()
    except ValueError:
        return {}, Outcome(400, "the body is not JSON")
    if not isinstance(body, dict):
        return {}, Outcome(400, "the body must be a JSON object")
    return body, None
