"""The two ways a request is refused: an XDS RegistryError list, or a SOAP fault (envelope and security level)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn


@dataclass(frozen=True)
class RegistryErrorItem:
    code: str  # e.g. XDSRegistryMetadataError
    context: str  # human text naming the offending item
    location: str = ""  # the object id / element concerned


class XdsRefusal(Exception):
    """Refusal answered as a RegistryResponse (or AdhocQueryResponse ...) with status Failure."""

    def __init__(self, errors: list[RegistryErrorItem]):
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.code}: {e.context}" for e in self.errors))

    @classmethod
    def one(cls, code: str, context: str, location: str = "") -> "XdsRefusal":
        return cls([RegistryErrorItem(code, context, location)])


@dataclass
class SoapFaultError(Exception):
    """Refusal answered as a SOAP 1.2 Fault (malformed envelope, WS-Addressing, WS-Security / VIHF)."""

    subcode: str  # qualified name, e.g. "wsse:FailedCheck", "wsa:ActionMismatch"
    reason: str
    code: str = "soap:Sender"
    http_status: int = 400  # SOAP 1.2 HTTP binding: Sender faults are 400, Receiver faults 500
    detail: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}/{self.subcode}: {self.reason}"


class ErrorCollector:
    """Gathers every metadata error of a submission so the answer lists them all, like the national validators."""

    def __init__(self) -> None:
        self.errors: list[RegistryErrorItem] = []

    def add(self, code: str, context: str, location: str = "") -> None:
        self.errors.append(RegistryErrorItem(code, context, location))

    def raise_if_any(self) -> None:
        if self.errors:
            raise XdsRefusal(self.errors)

    def refuse(self) -> NoReturn:
        """Refuse with what was gathered (the caller found something that stops the checks)."""
        raise XdsRefusal(self.errors or [RegistryErrorItem("XDSRegistryMetadataError", "refused", "")])

    def __bool__(self) -> bool:
        return bool(self.errors)
