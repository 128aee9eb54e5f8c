"""One log line per event: a message or a traceback spanning several lines is folded into one, so each line of
Orthanc's log (or the journal) is a whole event that grep, logrotate and log shippers keep together."""

from __future__ import annotations

import logging

SEPARATOR = " | "


def one_line(text: str) -> str:
    return SEPARATOR.join(line.strip() for line in text.splitlines() if line.strip())


class OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return one_line(super().format(record))
