"""Fault injection for tests: the next N requests (or all, until reset) are slowed, failed or dropped."""

from __future__ import annotations

import threading
from dataclasses import dataclass

MODES = ("none", "slow", "http500", "soap_fault", "drop")


@dataclass(frozen=True)
class Fault:
    mode: str
    delay_seconds: float


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mode = "none"
        self._delay = 0.0
        self._remaining: int | None = None

    def configure(self, mode: str, delay_seconds: float = 0.0, count: int | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}; expected one of {', '.join(MODES)}")
        if count is not None and (not isinstance(count, int) or count < 0):
            raise ValueError("count must be a non-negative integer or null")
        if not isinstance(delay_seconds, (int, float)) or delay_seconds < 0:
            raise ValueError("delay_seconds must be a non-negative number")
        with self._lock:
            self._mode, self._delay, self._remaining = mode, float(delay_seconds), count

    def take(self) -> Fault | None:
        """The fault to apply to the request being served, consuming one from the count."""
        with self._lock:
            if self._mode == "none" or self._remaining == 0:
                return None
            if self._remaining is not None:
                self._remaining -= 1
            return Fault(self._mode, self._delay)

    def state(self) -> dict:
        with self._lock:
            return {"mode": self._mode, "delay_seconds": self._delay, "count": self._remaining}
