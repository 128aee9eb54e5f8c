"""Free ports for tests and ``--free-ports``: outside the range the kernel hands to outgoing connections (a port
taken there can be grabbed by any client socket before Orthanc binds it), never twice, never one in use."""

from __future__ import annotations

import socket

import pytest

from drimbox.launcher import ports
from drimbox.launcher.ports import BoxPorts, free_port


def ephemeral_low() -> int:
    return int(ports.EPHEMERAL_RANGE.read_text().split()[0])


def test_free_ports_stay_below_the_ephemeral_range_and_are_never_handed_out_twice():
    chosen = [free_port() for _ in range(300)]
    assert len(set(chosen)) == len(chosen)
    assert all(1024 < port < ephemeral_low() for port in chosen)


def test_a_box_gets_six_distinct_ports():
    box = BoxPorts.free()
    values = [box.admin, box.db, box.vi, box.orthanc_http, box.dicom, box.hl7]
    assert len(set(values)) == 6


def test_a_port_something_listens_on_is_skipped(monkeypatch):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        monkeypatch.setattr(ports, "_below_ephemeral_range", lambda: range(busy, busy + 1))
        with pytest.raises(OSError, match=f"no free port found in {busy}-{busy}"):
            free_port()
