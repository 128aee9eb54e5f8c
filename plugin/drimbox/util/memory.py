"""Giving memory back to the system once a large piece of work is over.

Reading a 10,000-instance study from Orthanc's REST API makes tens of megabytes of short-lived JSON objects.
Python frees them, but glibc keeps the freed heap pages in the process (Orthanc's, here) until told otherwise,
so the resident size stays at its peak. ``malloc_trim`` hands them back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger("drimbox.memory")
_malloc_trim = None
_looked_up = False


def release_memory() -> None:
    """Collect garbage and return free heap pages to the system (a no-op where glibc is absent)."""
    global _malloc_trim, _looked_up
    gc.collect()
    if not _looked_up:
        _looked_up = True
        try:
            _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            log.info("malloc_trim is not available: freed memory stays with the process")
    if _malloc_trim is not None:
        _malloc_trim(0)
