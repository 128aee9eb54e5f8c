"""Why the professional opens this patient's history, and the VIHF purpose of use it becomes (spec-facts §8)."""

from __future__ import annotations

from enum import Enum


class ConsumerReason(str, Enum):
    CONSENT = "consent"  # information given and consent collected
    EMERGENCY = "emergency"  # vital emergency
    REGULATION = "regulation"  # medical regulation (centre 15)
    OTHER = "other"  # free text, which goes to the audit trail

    @property
    def purpose_of_use(self) -> str:
        return _PURPOSE[self]

    @property
    def needs_text(self) -> bool:
        return self is ConsumerReason.OTHER


# "other" has no purpose code of its own: the DMP sees an ordinary access, the audit trail keeps the text.
_PURPOSE = {
    ConsumerReason.CONSENT: "normal",
    ConsumerReason.EMERGENCY: "bris_de_glace",
    ConsumerReason.REGULATION: "centre_15",
    ConsumerReason.OTHER: "normal",
}
MAX_REASON_TEXT = 500


def parse_reason(value: str, text: str) -> tuple[ConsumerReason, str]:
    """The chosen reason and its cleaned text; ValueError naming what is wrong."""
    try:
        reason = ConsumerReason(value)
    except ValueError:
        raise ValueError("reason") from None
    text = " ".join(text.split())
    if reason.needs_text and not text:
        raise ValueError("reason_text")
    if len(text) > MAX_REASON_TEXT:
        raise ValueError("reason_text")
    return reason, text if reason.needs_text else ""
