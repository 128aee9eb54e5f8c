"""A small thread-safe TTL cache of introspection answers, keyed by the raw access token.

A hit is one lock, one dict lookup and one comparison: the peer access decision has a 2 ms budget.
"""

from __future__ import annotations

import threading
from typing import Callable

from drimbox.psc.model import Introspection


class IntrospectionCache:
    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float], max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, Introspection]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Introspection | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            if now >= entry[0]:
                del self._entries[token]
                return None
            return entry[1]

    def put(self, token: str, answer: Introspection, token_exp: float = 0.0) -> None:
        """Keep ``answer`` for the TTL, never beyond the token's expiry (``token_exp``, epoch; 0 = unknown)."""
        if self._ttl <= 0:
            return
        now = self._clock()
        until = now + self._ttl
        exp = answer.exp or token_exp
        if exp:
            until = min(until, exp)
        if until <= now:
            return
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._evict(now)
            self._entries[token] = (until, answer)

    def forget(self, token: str) -> None:
        with self._lock:
            self._entries.pop(token, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self, now: float) -> None:
        expired = [t for t, (until, _) in self._entries.items() if until <= now]
        for token in expired:
            del self._entries[token]
        while len(self._entries) >= self._max_entries:
            # Dicts keep insertion order: drop the oldest entries first.
            del self._entries[next(iter(self._entries))]
