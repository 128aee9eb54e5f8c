"""Errors raised by report intake."""

from __future__ import annotations


class ReportError(ValueError):
    """A report (CDA) or message cannot be used; the message says why."""
