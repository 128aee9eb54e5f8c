"""Size-based rotation of the demo launcher's logs (Orthanc's output, nginx's logs, the simulators').

Every process keeps writing to the same open file (Orthanc's stdout, nginx's logs: all opened in append mode),
so a log is copied to ``<name>.1`` and then truncated in place ("copytruncate"): the writer's next line lands at
the start of the emptied file, without a signal or a restart. Lines written between the copy and the truncation
(a few microseconds) are lost; the production install rotates with logrotate and signals nginx instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("drimbox.launcher")

PATTERNS = ("*.log", "*.out")


def rotate(path: Path, max_bytes: int, keep: int) -> bool:
    """Rotate ``path`` when it holds ``max_bytes`` or more: ``.1`` is the newest copy, ``.<keep>`` the oldest."""
    try:
        if path.stat().st_size < max_bytes:
            return False
    except FileNotFoundError:
        return False
    for index in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
    shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    os.truncate(path, 0)
    return True


class LogRotation:
    """Looks at the logs of some folders every ``interval`` seconds from a thread of the launcher."""

    def __init__(self, folders: Iterable[Path], *, max_bytes: int, keep: int = 5, interval: float = 30.0):
        if max_bytes < 1 or keep < 1:
            raise ValueError("log rotation needs max_bytes >= 1 and keep >= 1")
        self.folders = list(folders)
        self.max_bytes = max_bytes
        self.keep = keep
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def rotate_once(self) -> list[Path]:
        rotated = []
        for folder in self.folders:
            for pattern in PATTERNS:
                for path in sorted(folder.glob(pattern)):
                    if rotate(path, self.max_bytes, self.keep):
                        rotated.append(path)
        return rotated

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.rotate_once()
            except OSError as error:
                log.warning("log rotation failed, next attempt in %.0f s: %s", self.interval, error)

    def start(self) -> "LogRotation":
        self._thread = threading.Thread(target=self._run, name="drimbox-log-rotation", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
