"""One audit-trail record and its flat row form (one column per field, for SQL or JSON lines)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

# Entry points of the box, so queries can tell peer retrievals from viewer sessions and operator actions.
ENTRY_WADO_RS = "wado-rs"
ENTRY_VIEWER = "viewer"
ENTRY_CONSUMER = "consumer"
ENTRY_OPERATOR = "operator"
ENTRY_DMP = "dmp"  # the box's own calls to the DMP (one row per publication attempt)


@dataclass(frozen=True)
class AuditEvent:
    """An access or action. ``outcome_status`` is the HTTP status answered (2xx = allowed)."""

    when: datetime  # timezone-aware, UTC
    entry_point: str
    action: str  # e.g. retrieve-series, retrieve-study-metadata, open-viewer
    outcome_status: int
    reason: str = ""
    caller_dn: str = ""  # TLS client certificate subject DN of the calling box, when known
    professional_id: str = ""  # idNat of the professional (8 + RPPS...)
    structure_id: str = ""
    patient_id: str = ""  # the patient's INS (consumer role: whose history was consulted)
    purpose: str = ""  # normal | bris_de_glace | centre_15, plus free text when given
    kos_uid: str = ""
    study_uid: str = ""
    series_uid: str = ""
    instance_uid: str = ""
    bytes_sent: int | None = None  # filled in afterwards when the transfer completes
    request_id: str = ""  # correlates with the front proxy's log line (nginx $request_id)
    operator: str = ""  # the operator (admin entry user) who acted, for operator actions

    def __post_init__(self) -> None:
        if self.when.tzinfo is None:
            raise ValueError("AuditEvent.when must be timezone-aware (UTC)")

    @property
    def allowed(self) -> bool:
        return 200 <= self.outcome_status < 300

    def to_row(self) -> dict[str, Any]:
        """A flat dict of str/int/None values; ``when`` as ISO 8601 UTC with milliseconds."""
        row = {name: getattr(self, name) for name in _FIELD_NAMES}
        row["when"] = self.when.astimezone(timezone.utc).isoformat(timespec="milliseconds")
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "AuditEvent":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(row) - known
        if unknown:
            raise ValueError(f"unknown audit column(s): {', '.join(sorted(unknown))}")
        values = dict(row)
        when = values.get("when")
        if isinstance(when, str):
            when = datetime.fromisoformat(when)
        if not isinstance(when, datetime):
            raise ValueError("audit row needs 'when' as an ISO 8601 string or a datetime")
        values["when"] = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        values["outcome_status"] = int(values["outcome_status"])
        if values.get("bytes_sent") is not None:
            values["bytes_sent"] = int(values["bytes_sent"])
        for name in known - {"when", "outcome_status", "bytes_sent"}:
            if values.get(name) is None and name in values:
                values[name] = ""
        return cls(**values)


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(AuditEvent))
