"""Port sets: fixed defaults for a person's box, free loopback ports for tests."""

from __future__ import annotations

import random
import socket
import threading
from dataclasses import dataclass, fields
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def _below_ephemeral_range() -> range:
    """Ports the kernel never gives to an outgoing connection: a port taken with ``bind(0)`` comes from the
    ephemeral range, where any client socket of the machine may take it before our server binds it."""
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(max(1025, low - 12000), low)


def _bindable(port: int) -> bool:
    # no SO_REUSEADDR: a port still in TIME_WAIT or bound on any address is refused, as Orthanc's binding would be
    with socket.socket() as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on, outside the ephemeral range, never handed out twice by this process."""
    candidates = _below_ephemeral_range()
    for _ in range(200):
        port = random.choice(candidates)
        with _handed_out_lock:
            if port in _handed_out or not _bindable(port):
                continue
            _handed_out.add(port)
        return port
    raise OSError(f"no free port found in {candidates.start}-{candidates.stop - 1}")


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
