"""Durable state of the box: received messages, reports, studies, manifests, the publication queue,
the audit trail and small key/value facts (change cursor, whitelist in force).

SQLite by default (next to Orthanc's index); the SQL stays in the subset PostgreSQL also speaks.
"""

from drimbox.store.database import Database, open_database
from drimbox.store.records import (
    InstanceFact,
    ManifestRecord,
    MessageRecord,
    PublicationRecord,
    ReportRecord,
    StudyRecord,
)
from drimbox.store.store import Store

__all__ = [
    "Database",
    "InstanceFact",
    "ManifestRecord",
    "MessageRecord",
    "PublicationRecord",
    "ReportRecord",
    "Store",
    "StudyRecord",
    "open_database",
]
