"""Introspection answers cached by the raw access token, never beyond the token's own expiry.

The cache itself is the box's one TTL cache (:class:`drimbox.util.ttl_cache.TtlCache`); this module only
decides how long an answer may live.
"""

from __future__ import annotations

from typing import Callable

from drimbox.psc.model import Introspection
from drimbox.util.ttl_cache import TtlCache


class IntrospectionCache:
    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float], max_entries: int = 10_000) -> None:
        """``clock`` is the epoch clock token expiries (``exp``) are written in."""
        self._cache: TtlCache[str, Introspection] = TtlCache(ttl_seconds, clock=clock, max_entries=max_entries)

    def get(self, token: str) -> Introspection | None:
        return self._cache.get(token)

    def put(self, token: str, answer: Introspection, token_exp: float = 0.0) -> None:
        """Keep ``answer`` for the TTL, never beyond the token's expiry (``token_exp``, epoch; 0 = unknown)."""
        exp = answer.exp or token_exp
        self._cache.put(token, answer, not_after=exp or None)

    def forget(self, token: str) -> None:
        self._cache.forget(token)

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)
