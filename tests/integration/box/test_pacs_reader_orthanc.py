"""What a manifest is built from, read from a real Orthanc 1.10 at the study-stable moment (no callback ran as
the instances were stored): SOP classes from the instances' metadata by bulk-content, key objects classified,
IOCM-rejected instances left out; and the arrival times the change follower reads from the change log."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from support.orthanc import plain_orthanc

from drimbox.kos.classify import apply_rejections
from drimbox.pacs.key_objects import KOS_SOP_CLASS
from drimbox.pacs.reader import PacsReader
from drimbox.pacs.rest import OrthancRest
from drimbox.pipeline.changes import ChangeFollower
from drimbox.samples.studies import make_key_image_note, make_rejection_note
from drimbox.store import Store
from drimbox.testing import demo_study


def upload(base: str, folder: Path) -> list[str]:
    ids = []
    for path in sorted(folder.rglob("*.dcm")):
        answer = requests.post(f"{base}/instances", data=path.read_bytes(), timeout=10)
        answer.raise_for_status()
        ids.append(answer.json()["ID"])
    return ids


def refs(content) -> set[tuple[str, str, str, int | None]]:
    return {(s.series_uid, i.sop_instance_uid, i.sop_class_uid, i.instance_number)
            for s in content.series for i in s.instances}


@pytest.fixture
def orthanc(tmp_path):
    with plain_orthanc(tmp_path / "orthanc") as base:
        yield base


@pytest.fixture
def reader(orthanc, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'drimbox.db'}")
    # two instances per call: a 5-image series takes three calls
    yield PacsReader(OrthancRest(orthanc), store, batch_size=2)
    store.db.close()


def test_study_content_from_metadata_with_key_objects_and_rejections(orthanc, reader, tmp_path):
    study = demo_study(tmp_path / "study", series=(("CT", 5), ("MR", 1)))
    study = make_key_image_note(tmp_path / "study", study)
    rejected = study.series[0].instances[2].sop_instance_uid
    study = make_rejection_note(tmp_path / "study", study, [rejected])
    upload(orthanc, tmp_path / "study")

    found = reader.find_study(study.study_uid)
    assert found is not None
    content = reader.study_content(found)

    expected = apply_rejections(study, {rejected})
    assert refs(content) == refs(expected)
    assert rejected not in {i.sop_instance_uid for s in content.series for i in s.instances}
    kinds = {i.sop_instance_uid: i.kind for s in content.series for i in s.instances
             if i.sop_class_uid == KOS_SOP_CLASS}
    assert sorted(kinds.values()) == ["key_images", "rejection"]
    assert [i.instance_number for i in content.series[0].instances] == [1, 2, 4, 5]
    # the key objects' kinds are kept: a second build reads no file
    reader.rest.get_bytes = lambda path: pytest.fail(f"{path} read again")
    assert refs(reader.study_content(found)) == refs(expected)


def test_an_instance_deleted_since_the_listing_is_left_out(orthanc, reader, tmp_path):
    study = demo_study(tmp_path / "study", series=(("CT", 3),))
    ids = upload(orthanc, tmp_path / "study")
    requests.delete(f"{orthanc}/instances/{ids[1]}", timeout=10).raise_for_status()
    listed = [orthanc_id for orthanc_id, _, _ in reader.series_instances(ids)]
    assert listed == [ids[0], ids[2]]
    assert study.series[0].instances[0].sop_class_uid == next(iter(reader.series_instances(ids[:1])))[2]


def test_the_follower_learns_when_instances_arrived_from_the_change_log(orthanc, reader, tmp_path):
    """Orthanc's change dates are UTC with one-second resolution: the arrival is the end of that second."""
    arrivals: list[float] = []
    follower = ChangeFollower(reader.rest, reader, reader.store, on_stable_study=lambda uid: None,
                              on_instances_arrived=arrivals.append)
    before = time.time()
    demo_study(tmp_path / "study", series=(("CT", 2),))
    upload(orthanc, tmp_path / "study")
    after = time.time()
    follower.poll()
    assert len(arrivals) == 1
    assert int(before) < arrivals[0] <= int(after) + 1
    follower.poll()  # nothing new in the log: no arrival reported again
    assert len(arrivals) == 1
