"""Report intake: every inbound message is kept, answered, and turned into durable report state.

A report may arrive before or after its images. The answer (HL7 ACK or REST JSON) names every problem the
box can see at once; what it can only see later (images that never come, images that contradict the report)
shows up on the study for the operator.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Callable, Protocol

from drimbox.config.sections import PublicationSettings
from drimbox.kos.consistency import find_conflicts
from drimbox.reports.ack import ERR_DUPLICATE_KEY, ERR_INTERNAL, build_ack
from drimbox.reports.cda import parse_cda
from drimbox.reports.errors import ReportError
from drimbox.reports.flags import DEFAULT_FLAGS
from drimbox.reports.hl7 import parse_message
from drimbox.reports.model import Report, ReportEvent, ReportMessage
from drimbox.store import Store
from drimbox.store.records import ReportState
from drimbox.studies.model import StudyContent


class StudyLookup(Protocol):
    """What intake needs from the PACS: the content of a study if it is there (None otherwise)."""

    def __call__(self, study_uid: str) -> StudyContent | None: ...


@dataclass(frozen=True)
class MessageQuota:
    """How much room inbound messages may take (``Hl7.MessageStoreQuotaBytes``, ``Hl7.MinFreeDiskBytes``)."""

    max_total_bytes: int = 0  # 0: no limit
    min_free_disk_bytes: int = 0  # 0: no check
    disk_path: str = ""  # a directory on the store's disk
    free_bytes: Callable[[str], int] = lambda path: shutil.disk_usage(path).free

    def refusal(self, store: Store, size: int) -> str:
        """Why a message of ``size`` bytes cannot be kept ("" when it can)."""
        if self.max_total_bytes:
            used = store.stored_message_bytes()
            if used + size > self.max_total_bytes:
                return (f"message store quota reached: {used} of {self.max_total_bytes} bytes used "
                        f"(DRIMbox.Hl7.MessageStoreQuotaBytes); the operator must make room")
        if self.min_free_disk_bytes and self.disk_path:
            free = self.free_bytes(self.disk_path)
            if free - size < self.min_free_disk_bytes:
                return (f"disk quota reached: {free} bytes free on the data disk, {self.min_free_disk_bytes} must "
                        f"stay free (DRIMbox.Hl7.MinFreeDiskBytes); the operator must make room")
        return ""


@dataclass
class IntakeOutcome:
    code: str  # AA, AE, AR
    text: str = ""
    error_code: str = ERR_INTERNAL  # HL7 table 0357, for AE/AR
    message_id: int | None = None
    report_id: str | None = None
    event: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    studies: list[str] = field(default_factory=list)

    @property
    def http_status(self) -> int:
        return {"AA": 200, "AE": 422, "AR": 400}.get(self.code, 400)

    def to_json(self) -> dict:
        return {
            "ack": self.code, "text": self.text, "message_id": self.message_id, "report_id": self.report_id,
            "event": self.event, "errors": self.errors, "warnings": self.warnings, "studies": self.studies,
        }


class ReportIntake:
    def __init__(self, store: Store, lookup_study: StudyLookup, schedule: Callable[[str], None],
                 settings: PublicationSettings, quota: MessageQuota | None = None):
        self.store = store
        self.lookup_study = lookup_study
        self.schedule = schedule
        self.settings = settings
        self.quota = quota or MessageQuota()

    # --- entry points ---------------------------------------------------------------------------
    def receive_hl7(self, raw: bytes, channel: str = "mllp") -> tuple[bytes, IntakeOutcome]:
        """Handle one HL7 v2 message; returns the ACK to send and what happened."""
        try:
            message = parse_message(raw)
        except Exception as error:  # the parser promises not to raise; keep the message if it does
            message = ReportMessage(message_type="", errors=(f"unreadable message: {error}",))
        outcome = self._handle(raw, channel, message)
        if outcome.code == "AA":
            ack = build_ack(raw, "AA", outcome.text if outcome.warnings else "",
                            error_code="0" if outcome.warnings else "", severity="W")
        else:
            ack = build_ack(raw, outcome.code, outcome.text, error_code=outcome.error_code)
        return ack, outcome

    def record_refusal(self, channel: str, source: str, reason: str, sample: bytes) -> None:
        """A transport-level refusal (bad framing, oversize, too many connections): kept for the operator."""
        message_id = self.store.add_message(channel=channel, raw=sample[:2048], errors=(f"{source}: {reason}",))
        self.store.set_message_outcome(message_id, "AR", f"{source}: {reason}", (f"{source}: {reason}",))

    def receive_cda(self, cda: bytes, *, flags: dict[str, bool] | None = None,
                    channel: str = "rest") -> IntakeOutcome:
        """Handle a bare CR-IMG (REST): a new report, or a replacement when it carries an RPLC relation."""
        try:
            report = parse_cda(cda)
        except ReportError as error:
            message = ReportMessage(message_type="CDA", errors=(str(error),))
        else:
            event = ReportEvent.REPLACE if report.replaces_report_id else ReportEvent.PUBLISH
            message = ReportMessage(
                message_type="CDA", event=event, report_id=report.report_id,
                replaces_report_id=report.replaces_report_id, patient=report.patient, studies=report.studies,
                modalities=report.modalities, flags={**DEFAULT_FLAGS, **(flags or {})}, cda=cda, report=report,
                warnings=report.warnings)
        return self._handle(cda, channel, message)

    # --- the decision ---------------------------------------------------------------------------
    def _handle(self, raw: bytes, channel: str, message: ReportMessage) -> IntakeOutcome:
        full = self.quota.refusal(self.store, len(raw))
        if full:
            return self._refuse_for_room(raw, channel, message, full)
        message_id = self.store.add_message(
            channel=channel, raw=raw, message_type=message.message_type, control_id=message.control_id,
            event=message.event.value if message.event else None, report_id=message.report_id,
            errors=message.errors)
        outcome = IntakeOutcome(code="AA", message_id=message_id, report_id=message.report_id,
                                event=message.event.value if message.event else None,
                                warnings=list(message.warnings))
        if message.errors:
            outcome.code = "AR" if not message.message_type else "AE"
            outcome.errors = list(message.errors)
        elif message.event in (ReportEvent.PUBLISH, ReportEvent.REPLACE):
            self._publish(message, message_id, outcome)
        elif message.event == ReportEvent.WITHDRAW:
            self._withdraw(message, outcome)
        elif message.event == ReportEvent.CANCEL:
            self._cancel(message, outcome)
        else:
            outcome.code = "AR"
            outcome.errors = [f"message {message.message_type} carries no event the box handles"]
        outcome.text = "; ".join(outcome.errors or outcome.warnings) or "accepted"
        self.store.set_message_outcome(message_id, outcome.code, outcome.text, outcome.errors, outcome.warnings)
        return outcome

    def _refuse_for_room(self, raw: bytes, channel: str, message: ReportMessage, reason: str) -> IntakeOutcome:
        """Past the quota the message is refused (AR), and only its header is kept so the operator sees it."""
        header = raw.lstrip(b"\x0b").split(b"\r", 1)[0][:1024]
        message_id = self.store.add_message(
            channel=channel, raw=header, message_type=message.message_type, control_id=message.control_id,
            event=message.event.value if message.event else None, report_id=message.report_id, errors=(reason,))
        self.store.set_message_outcome(message_id, "AR", reason, (reason,))
        return IntakeOutcome(code="AR", text=reason, message_id=message_id, report_id=message.report_id,
                             event=message.event.value if message.event else None, errors=[reason])

    def _publish(self, message: ReportMessage, message_id: int, outcome: IntakeOutcome) -> None:
        report: Report | None = message.report
        if report is None or message.cda is None:
            outcome.code = "AE"
            outcome.errors = ["the message carries no CR-IMG (OBX 18748-4 with the CDA in base64)"]
            return
        outcome.report_id = report.report_id
        outcome.studies = list(report.study_uids)
        replaces = message.replaces_report_id or report.replaces_report_id
        existing = self.store.get_report(report.report_id)
        if existing is not None and existing.state == ReportState.ACTIVE and existing.cda == message.cda:
            outcome.warnings.append(f"report {report.report_id} was already received; nothing changes")
            return
        if existing is not None and existing.state == ReportState.REPLACED and existing.cda == message.cda:
            outcome.warnings.append(f"report {report.report_id} was already received and has been replaced by "
                                    f"{existing.replaced_by_report_id}; nothing changes")
            return
        if existing is not None and existing.state != ReportState.REJECTED and existing.cda not in (None, message.cda):
            outcome.code = "AE"
            outcome.error_code = ERR_DUPLICATE_KEY
            outcome.errors = [_conflict(report, existing.cda, existing.message_id)]
            return

        problems: list[str] = []
        for study_uid in report.study_uids:
            content = self.lookup_study(study_uid)
            if content is None:
                note = f"study {study_uid} has not been received yet; the manifest will be built when it is"
                (problems if self.settings.reject_reports_for_unknown_studies else outcome.warnings).append(
                    note if not self.settings.reject_reports_for_unknown_studies
                    else f"study {study_uid} is unknown to the PACS")
                continue
            problems.extend(find_conflicts(report, content))
        if problems:
            outcome.code = "AE"
            outcome.errors = problems
            self.store.save_report(report_id=report.report_id, message_id=message_id, state=ReportState.REJECTED,
                                   study_uids=report.study_uids, flags=dict(message.flags), cda=message.cda,
                                   replaces_report_id=replaces, problem="; ".join(problems),
                                   viewer_partial_url=message.viewer_partial_url)
            for study_uid in report.study_uids:
                self.store.update_study(study_uid, problem=f"report {report.report_id} refused: "
                                        + "; ".join(problems))
            return

        affected = set(report.study_uids)
        if replaces:
            previous = self.store.get_report(replaces)
            if previous is None:
                outcome.warnings.append(f"the replaced report {replaces} is unknown to this box")
            else:
                self.store.set_report_state(replaces, ReportState.REPLACED, replaced_by=report.report_id)
                affected.update(previous.study_uids)
        self.store.save_report(report_id=report.report_id, message_id=message_id, state=ReportState.ACTIVE,
                               study_uids=report.study_uids, flags=dict(message.flags), cda=message.cda,
                               replaces_report_id=replaces, viewer_partial_url=message.viewer_partial_url)
        for study_uid in report.study_uids:
            self.store.set_fact(f"cancelled:{study_uid}", "")
        self._touch(affected)

    def _withdraw(self, message: ReportMessage, outcome: IntakeOutcome) -> None:
        report_id = message.report_id
        record = self.store.get_report(report_id) if report_id else None
        if not report_id or record is None:
            outcome.code = "AE"
            outcome.errors = [f"withdrawal of report {report_id or '(no id)'}, which this box never received"]
            return
        outcome.studies = list(record.study_uids)
        if record.state == ReportState.WITHDRAWN:
            outcome.warnings.append(f"report {report_id} was already withdrawn")
            return
        self.store.set_report_state(record.report_id, ReportState.WITHDRAWN, problem="withdrawn by the RIS")
        self._touch(record.study_uids)

    def _cancel(self, message: ReportMessage, outcome: IntakeOutcome) -> None:
        study_uids = [s.study_uid for s in message.studies if s.study_uid]
        if not study_uids:
            outcome.code = "AE"
            outcome.errors = ["order cancellation without a study UID (IPC-3)"]
            return
        outcome.studies = study_uids
        for study_uid in study_uids:
            self.store.set_fact(f"cancelled:{study_uid}", repr(self.store.clock()))
        self._touch(study_uids)

    def _touch(self, study_uids) -> None:
        for study_uid in study_uids:
            self.store.mark_pending(study_uid)
            self.schedule(study_uid)


def _conflict(report: Report, known_cda: bytes | None, known_message: int | None) -> str:
    try:
        known_version = str(parse_cda(known_cda or b"").version)
    except ReportError:
        known_version = "?"
    return (f"conflict: report {report.report_id} (version {report.version}) was already received with another "
            f"content (version {known_version}, message #{known_message}); a changed report needs a new document id "
            "and a replacement (relatedDocument RPLC): this message is kept but not used")
