"""The stored-instance recorder: SOP classes, and key objects classified from their bytes."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom

from drimbox.pacs.key_objects import KOS_SOP_CLASS
from drimbox.pipeline.instance_facts import InstanceFactsRecorder
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
        recorder.note(f"id-{index}", sop_class, data if sop_class == KOS_SOP_CLASS else None)
    recorder.flush_pending()

    facts = store.instance_facts(f"id-{i}" for i in range(len(files)))
    assert len(facts) == 4
    assert sorted(f.kind for f in facts.values()) == ["", "", "key_images", "rejection"]
    rejection = next(f for f in facts.values() if f.kind == "rejection")
    assert rejection.sop_class_uid == KOS_SOP_CLASS and rejection.rejects == (rejected,)
    assert seen == [{study.study_uid}]  # a key object arrived in that study: it is looked at again
    assert {f.study_uid for f in facts.values() if f.kind} == {study.study_uid}
    assert {f.sop_class_uid for f in facts.values() if not f.kind} == {study.series[0].instances[0].sop_class_uid}


def test_unreadable_bytes_are_skipped_not_fatal(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path}/state.db")
    recorder = InstanceFactsRecorder(store)
    recorder.note("broken", KOS_SOP_CLASS, b"not dicom at all")
    recorder.flush_pending()
    assert store.instance_facts(["broken"]) == {}  # left for the REST fallback


def test_instances_arriving_one_by_one_are_written_in_a_few_transactions(tmp_path):
    """Orthanc stores an instance every few milliseconds: the writer must not wake and commit for each one."""
    store = Store.open(f"sqlite:///{tmp_path}/state.db")
    transactions: list[int] = []
    save = store.save_instance_facts
    store.save_instance_facts = lambda facts: (transactions.append(len(facts)), save(facts))[1]  # type: ignore
    recorder = InstanceFactsRecorder(store, flush_seconds=0.3)
    recorder.start()
    try:
        started = time.monotonic()
        for n in range(100):
            recorder.note(f"id-{n}", "1.2.840.10008.5.1.4.1.1.2")
            time.sleep(0.002)
        assert recorder.flush_pending()
        elapsed = time.monotonic() - started
    finally:
        recorder.stop()
    assert len(store.instance_facts(f"id-{n}" for n in range(100))) == 100
    assert sum(transactions) == 100
    assert len(transactions) <= elapsed / 0.3 + 2, transactions


def test_a_full_batch_is_written_without_waiting_for_the_interval(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path}/state.db")
    recorder = InstanceFactsRecorder(store, batch_size=10, flush_seconds=60)
    recorder.start()
    try:
        for n in range(10):
            recorder.note(f"id-{n}", "1.2.840.10008.5.1.4.1.1.2")
        deadline = time.monotonic() + 5
        while len(store.instance_facts(f"id-{n}" for n in range(10))) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(store.instance_facts(f"id-{n}" for n in range(10))) == 10
    finally:
        recorder.stop()
