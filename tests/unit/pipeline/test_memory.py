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
