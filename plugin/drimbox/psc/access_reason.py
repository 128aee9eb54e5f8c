"""Why a professional opens a patient's images, and the VIHF purpose of use it maps to."""

from __future__ import annotations

from enum import Enum

PURPOSE_OF_USE_CODE_SYSTEM = "1.2.250.1.213.1.1.4.248"


class AccessReason(str, Enum):
    CONSENT = "consent"  # information given and consent collected
    EMERGENCY = "emergency"  # vital emergency ("bris de glace")
    REGULATION = "regulation"  # medical regulation (centre 15)

    @property
    def purpose_of_use(self) -> str:
        """The VIHF ``purposeofuse`` code."""
        return _PURPOSE_OF_USE[self]

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def parse(cls, value: str) -> "AccessReason":
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(r.value for r in cls)
            raise ValueError(f"unknown access reason {value!r}; expected one of {known}") from None


_PURPOSE_OF_USE = {
    AccessReason.CONSENT: "normal",
    AccessReason.EMERGENCY: "bris_de_glace",
    AccessReason.REGULATION: "centre_15",
}

_LABELS = {
    AccessReason.CONSENT: "Patient informé, consentement recueilli",
    AccessReason.EMERGENCY: "Urgence vitale (bris de glace)",
    AccessReason.REGULATION: "Régulation médicale (centre 15)",
}
