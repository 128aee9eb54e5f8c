"""The consumer's audit trail: each appel contextuel, consultation, retrieval and import, with who asked."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from drimbox.audit.event import ENTRY_CONSUMER, AuditEvent
from drimbox.consumer.importing import ImportOutcome, ImportRequest
from drimbox.consumer.opening import OpenRequest, Outcome
from drimbox.store import Store

log = logging.getLogger("drimbox.consumer")

OPENING_STATUS = {"complete": 200, "partial": 206, "refused_host": 403, "refused_certificate": 403,
                  "other_patient": 403}


class ConsumerAudit:
    def __init__(self, store: Store, clock: Callable[[], float]):
        self.store = store
        self.clock = clock

    def event(self, action: str, status: int, **fields: Any) -> None:
        """Never raises: a trail that cannot be written is logged, the request goes on."""
        try:
            event = AuditEvent(when=dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc),
                               entry_point=ENTRY_CONSUMER, action=action, outcome_status=status, **fields)
            self.store.add_audit(event.to_row())
        except Exception:
            log.exception("cannot record the audit event %s", action)

    def import_done(self, request: ImportRequest, outcome: ImportOutcome) -> None:
        detail = f"local IPP {request.local_patient_id}" if request.local_patient_id else "source PatientID kept"
        self.event("consumer-import", 200 if outcome.ok else 502, study_uid=request.study_uid,
                   reason=f"{'imported' if outcome.ok else 'import failed'} ({detail}): {outcome.detail}",
                   **request.who)

    def opening_done(self, request: OpenRequest, outcome: Outcome) -> None:
        self.event("consumer-open-exam", OPENING_STATUS.get(outcome.state, 502), kos_uid=request.exam.unique_id,
                   study_uid=outcome.study_uid,
                   reason=f"{outcome.state} from {outcome.source_host or '?'}"
                          + (f": {outcome.detail}" if outcome.detail else ""),
                   bytes_sent=outcome.bytes, **request.who)
