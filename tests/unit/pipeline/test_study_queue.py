"""The study queue shared by the change follower, the HL7 intake and the reconcile threads."""

from __future__ import annotations

import threading

from drimbox.pipeline.study_queue import StudyQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_study_waits_at_most_once_and_can_be_scheduled_again_once_taken() -> None:
    studies = StudyQueue(Clock())
    for uid in ("1.2", "1.3", "1.2", "1.2"):
        studies.schedule(uid)
    assert [studies.next_study(), studies.next_study()] == ["1.2", "1.3"] and studies.empty()
    studies.schedule("1.2")
    assert studies.next_study() == "1.2"


def test_a_recheck_is_scheduled_when_due_and_wakes_the_follower() -> None:
    clock = Clock()
    studies = StudyQueue(clock)
    studies.schedule_at(1010.0, "1.2")
    studies.schedule_at(1005.0, "1.3")
    assert studies.wake.is_set()
    assert studies.schedule_due() == 1005.0 and studies.empty()
    clock.now = 1006.0
    assert studies.schedule_due() == 1010.0 and studies.next_study() == "1.3" and studies.empty()
    clock.now = 1020.0
    assert studies.schedule_due() is None and studies.next_study() == "1.2"


def test_release_wakes_blocked_readers_with_none() -> None:
    studies = StudyQueue(Clock())
    got: list[str | None] = []
    readers = [threading.Thread(target=lambda: got.append(studies.next_study())) for _ in range(2)]
    for reader in readers:
        reader.start()
    studies.release(2)
    for reader in readers:
        reader.join(5)
    assert got == [None, None]
