"""Several Orthanc on one index: a study counts as stable only once its shared LastUpdate is old enough."""

from __future__ import annotations

import calendar
import time

from drimbox.pacs.reader import PacsReader


class StudyAnswer:
    """Orthanc's GET /studies/{id} as one node sees it (it reports IsStable for a study another node received)."""

    def __init__(self, last_update: float):
        self.last_update = last_update

    def get_json(self, path: str, **_) -> dict:
        return {"IsStable": True, "LastUpdate": time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.last_update)),
                "MainDicomTags": {"StudyInstanceUID": "1.2.3"}}


NOW = float(calendar.timegm((2024, 5, 1, 12, 0, 0)))


def test_a_study_updated_within_the_quiet_time_is_not_stable_yet():
    reader = PacsReader(StudyAnswer(NOW - 1), store=None, quiet_seconds=3, clock=lambda: NOW)
    assert not reader.study_by_id("o1").is_stable


def test_a_quiet_study_is_stable():
    reader = PacsReader(StudyAnswer(NOW - 3), store=None, quiet_seconds=3, clock=lambda: NOW)
    assert reader.study_by_id("o1").is_stable


def test_one_node_trusts_orthanc_alone():
    reader = PacsReader(StudyAnswer(NOW), store=None, clock=lambda: NOW)
    assert reader.study_by_id("o1").is_stable
