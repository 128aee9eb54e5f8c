"""The one exception of the PSC client."""

from __future__ import annotations


class PscError(Exception):
    """Pro Santé Connect refused, answered something unusable, or a token failed validation.

    ``reason`` is a short stable code the web layer can branch on (for example ``nonce_mismatch``,
    ``expired``, ``bad_signature``, ``http_error``); the message is for humans and logs.
    """

    def __init__(self, message: str, *, reason: str = "psc_error") -> None:
        super().__init__(message)
        self.reason = reason
