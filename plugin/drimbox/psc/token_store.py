"""Server-side keeping of a session's PSC tokens, keyed by ``UserSession.session_id``.

The session cookie stays small and never exposes tokens; the consumer side looks the access token up when
it calls a peer. This in-memory store suits one process; several box nodes need a shared implementation
with the same three methods.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class SessionTokens:
    access_token: str
    id_token: str
    refresh_token: str
    expires_at: float  # when the store forgets them (the session's end)


class MemoryTokenStore:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[str, SessionTokens] = {}
        self._lock = threading.Lock()

    def put(self, session_id: str, tokens: SessionTokens) -> None:
        now = self._clock()
        with self._lock:
            for stale in [k for k, v in self._tokens.items() if v.expires_at <= now]:
                del self._tokens[stale]
            self._tokens[session_id] = tokens

    def get(self, session_id: str) -> SessionTokens | None:
        with self._lock:
            tokens = self._tokens.get(session_id)
        if tokens is None or tokens.expires_at <= self._clock():
            return None
        return tokens

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._tokens.pop(session_id, None)
