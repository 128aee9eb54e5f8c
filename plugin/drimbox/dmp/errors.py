"""What can go wrong talking to the DMP, split by what the caller should do about it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RegistryError:
    """One ``rs:RegistryError`` of a RegistryResponse."""

    code: str
    context: str = ""
    location: str = ""
    severity: str = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"{self.code}{where}: {self.context}" if self.context else f"{self.code}{where}"


class DmpError(Exception):
    """Base of the DMP client's errors."""

    retryable = False


class DmpRejected(DmpError):
    """The DMP answered and refused the request (RegistryResponse Failure). Retrying the same lot will not help."""

    retryable = False

    def __init__(self, errors: list[RegistryError], message: str = ""):
        self.errors = list(errors)
        summary = "; ".join(str(error) for error in self.errors) or "no RegistryError given"
        super().__init__(message or f"DMP rejected the request: {summary}")


class DmpUnavailable(DmpError):
    """The DMP could not be reached or did not answer usefully (network, timeout, 5xx, SOAP fault). Retry later."""

    retryable = True

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"DMP unavailable: {reason}")


class MetadataError(ValueError):
    """The inputs of a lot lack something the DMP requires; the message names the missing field."""
