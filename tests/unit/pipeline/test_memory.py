"""release_memory is safe to call at any time, from any thread."""

from __future__ import annotations

import threading

from drimbox.util import memory


def test_release_memory_collects_and_trims_without_failing():
    garbage = [[object()] * 100 for _ in range(1000)]
    del garbage
    memory.release_memory()
    assert memory._looked_up and memory._malloc_trim is not None  # glibc on Debian
    errors = []

    def again():
        try:
            memory.release_memory()
        except Exception as error:  # pragma: no cover - the assertion below reports it
            errors.append(error)

    threads = [threading.Thread(target=again) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


MALLINFO = '''
import ctypes
from drimbox.util import memory

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
if FIX:
    assert memory.keep_large_buffers_mapped()
first = bytearray(8 << 20)  # mapped: above glibc's initial 128 kB threshold...
del first  # ...whose free raises the threshold to 8 MB when nothing fixed it
before = libc.mallinfo2().hblkhd
second = bytearray(4 << 20)
print(libc.mallinfo2().hblkhd - before)
'''


def _mapped_after_a_large_free(fix: bool) -> int:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", f"FIX = {fix}\n" + MALLINFO], capture_output=True, text=True,
                            check=True, timeout=60)
    return int(result.stdout.strip())


def test_large_buffers_keep_their_own_mapping_after_a_large_free():
    # in a child process: mallopt is process-wide
    assert _mapped_after_a_large_free(True) >= 4 << 20  # a mapping of its own, returned to the system on free
    assert _mapped_after_a_large_free(False) == 0  # glibc's default: from the heap, where it fragments
