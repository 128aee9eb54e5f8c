"""When the change follower reads Orthanc's change log again (there is no change callback to wake it)."""

from __future__ import annotations

from drimbox.pipeline.workers import STABLE_POLL_SECONDS, STABLE_WINDOW_SECONDS, follower_wait


def test_idle_box_polls_at_the_regular_interval():
    assert follower_wait(100.0, None, stable_age=10, poll_seconds=5) == 5


def test_after_an_instance_it_wakes_when_the_study_can_become_stable():
    assert follower_wait(103.0, 100.0, stable_age=10, poll_seconds=30) == 7  # StableAge after the last instance
    assert follower_wait(103.0, 100.0, stable_age=10, poll_seconds=5) == 5  # never later than the regular poll


def test_then_reads_often_while_orthanc_may_mark_it_stable():
    for since in (10.0, 11.0, 10 + STABLE_WINDOW_SECONDS - 0.01):
        assert follower_wait(100.0 + since, 100.0, stable_age=10, poll_seconds=5) == STABLE_POLL_SECONDS


def test_and_back_to_the_regular_interval_afterwards():
    assert follower_wait(100.0 + 10 + STABLE_WINDOW_SECONDS, 100.0, stable_age=10, poll_seconds=5) == 5


def test_arrivals_read_from_the_log_only_move_forward():
    import time

    from drimbox.pipeline.workers import Workers

    workers = Workers(store=None, studies=None, reconciler=None, follower=None, publisher=None)  # type: ignore[arg-type]
    workers.instances_arrived(time.time() - 3)
    seen = workers._last_arrival
    assert seen is not None and abs((time.monotonic() - seen) - 3) < 0.5
    workers.instances_arrived(time.time() - 30)  # an older page of the log
    assert workers._last_arrival == seen
    workers.instances_arrived(time.time() + 60)  # a clock ahead of ours counts as now, never as the future
    assert workers._last_arrival is not None and workers._last_arrival <= time.monotonic()


def test_a_page_of_the_log_reports_its_newest_instance_arrival():
    import calendar

    from drimbox.pipeline.changes import read_changes

    page = {"Last": 4, "Done": True, "Changes": [
        {"ChangeType": "NewInstance", "ResourceType": "Instance", "ID": "a", "Date": "20261206T120005"},
        {"ChangeType": "NewInstance", "ResourceType": "Instance", "ID": "b", "Date": "20261206T120007"},
        {"ChangeType": "StableStudy", "ResourceType": "Study", "ID": "s", "Date": "20261206T120010"},
        {"ChangeType": "NewInstance", "ResourceType": "Instance", "ID": "c", "Date": "garbled"}]}
    batch = read_changes(page)
    # Orthanc's dates are UTC to the second: the instance arrived before the end of that second
    assert batch.last_arrival == calendar.timegm((2026, 12, 6, 12, 0, 8))
    assert batch.stable_studies == ["s"]
    assert read_changes({"Last": 4, "Changes": [{"ChangeType": "StableStudy", "ID": "s"}]}).last_arrival is None
