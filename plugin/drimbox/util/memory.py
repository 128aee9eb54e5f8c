"""Giving memory back to the system once a large piece of work is over.

Reading a 10,000-instance study from Orthanc's REST API makes tens of megabytes of short-lived JSON objects.
Python frees them, but glibc keeps the freed heap pages in the process (Orthanc's, here) until told otherwise,
so the resident size stays at its peak. ``malloc_trim`` hands them back.

That is not enough for large buffers (listings, response bodies, encoded manifests: megabytes each). glibc
serves a request above its mmap threshold with its own mapping, returned to the system on free, but every such
free raises the threshold (up to 32 MB), so the next large buffers come from the heap, where they fragment:
measured on 10,000-instance manifests, Orthanc's heap grew by 10-15 MB per build, free but not returnable,
while Python's own memory stayed flat. :func:`keep_large_buffers_mapped` fixes the threshold instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger("drimbox.memory")
_malloc_trim = None
_looked_up = False


MMAP_THRESHOLD_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")  # find_library would run ldconfig in a subprocess (a fork of Orthanc)
    except OSError:
        name = ctypes.util.find_library("c")
        return ctypes.CDLL(name) if name else None


def keep_large_buffers_mapped(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Process-wide: allocations of ``threshold`` bytes or more get their own mapping, returned on free.

    An uncompressed 512x512 CT or MR image (512 KB) stays below 1 MB: ingest is not concerned. False where
    glibc is absent."""
    try:
        libc = _libc()
        return bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, threshold) == 1)
    except (OSError, AttributeError):
        return False


def release_memory() -> None:
    """Collect garbage and return free heap pages to the system (a no-op where glibc is absent)."""
    global _malloc_trim, _looked_up
    gc.collect()
    if not _looked_up:
        _looked_up = True
        try:
            libc = _libc()
            _malloc_trim = libc.malloc_trim if libc is not None else None
        except (OSError, AttributeError):
            log.info("malloc_trim is not available: freed memory stays with the process")
    if _malloc_trim is not None:
        _malloc_trim(0)
