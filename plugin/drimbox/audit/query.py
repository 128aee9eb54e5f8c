"""A filter over audit events, usable in memory (``matches``) and by the store to build its SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drimbox.audit.event import AuditEvent

OUTCOME_ALLOWED = "allowed"
OUTCOME_DENIED = "denied"


@dataclass(frozen=True)
class AuditQuery:
    """Every criterion left at None matches everything. ``since`` is inclusive, ``until`` exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    professional_id: str | None = None
    study_uid: str | None = None
    outcome: str | None = None  # "allowed" (2xx) | "denied" (anything else)
    status: int | None = None  # an exact HTTP status, e.g. 401

    def __post_init__(self) -> None:
        if self.outcome not in (None, OUTCOME_ALLOWED, OUTCOME_DENIED):
            raise ValueError(f"AuditQuery.outcome must be 'allowed' or 'denied', got {self.outcome!r}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"AuditQuery.{name} must be timezone-aware")

    def matches(self, event: AuditEvent) -> bool:
        if self.since is not None and event.when < self.since:
            return False
        if self.until is not None and event.when >= self.until:
            return False
        if self.professional_id is not None and event.professional_id != self.professional_id:
            return False
        if self.study_uid is not None and event.study_uid != self.study_uid:
            return False
        if self.status is not None and event.outcome_status != self.status:
            return False
        if self.outcome is not None and event.allowed != (self.outcome == OUTCOME_ALLOWED):
            return False
        return True
