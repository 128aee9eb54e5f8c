"""Studies waiting to be reconciled, shared by whoever notices a change and the reconcile threads.

A study is at most once in the queue (scheduling it again while it waits is a no-op); a study can also be
scheduled for later (a report waiting for its images). ``schedule`` returns at once: Orthanc callbacks and the
HL7 intake call it.
"""

from __future__ import annotations

import heapq
import queue
import threading
from typing import Callable


class StudyQueue:
    def __init__(self, clock: Callable[[], float]):
        """``clock``: the store's clock, the time base of :meth:`schedule_at`."""
        self._clock = clock
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._queued: set[str] = set()
        self._queued_lock = threading.Lock()
        # (clock time, study uid): reconcile again later; not durable (the start-up sweep is)
        self._rechecks: list[tuple[float, str]] = []
        self._rechecks_lock = threading.Lock()
        self.wake = threading.Event()  # set when the change follower has something to do (a recheck, a change)

    def schedule(self, study_uid: str) -> None:
        with self._queued_lock:
            if study_uid in self._queued:
                return
            self._queued.add(study_uid)
        self._queue.put(study_uid)

    def schedule_at(self, when: float, study_uid: str) -> None:
        with self._rechecks_lock:
            heapq.heappush(self._rechecks, (when, study_uid))
        self.wake.set()

    def schedule_due(self) -> float | None:
        """Schedule the rechecks that are due; returns the clock time of the next one (None: no more)."""
        now = self._clock()
        due = []
        with self._rechecks_lock:
            while self._rechecks and self._rechecks[0][0] <= now:
                due.append(heapq.heappop(self._rechecks)[1])
            following = self._rechecks[0][0] if self._rechecks else None
        for study_uid in dict.fromkeys(due):
            self.schedule(study_uid)
        return following

    def next_study(self) -> str | None:
        """Blocks until a study is scheduled; None when :meth:`release` asks a reader to stop."""
        study_uid = self._queue.get()
        if study_uid is not None:
            with self._queued_lock:
                self._queued.discard(study_uid)
        return study_uid

    def empty(self) -> bool:
        return self._queue.empty()

    def release(self, readers: int) -> None:
        """Wake ``readers`` threads blocked in :meth:`next_study` with None."""
        for _ in range(readers):
            self._queue.put(None)
