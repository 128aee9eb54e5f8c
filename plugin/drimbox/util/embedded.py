"""Keeping pixel codecs out of Orthanc's process.

pydicom (the KOS builder and reader) imports numpy, Pillow and pyjpegls at its own import when they are
installed, for pixel data handlers the box never uses inside Orthanc: it reads key objects and writes
manifests, never pixels. Those three add about 23 MB to Orthanc's resident memory (measured: importing the
adapter costs 73 MB with them, 50 MB without). They stay installed for the command line (sample studies).
Marking them unavailable before pydicom is imported makes pydicom run without its pixel handlers.
"""

from __future__ import annotations

import sys

PIXEL_MODULES = ("numpy", "PIL", "jpeg_ls", "_CharLS")


def keep_pixel_codecs_out() -> None:
    """Call before anything imports pydicom. A later ``import numpy`` raises ImportError."""
    for name in PIXEL_MODULES:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]
