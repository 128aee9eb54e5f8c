"""The fast head reader agrees with pydicom, and steps aside (None) where it cannot be sure."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian

from drimbox.pacs.dicom_head import read_head_attributes
from drimbox.pacs.instance_head import read_head
from drimbox.samples.studies import make_study

KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "InstanceNumber")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("study")
    make_study(out, patient_id="P", patient_name="A^B", birth_date="19700101", sex="M", accession="A1",
               series=(("CT", 2), ("MR", 1)))
    return sorted(out.glob("*.dcm"))


def expected(ds: Dataset) -> dict[str, str]:
    return {k: str(ds[k].value) for k in KEYWORDS if k in ds}


def encoded(ds: Dataset, syntax: str | None = None) -> bytes:
    if syntax is not None:
        ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def with_nested_sequences(ds: Dataset) -> Dataset:
    """Undefined-length sequences, nested, before group 0x0020 (as modalities write them)."""
    inner = Dataset()
    inner.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    inner.ReferencedSOPInstanceUID = "1.2.3.4"
    outer = Dataset()
    outer.CodeValue = "NESTEDMARK"
    outer.ReferencedImageSequence = Sequence([inner])
    ds.ReferencedImageSequence = Sequence([outer, Dataset()])
    ds["ReferencedImageSequence"].is_undefined_length = True
    outer["ReferencedImageSequence"].is_undefined_length = True
    for item in (*ds.ReferencedImageSequence, inner):
        item.is_undefined_length_sequence_item = True
    ds.add_new((0x0009, 0x0010), "LO", "PRIVATE CREATOR")
    return ds


def test_matches_pydicom_on_explicit_vr_files(files):
    for path in files:
        assert read_head_attributes(path.read_bytes()) == expected(pydicom.dcmread(path))


def test_matches_pydicom_with_implicit_vr_and_nested_undefined_length_sequences(files):
    for syntax in (None, ImplicitVRLittleEndian):
        ds = with_nested_sequences(pydicom.dcmread(files[0]))
        data = encoded(ds, syntax)
        assert read_head_attributes(data) == expected(pydicom.dcmread(io.BytesIO(data)))


def test_steps_aside_for_big_endian_deflate_and_truncated_heads(files):
    data = files[0].read_bytes()
    assert b"1.2.840.10008.1.2.1\0" in data[:400]
    big_endian = data.replace(b"1.2.840.10008.1.2.1\0", b"1.2.840.10008.1.2.2\0", 1)
    assert read_head_attributes(big_endian) is None
    assert read_head_attributes(encoded(pydicom.dcmread(files[0]), DeflatedExplicitVRLittleEndian)) is None
    nested = encoded(with_nested_sequences(pydicom.dcmread(files[0])))
    cut = nested.index(b"NESTEDMARK") + 4  # inside the nested sequence: cannot be skipped safely
    assert read_head_attributes(nested[:cut]) is None
    assert read_head_attributes(b"not a dicom file at all") is None


def test_read_head_uses_it_and_falls_back_to_pydicom(files):
    ds = pydicom.dcmread(files[0])
    fast = read_head(ds.SOPClassUID, files[0].read_bytes())
    slow = read_head(ds.SOPClassUID, encoded(pydicom.dcmread(files[0]), DeflatedExplicitVRLittleEndian))
    for fact in (fast, slow):
        assert (fact.study_uid, fact.series_uid, fact.sop_instance_uid, fact.instance_number) == (
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, int(ds.InstanceNumber))
