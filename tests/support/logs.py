"""Reading the box's logs from tests: nginx writes a request's access line after the response has gone, so a client
can hold the answer before the line is in the file."""

from __future__ import annotations

import time
from pathlib import Path


def logged(path: Path, needle: str, timeout: float = 10.0) -> str:
    """The text of ``path`` once it holds ``needle``, or as it is after ``timeout`` seconds (the caller asserts)."""
    deadline = time.monotonic() + timeout
    while needle not in (text := path.read_text(errors="replace")) and time.monotonic() < deadline:
        time.sleep(0.05)
    return text
