from __future__ import annotations

import shutil

import pydicom
import pytest
from kos_helpers import PATIENT, dciodvfy

from drimbox.samples.studies import make_key_image_note, make_rejection_note, make_study, make_study_content


def test_sample_files_are_valid_dicom(tmp_path):
    study = make_study(tmp_path, accession="A1", series=[("CT", 2), ("MR", 1), ("CR", 1), ("US", 1)], **PATIENT)
    study = make_key_image_note(tmp_path, study)
    study = make_rejection_note(tmp_path, study, [study.series[0].instances[0].sop_instance_uid])
    files = sorted(tmp_path.glob("*.dcm"))
    assert len(files) == 7
    for path in files:
        dciodvfy(path)
    classes = [pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID for p in files]
    assert classes[:5] == ["1.2.840.10008.5.1.4.1.1.2"] * 2 + ["1.2.840.10008.5.1.4.1.1.4",
                                                              "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.7"]


def test_pixels_show_a_pattern_that_moves(tmp_path):
    make_study(tmp_path, accession="A1", series=[("CT", 2)], rows=32, cols=48, **PATIENT)
    first, second = (pydicom.dcmread(p).pixel_array for p in sorted(tmp_path.glob("*.dcm")))
    assert first.shape == (32, 48)
    assert first.max() > first.min()
    assert (first != second).any()


@pytest.mark.skipif(not shutil.which("dcmcjpls"), reason="dcmtk dcmcjpls not installed")
def test_jpegls_files_are_lossless_and_valid(tmp_path):
    plain = make_study(tmp_path / "plain", study_uid="1.2.250.1.999.7.1", accession="A1", series=[("CT", 2)],
                       **PATIENT)
    make_study(tmp_path / "jls", study_uid="1.2.250.1.999.7.1", accession="A1", series=[("CT", 2)], jpegls=True,
               **PATIENT)
    assert plain.instance_count == 2
    for name in ("001_00001.dcm", "001_00002.dcm"):
        compressed = pydicom.dcmread(tmp_path / "jls" / name)
        assert compressed.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80"
        dciodvfy(tmp_path / "jls" / name)
    assert not list((tmp_path / "jls").glob("*.tmp"))


def test_make_study_content_in_memory():
    study = make_study_content(3, 5)
    assert study.instance_count == 15
    assert len({i.sop_instance_uid for s in study.series for i in s.instances}) == 15
