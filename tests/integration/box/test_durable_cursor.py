"""Issue 2: the change cursor is durable. Orthanc stops before a study is stable; after the restart the KOS
is built all the same (the STABLE_STUDY event is never delivered to plugins in that case)."""

from __future__ import annotations

import time

import pytest
from source_helpers import check_kos, mllp, new_study, report_for, store_scu, wait_manifest

from drimbox.samples.reports import make_oru
from drimbox.testing import BoxClient, demo_study, start_box

pytestmark = pytest.mark.integration

STABLE_AGE = 8  # long enough to stop Orthanc before the study is stable


@pytest.fixture(scope="module")
def box(tmp_path_factory, pki):
    instance = start_box(tmp_path_factory.mktemp("cursor-box"), pki=pki, stable_age=STABLE_AGE,
                         settings={"Publication": {"ChangesPollSeconds": 1.0}})
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def operator(box) -> BoxClient:
    return BoxClient(box)


def stop_and_restart(box) -> None:
    box.orthanc.stop(timeout=30)
    box.restart_orthanc()


def test_report_first_then_study_stored_just_before_a_stop(box, operator, tmp_path):
    content, folder = new_study(tmp_path, "a", series=(("CT", 3),))
    assert mllp(box, make_oru(report_for(content)))[0] == "AA"
    started = time.monotonic()
    store_scu(box, folder)
    stop_and_restart(box)
    assert time.monotonic() - started < STABLE_AGE + 30
    status = wait_manifest(operator, content.study_uid, timeout=STABLE_AGE + 30)
    assert status["kos"]["instance_count"] == 3
    check_kos(box, operator, content, tmp_path)


def test_study_stored_just_before_a_stop_then_report(box, operator, tmp_path):
    content, folder = new_study(tmp_path, "b", series=(("CT", 2),))
    store_scu(box, folder)
    stop_and_restart(box)
    assert mllp(box, make_oru(report_for(content)))[0] == "AA"
    status = wait_manifest(operator, content.study_uid, timeout=STABLE_AGE + 30)
    assert status["kos"]["instance_count"] == 2


def test_images_added_after_the_kos_just_before_a_stop(box, operator, tmp_path):
    content, folder = new_study(tmp_path, "c", series=(("CT", 2),))
    store_scu(box, folder)
    assert mllp(box, make_oru(report_for(content)))[0] == "AA"
    first = wait_manifest(operator, content.study_uid, timeout=STABLE_AGE + 30)["kos"]
    demo_study(tmp_path / "c-more", study_uid=content.study_uid, accession=content.accession, series=(("CT", 2),))
    store_scu(box, tmp_path / "c-more")
    stop_and_restart(box)
    second = wait_manifest(operator, content.study_uid, after=first["kos_uid"], timeout=STABLE_AGE + 30)["kos"]
    assert second["instance_count"] == 4 and second["replaces_kos_uid"] == first["kos_uid"]
