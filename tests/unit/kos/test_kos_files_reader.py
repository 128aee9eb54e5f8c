from __future__ import annotations

import pytest
from kos_helpers import PATIENT, RETRIEVE_BASE, UID_ROOT, make_report

from drimbox.kos.builder import build_manifest, encode_manifest
from drimbox.kos.files import StudyFilesError, studies_from_files, study_content_from_files
from drimbox.kos.reader import read_manifest
from drimbox.kos.uids import is_valid_uid, new_uid
from drimbox.samples.studies import make_key_image_note, make_rejection_note, make_study


def test_study_content_from_files_matches_what_was_written(tmp_path):
    written = make_study(tmp_path / "a", accession="ACC1", series=[("CT", 3), ("MR", 2)],
                         study_description="Scanner thoracique", **PATIENT)
    (tmp_path / "a" / "notes.txt").write_text("not DICOM")
    (tmp_path / "a" / "empty.dcm").write_bytes(b"")
    read = study_content_from_files([tmp_path / "a"])
    assert read == written


def test_kinds_and_rejections_from_files(tmp_path):
    study = make_study(tmp_path, accession="A", series=[("CT", 3)], **PATIENT)
    study = make_key_image_note(tmp_path, study)
    rejected = study.series[0].instances[1].sop_instance_uid
    study = make_rejection_note(tmp_path, study, [rejected])
    read = study_content_from_files([tmp_path])
    kinds = [i.kind for s in read.series for i in s.instances]
    assert kinds == ["", "", "key_images", "rejection"]
    assert rejected not in {i.sop_instance_uid for s in read.series for i in s.instances}


def test_several_studies_are_an_error(tmp_path):
    make_study(tmp_path / "a", accession="A", series=[("CT", 1)], **PATIENT)
    make_study(tmp_path / "b", accession="B", series=[("CT", 1)], **PATIENT)
    with pytest.raises(StudyFilesError, match="2 studies"):
        study_content_from_files([tmp_path])
    assert len(studies_from_files([tmp_path / "a", tmp_path / "b"])) == 2
    with pytest.raises(StudyFilesError, match="no DICOM"):
        study_content_from_files([tmp_path / "missing"])


def test_read_manifest_round_trip(tmp_path):
    study = make_study(tmp_path, accession="ACC1", series=[("CT", 2), ("CR", 1)], **PATIENT)
    ds = build_manifest(make_report(study), study, retrieve_base=RETRIEVE_BASE, uid_root=UID_ROOT)
    summary = read_manifest(encode_manifest(ds))
    assert summary.sop_instance_uid == ds.SOPInstanceUID
    assert summary.study_uid == study.study_uid
    assert summary.title == "113030"
    assert summary.accessions == ["ACC1"]
    assert summary.patient_id_issuer == "ASIP-SANTE-INS-NIR"
    assert [(s.series_uid, s.instances) for s in summary.series] == [
        (s.series_uid, [(i.sop_class_uid, i.sop_instance_uid) for i in s.instances]) for s in study.series]
    data = summary.to_json()
    assert data["instance_count"] == 3
    assert data["series"][0]["instances"][0]["sop_instance_uid"] == study.series[0].instances[0].sop_instance_uid
    assert summary.description.startswith("Examen : ")


def test_read_manifest_refuses_other_objects(tmp_path):
    make_study(tmp_path, accession="A", series=[("CT", 1)], **PATIENT)
    with pytest.raises(ValueError, match="not a Key Object Selection"):
        read_manifest((tmp_path / "001_00001.dcm").read_bytes())
    with pytest.raises(ValueError):
        read_manifest(b"hello")


def test_new_uid():
    assert is_valid_uid(new_uid("1.2.3"))
    assert len(new_uid("1.2.250.1.999.1234567890.1234567890.12345")) == 64
    with pytest.raises(ValueError, match="dotted numeric"):
        new_uid("1.2.03")
    with pytest.raises(ValueError, match="room"):
        new_uid("1." + "2" * 50)
