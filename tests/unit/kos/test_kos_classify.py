from __future__ import annotations

import pydicom
import pytest
from kos_helpers import PATIENT

from drimbox.kos.classify import apply_rejections, classify_key_object, kind_of_title, rejected_instances
from drimbox.samples.studies import make_key_image_note, make_rejection_note, make_study, make_study_content


@pytest.mark.parametrize(("code", "kind"), [
    ("113030", "manifest"), ("113000", "key_images"), ("113001", "rejection"), ("113037", "rejection"),
    ("113038", "rejection"), ("113039", "rejection"), ("113004", "other"),
])
def test_kind_of_title(code, kind):
    assert kind_of_title(code) == kind


def test_kind_of_title_needs_the_dcm_scheme():
    assert kind_of_title("113030", "99LOCAL") == "other"


def test_classify_files_and_read_rejections(tmp_path):
    study = make_study(tmp_path, accession="A", series=[("CT", 3)], **PATIENT)
    study = make_key_image_note(tmp_path, study)
    rejected = {study.series[0].instances[0].sop_instance_uid, study.series[0].instances[2].sop_instance_uid}
    study = make_rejection_note(tmp_path, study, rejected, title="113039")
    kinds = {}
    for path in sorted(tmp_path.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        kinds[path.name] = classify_key_object(ds)
        if kinds[path.name] == "rejection":
            assert rejected_instances(ds) == rejected
        else:
            assert rejected_instances(ds) == set()
    assert kinds == {"001_00001.dcm": "other", "001_00002.dcm": "other", "001_00003.dcm": "other",
                     "KO_002_key_images.dcm": "key_images", "KO_003_rejection.dcm": "rejection"}


def test_apply_rejections_drops_instances_and_empty_series():
    study = make_study_content(2, 2)
    first, second = study.series
    rejected = {first.instances[0].sop_instance_uid, *(i.sop_instance_uid for i in second.instances)}
    result = apply_rejections(study, rejected)
    assert [s.series_uid for s in result.series] == [first.series_uid]
    assert result.series[0].instances == (first.instances[1],)
    assert apply_rejections(study, set()) is study
