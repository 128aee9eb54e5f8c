"""One audit row per DMP publication attempt, so an operator can read a study's history of attempts."""

from __future__ import annotations

from datetime import datetime, timezone

from drimbox.audit.event import ENTRY_DMP, AuditEvent
from drimbox.store.records import PublicationRecord, PublicationState

# The status of an attempt, as HTTP would say it: done, waiting for another attempt, refused for good.
ATTEMPT_STATUS = {PublicationState.DONE: 200, PublicationState.QUEUED: 503, PublicationState.FAILED: 422}


def attempt_event(job: PublicationRecord) -> AuditEvent:
    """``job`` as the attempt left it (state, last error, attempt number)."""
    return AuditEvent(when=datetime.fromtimestamp(job.updated_at, timezone.utc), entry_point=ENTRY_DMP,
                      action=f"dmp-{job.action}", outcome_status=ATTEMPT_STATUS.get(job.state, 500),
                      reason=f"attempt {job.attempts}" + (f": {job.last_error}" if job.last_error else ""),
                      study_uid=job.study_uid, kos_uid=job.kos_uid)
