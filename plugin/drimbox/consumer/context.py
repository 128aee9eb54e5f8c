"""A working context: one appel contextuel, bound to one browser session, with an expiry.

The context id goes in URLs; it is random (256 bits) and worthless without the browser binding cookie, whose
value the store keeps only as a SHA-256 digest. Two tabs or two professionals each get their own context.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from drimbox.consumer.appel import AppelContextuel
from drimbox.consumer.reasons import ConsumerReason

BINDING_COOKIE = "drimbox_consumer"
CONTEXT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_context_id() -> str:
    return secrets.token_urlsafe(32)


def new_binding() -> str:
    return secrets.token_urlsafe(32)


def binding_digest(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()


@dataclass(frozen=True)
class ConsumerContext:
    context_id: str
    binding_digest: str
    created_at: float
    expires_at: float
    appel: AppelContextuel
    professional_id: str = ""  # idNat of the professional who took the context (first PSC login on it)
    activity_key: str = ""
    structure_id: str = ""
    reason: str = ""  # a ConsumerReason value
    reason_text: str = ""  # free text of the "other" reason: for the audit trail

    @property
    def access_reason(self) -> ConsumerReason | None:
        return ConsumerReason(self.reason) if self.reason else None

    def is_bound_to(self, binding: str, now: float) -> bool:
        """Whether the browser presenting ``binding`` may use this context at ``now``."""
        return bool(binding) and now < self.expires_at and hmac.compare_digest(
            self.binding_digest, binding_digest(binding))

    def with_activity(self, professional_id: str, activity_key: str, structure_id: str) -> "ConsumerContext":
        return dataclasses.replace(self, professional_id=professional_id, activity_key=activity_key,
                                   structure_id=structure_id)

    def with_reason(self, reason: ConsumerReason, text: str = "") -> "ConsumerContext":
        return dataclasses.replace(self, reason=reason.value, reason_text=text.strip())
