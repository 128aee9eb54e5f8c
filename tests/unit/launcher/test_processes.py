import pytest

from drimbox.launcher.processes import ManagedProcess, ProcessError


def test_waiting_on_a_process_never_started_says_so(tmp_path):
    process = ManagedProcess("probe", ["true"], log_path=tmp_path / "probe.log")
    with pytest.raises(ProcessError, match="probe was never started"):
        process.wait_until(lambda: True, 1, "ready")


def test_a_process_that_exits_before_ready_is_reported_with_its_status_and_log(tmp_path):
    process = ManagedProcess("probe", ["sh", "-c", "echo boom; exit 3"], log_path=tmp_path / "probe.log")
    process.start()
    with pytest.raises(ProcessError, match="exited with status 3 before listening") as raised:
        process.wait_until(lambda: False, 10, "listening")
    assert "boom" in str(raised.value)


def test_stop_ends_a_running_process_and_is_idempotent(tmp_path):
    process = ManagedProcess("probe", ["sleep", "30"], log_path=tmp_path / "probe.log")
    process.stop()  # never started: nothing to do
    process.start()
    assert process.running
    process.stop(timeout=5)
    assert not process.running
    assert process.process is not None and process.process.returncode is not None
    process.stop()
