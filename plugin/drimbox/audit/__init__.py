"""Audit trail records: what was accessed, by whom, why, with which outcome. The lead persists them."""

from drimbox.audit.event import AuditEvent
from drimbox.audit.query import AuditQuery

__all__ = ["AuditEvent", "AuditQuery"]
