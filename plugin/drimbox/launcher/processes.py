"""Child processes with readiness checks and clean, bounded shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable


class ProcessError(RuntimeError):
    pass


class ManagedProcess:
    def __init__(self, name: str, argv: list[str], *, log_path: Path, env: dict | None = None, cwd: str | None = None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                                        start_new_session=True)
        log.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None:
                raise ProcessError(f"{self.name} was never started")
            if self.process.poll() is not None:
                raise ProcessError(f"{self.name} exited with status {self.process.returncode} before {what}; "
                                   f"see {self.log_path}:\n{self.tail()}")
            try:
                if ready():
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise ProcessError(f"{self.name} did not become ready ({what}) within {timeout:.0f} s; see {self.log_path}:\n"
                           f"{self.tail()}")

    def stop(self, timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_for_port(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
