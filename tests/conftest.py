"""Shared by every test: tests/ is on sys.path (pytest's rootdir conftest), so ``support`` is importable.

A skipped test counts as failed: every tool the suite needs is installed by scripts/setup.sh, so a skip means a
missing install step (or a test that silently stopped testing). ``DRIMBOX_ALLOW_SKIPS=1`` lets a developer run a
subset on a machine that lacks something, knowingly.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and os.environ.get("DRIMBOX_ALLOW_SKIPS") != "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"skipped ({reason}): a skipped test is a missing install step here "
                           "(scripts/setup.sh installs every tool the suite needs; DRIMBOX_ALLOW_SKIPS=1 to allow)")
