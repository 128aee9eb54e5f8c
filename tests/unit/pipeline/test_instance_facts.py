"""The stored-instance recorder: SOP class, key-object kind, rejections and study, from the instance bytes."""

from __future__ import annotations

from pathlib import Path

import pydicom

from drimbox.pipeline.instance_facts import KOS_SOP_CLASS, InstanceFactsRecorder
from drimbox.samples.studies import make_key_image_note, make_rejection_note, make_study
from drimbox.store import Store


def stored(path: Path) -> tuple[str, bytes]:
    return pydicom.dcmread(path, stop_before_pixels=True).SOPClassUID, path.read_bytes()


def test_records_classes_kinds_rejections_and_reports_studies(tmp_path):
    study = make_study(tmp_path / "images", patient_id="P1", patient_name="A^B", birth_date="19700101", sex="F",
                       accession="ACC", series=(("CT", 2),))
    rejected = study.series[0].instances[0].sop_instance_uid
    make_key_image_note(tmp_path / "kin", study)
    make_rejection_note(tmp_path / "rejection", study, {rejected})
    files = sorted((tmp_path / "images").glob("*.dcm")) + sorted((tmp_path / "kin").glob("*.dcm")) \
        + sorted((tmp_path / "rejection").glob("*.dcm"))

    store = Store.open(f"sqlite:///{tmp_path}/state.db")
    seen: list[set[str]] = []
    recorder = InstanceFactsRecorder(store, on_studies=seen.append)
    for index, path in enumerate(files):
        sop_class, data = stored(path)
        recorder.note(f"id-{index}", sop_class, data)
    recorder.flush_pending()

    facts = store.instance_facts(f"id-{i}" for i in range(len(files)))
    assert len(facts) == 4
    kinds = sorted(kind for _, kind, _ in facts.values())
    assert kinds == ["", "", "key_images", "rejection"]
    rejection = next(f for f in facts.values() if f[1] == "rejection")
    assert rejection[0] == KOS_SOP_CLASS and rejection[2] == (rejected,)
    assert seen == [{study.study_uid}]
    rows = store.db.query("SELECT DISTINCT study_uid FROM instances")
    assert [r["study_uid"] for r in rows] == [study.study_uid]


def test_unreadable_bytes_are_skipped_not_fatal(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path}/state.db")
    recorder = InstanceFactsRecorder(store)
    recorder.note("broken", KOS_SOP_CLASS, b"not dicom at all")
    recorder.flush_pending()
    assert store.instance_facts(["broken"]) == {}  # left for the REST fallback
