"""Rows of the store as plain records."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar


def _from_row(cls, row) -> Any:
    names = {f.name for f in fields(cls)}
    values = {k: row[k] for k in row.keys() if k in names}
    for key in ("study_uids", "errors", "warnings"):
        if key in values and isinstance(values[key], str):
            values[key] = tuple(json.loads(values[key]))
    if "flags" in values and isinstance(values["flags"], str):
        values["flags"] = json.loads(values["flags"])
    return cls(**values)


class _Record:
    __dataclass_fields__: ClassVar[dict[str, Any]]  # every record is a dataclass: lets asdict() accept self

    @classmethod
    def from_row(cls, row):
        return _from_row(cls, row)

    def to_json(self) -> dict:
        out = asdict(self)
        for key, value in list(out.items()):
            if isinstance(value, bytes):
                out.pop(key)
            elif isinstance(value, tuple):
                out[key] = list(value)
        return out


@dataclass(frozen=True)
class MessageRecord(_Record):
    id: int
    received_at: float
    channel: str
    message_type: str
    control_id: str
    event: str | None
    report_id: str | None
    raw: bytes
    ack_code: str
    ack_text: str
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstanceFact:
    """What the pipeline learnt of a stored key object (KOS) from its bytes, kept by Orthanc id so that it is read
    once: its kind, what a rejection note rejects, its own UIDs."""

    sop_class_uid: str
    kind: str = ""  # for key objects: manifest, key_images, rejection, other
    rejects: tuple[str, ...] = ()  # SOP instance UIDs a rejection note rejects
    study_uid: str | None = None
    series_uid: str | None = None
    sop_instance_uid: str | None = None
    instance_number: int | None = None

    @property
    def complete(self) -> bool:
        return bool(self.sop_instance_uid and self.series_uid)


class ReportState:
    ACTIVE = "active"  # the version in force
    REPLACED = "replaced"
    WITHDRAWN = "withdrawn"
    REJECTED = "rejected"  # refused at intake (conflict with the images...): see problem


@dataclass(frozen=True)
class ReportRecord(_Record):
    report_id: str
    message_id: int | None
    received_at: float
    updated_at: float
    state: str
    problem: str
    replaces_report_id: str | None
    replaced_by_report_id: str | None
    study_uids: tuple[str, ...]
    flags: dict = field(default_factory=dict)
    cda: bytes | None = None
    viewer_partial_url: str | None = None


class StudyState:
    WAITING_REPORT = "waiting_report"
    WAITING_IMAGES = "waiting_images"
    WAITING_STABLE = "waiting_stable"
    CONFLICT = "conflict"
    MANIFEST_READY = "manifest_ready"
    WITHDRAWN = "withdrawn"
    FAILED = "failed"  # the manifest could not be built: see problem
    FOREIGN = "foreign"  # retrieved from another box by the consumer role: never published by this one


@dataclass(frozen=True)
class StudyRecord(_Record):
    study_uid: str
    orthanc_id: str | None
    report_id: str | None
    state: str
    problem: str
    stable_at: float | None
    pending: int
    updated_at: float


class ManifestStatus:
    CURRENT = "current"
    SUPERSEDED = "superseded"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class ManifestRecord(_Record):
    kos_uid: str
    study_uid: str
    report_id: str
    version: int
    created_at: float
    status: str
    replaces_kos_uid: str | None
    fingerprint: str
    series_count: int
    instance_count: int
    content: str  # JSON {series_uid: {sop_instance_uid: sop_class_uid}}
    data: bytes
    dmp_entry_uuid: str | None
    dmp_status: str

    def referenced(self) -> dict[str, dict[str, str]]:
        return json.loads(self.content)

    def to_json(self) -> dict:
        out = super().to_json()
        out.pop("content", None)
        return out


class PublicationState:
    QUEUED = "queued"  # waiting for its turn or for its next attempt
    DONE = "done"
    FAILED = "failed"  # refused by the DMP: needs an operator
    CANCELLED = "cancelled"  # by an operator
    SUPERSEDED = "superseded"  # a newer manifest of the study was queued before this one was sent
    SKIPPED = "skipped"  # DESTDMP=N, or the DMP is disabled

    TERMINAL = frozenset({DONE, FAILED, CANCELLED, SUPERSEDED, SKIPPED})


@dataclass(frozen=True)
class PublicationRecord(_Record):
    id: int
    study_uid: str
    kos_uid: str
    action: str  # register | delete
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str
    dmp_entry_uuid: str | None
    replaces_entry_uuid: str | None
    created_at: float
    updated_at: float
    ready_at: float
    done_at: float | None
    claimed_by: str | None = None
    claimed_until: float | None = None
