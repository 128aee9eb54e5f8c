"""One thread-safe, bounded cache whose entries expire: the box's only in-memory cache of answers.

A hit is one lock, one dict lookup and one comparison (the peer access decision has a 2 ms budget). Entries never
outlive the TTL nor a per-entry deadline given by the caller (e.g. a token's own expiry). When full, expired
entries go first, then the oldest ones (dicts keep insertion order).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = 10_000) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0 (0 disables the cache)")
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._ttl = ttl_seconds
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry[0]:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: K, value: V, *, not_after: float | None = None) -> None:
        """Keep ``value`` for the TTL, and never at or beyond ``not_after`` (same clock as the cache's)."""
        if self._ttl <= 0:
            return
        now = self._clock()
        until = now + self._ttl
        if not_after is not None:
            until = min(until, not_after)
        if until <= now:
            return
        with self._lock:
            self._entries.pop(key, None)
            if len(self._entries) >= self._max_entries:
                self._evict(now)
            self._entries[key] = (until, value)

    def forget(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self, now: float) -> None:
        for key in [k for k, (until, _) in self._entries.items() if until <= now]:
            del self._entries[key]
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
