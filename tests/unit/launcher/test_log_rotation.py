"""The demo launcher's size-based rotation: a process keeps writing to the log it was started with, the log is
copied to .1 and emptied in place, older copies shift, and at most ``keep`` copies stay."""

from __future__ import annotations

import sys
import time

import pytest

from drimbox.launcher.log_rotation import LogRotation, rotate
from drimbox.launcher.processes import ManagedProcess

# a writer like Orthanc: its stdout is the log file the launcher opened for it
WRITER = "import sys, time\nfor i in range(100000):\n    print(f'line {i:06d}', flush=True)\n    time.sleep(0.002)\n"


def numbers(path) -> list[int]:
    return [int(line.split()[1]) for line in path.read_text().splitlines() if line.startswith("line ")]


def wait_for_lines(path, count: int) -> None:
    deadline = time.monotonic() + 20
    while len(numbers(path)) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_running_writer_goes_on_in_the_emptied_log_after_a_rotation(tmp_path):
    log = tmp_path / "logs" / "orthanc.log"
    writer = ManagedProcess("writer", [sys.executable, "-c", WRITER], log_path=log)
    writer.start()
    try:
        wait_for_lines(log, 50)
        rotation = LogRotation([log.parent], max_bytes=200, keep=2)
        assert rotation.rotate_once() == [log]
        first = numbers(log.with_name("orthanc.log.1"))
        assert len(first) >= 50
        wait_for_lines(log, 50)
        after = numbers(log)
        # the writer's new lines start at the beginning of the emptied file, right after the copied ones
        assert log.read_text().startswith("line ") and min(after) > max(first)
        assert rotation.rotate_once() == [log]
        assert numbers(log.with_name("orthanc.log.2")) == first  # the older copy shifted
        wait_for_lines(log, 50)
        assert rotation.rotate_once() == [log]  # a third copy would be past keep=2: the oldest is dropped
        assert sorted(p.name for p in log.parent.iterdir()) == ["orthanc.log", "orthanc.log.1", "orthanc.log.2"]
        assert min(numbers(log.with_name("orthanc.log.1"))) > max(numbers(log.with_name("orthanc.log.2")))
    finally:
        writer.stop()


def test_a_small_log_and_rotated_copies_are_left_alone(tmp_path):
    (tmp_path / "nginx-access.log").write_text("x" * 99)
    (tmp_path / "nginx-access.log.1").write_text("y" * 500)
    assert LogRotation([tmp_path], max_bytes=100).rotate_once() == []
    assert rotate(tmp_path / "missing.log", 1, 3) is False
    with pytest.raises(ValueError):
        LogRotation([tmp_path], max_bytes=0)
