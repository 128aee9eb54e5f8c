"""Port sets: fixed defaults for a person's box, free loopback ports for tests."""

from __future__ import annotations

import socket
from dataclasses import dataclass, fields


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class BoxPorts:
    admin: int = 8440  # operator: Orthanc Explorer + operator API (TLS, password)
    db: int = 8443  # peers' WADO-RS
    vi: int = 8444  # viewer
    orthanc_http: int = 8042  # remote clients refused; believed only with nginx's secret
    dicom: int = 4242
    hl7: int = 2575

    @classmethod
    def free(cls) -> "BoxPorts":
        return cls(**{f.name: free_port() for f in fields(cls)})

    @classmethod
    def shifted(cls, offset: int) -> "BoxPorts":
        base = cls()
        return cls(**{f.name: getattr(base, f.name) + offset for f in fields(cls)})


@dataclass(frozen=True)
class NodePorts:
    """What each further node of a box needs of its own (nginx and the public entries stay shared)."""

    orthanc_http: int
    dicom: int
    hl7: int

    @classmethod
    def free(cls) -> "NodePorts":
        return cls(**{f.name: free_port() for f in fields(cls)})

    @classmethod
    def after(cls, ports: BoxPorts, index: int) -> "NodePorts":
        return cls(ports.orthanc_http + index, ports.dicom + index, ports.hl7 + index)


@dataclass(frozen=True)
class SimulatorPorts:
    dmp: int = 8445
    psc: int = 8446

    @classmethod
    def free(cls) -> "SimulatorPorts":
        return cls(dmp=free_port(), psc=free_port())
