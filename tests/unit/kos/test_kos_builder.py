from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timezone

import pydicom
import pytest
from kos_helpers import INS, INS_OID, PATIENT, RETRIEVE_BASE, UID_ROOT, dciodvfy, make_report

from drimbox.kos.builder import ManifestError, build_manifest, encode_manifest
from drimbox.kos.classify import apply_rejections
from drimbox.kos.reader import read_manifest
from drimbox.kos.uids import is_valid_uid
from drimbox.studies.model import InstanceRef
from drimbox.samples.studies import make_key_image_note, make_rejection_note, make_study, make_study_content


@pytest.fixture
def study_dir(tmp_path):
    return tmp_path / "study"


def _build(report, study, **kwargs):
    ds = build_manifest(report, study, retrieve_base=RETRIEVE_BASE, uid_root=UID_ROOT, **kwargs)
    return ds, encode_manifest(ds)


def _write(tmp_path, data: bytes, name="kos.dcm"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_manifest_of_a_real_study_is_valid_and_references_every_instance(tmp_path, study_dir):
    study = make_study(study_dir, accession="ACC1", series=[("CT", 3), ("MR", 2), ("CR", 1), ("US", 1)], **PATIENT)
    ds, data = _build(make_report(study), study, institution_name="Centre d'imagerie")
    path = _write(tmp_path, data)
    dciodvfy(path)

    read = pydicom.dcmread(path)
    assert read.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"
    assert read.Modality == "KO"
    title = read.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == ("113030", "DCM", "Manifest")
    assert (read.ValueType, read.ContinuityOfContent) == ("CONTAINER", "SEPARATE")
    assert read.ContentTemplateSequence[0].TemplateIdentifier == "2010"
    assert read.AccessionNumber == ""
    assert read.StudyInstanceUID == study.study_uid
    assert read.StudyDescription == study.description
    assert read.StudyDate == study.study_date

    expected = {(i.sop_class_uid, i.sop_instance_uid) for s in study.series for i in s.instances}
    evidence = read.CurrentRequestedProcedureEvidenceSequence
    assert len(evidence) == 1 and evidence[0].StudyInstanceUID == study.study_uid
    referenced = {(r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID)
                  for s in evidence[0].ReferencedSeriesSequence for r in s.ReferencedSOPSequence}
    assert referenced == expected

    items = list(read.ContentSequence)
    assert [i.ValueType for i in items[:-1]] == ["IMAGE"] * 7
    content_refs = {(i.ReferencedSOPSequence[0].ReferencedSOPClassUID,
                     i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID) for i in items[:-1]}
    assert content_refs == expected
    text = items[-1]
    assert text.ValueType == "TEXT" and text.RelationshipType == "CONTAINS"
    assert text.ConceptNameCodeSequence[0].CodeValue == "113012"
    assert text.TextValue.splitlines() == [
        f"Examen : {study.description}",
        "Acte : CT Head W contrast IV (24727-0)",
        "Série 1 : CT : Coupes axiales : 3 instance(s)",
        "Série 2 : MR : T2 axial : 2 instance(s)",
        "Série 3 : CR : Face : 1 instance(s)",
        "Série 4 : US : Série US : 1 instance(s)",
    ]
    assert read.InstitutionName == "Centre d'imagerie"


def test_patient_is_the_ins_with_its_qualifiers(tmp_path):
    study = make_study_content(1, 2, patient_id="IPP0042", patient_name="DUPONT^Marie")
    ds, data = _build(make_report(study), study)
    read = pydicom.dcmread(_write(tmp_path, data))
    assert read.PatientID == INS
    assert read.IssuerOfPatientID == "ASIP-SANTE-INS-NIR"
    qualifier = read.IssuerOfPatientIDQualifiersSequence[0]
    assert (qualifier.UniversalEntityID, qualifier.UniversalEntityIDType) == (INS_OID, "ISO")
    other = read.OtherPatientIDsSequence[0]
    assert (other.PatientID, other.TypeOfPatientID, other.IssuerOfPatientID) == (INS, "TEXT", "ASIP-SANTE-INS-NIR")
    assert other.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID == INS_OID
    assert str(read.PatientName) == "DUPONT^Marie"
    assert (read.PatientBirthDate, read.PatientSex) == ("19790315", "F")


def test_one_request_item_per_order_of_this_study_only(tmp_path):
    study = make_study_content(1, 2, accession="ACC7")
    report = make_report(study, "1.2.3.999", orders_per_study=2)
    ds, data = _build(report, study)
    path = _write(tmp_path, data)
    dciodvfy(path)
    requests = pydicom.dcmread(path).ReferencedRequestSequence
    assert [r.AccessionNumber for r in requests] == ["ACC7", "ACC7-1"]
    for request in requests:
        assert request.StudyInstanceUID == study.study_uid
        assert request.IssuerOfAccessionNumberSequence[0].UniversalEntityID == "1.2.250.1.999.1.1"
        assert request.IssuerOfAccessionNumberSequence[0].UniversalEntityIDType == "ISO"
        assert request.OrderPlacerIdentifierSequence[0].UniversalEntityID == "1.2.250.1.999.1.2"
        assert request.PlacerOrderNumberImagingServiceRequest.startswith("ORD-")
        assert request.RequestedProcedureDescription == "CT Head W contrast IV"
        assert request.RequestedProcedureCodeSequence[0].CodingSchemeDesignator == "LN"
        for keyword in ("ReferencedStudySequence", "FillerOrderNumberImagingServiceRequest", "RequestedProcedureID"):
            assert keyword in request


def test_retrieve_url_per_series(tmp_path):
    study = make_study_content(3, 2)
    ds, data = _build(make_report(study), study)
    summary = read_manifest(data)
    assert [s.series_uid for s in summary.series] == [s.series_uid for s in study.series]
    for series in summary.series:
        assert series.retrieve_url == f"{RETRIEVE_BASE}/studies/{study.study_uid}/series/{series.series_uid}"
    trailing = build_manifest(make_report(study), study, retrieve_base=RETRIEVE_BASE + "/", uid_root=UID_ROOT)
    url = read_manifest(encode_manifest(trailing)).series[0].retrieve_url
    assert "wado-rs/studies/" in url and "//studies" not in url


def test_key_image_note_is_referenced_first_and_manifests_and_rejections_are_left_out(tmp_path, study_dir):
    study = make_study(study_dir, accession="ACC1", series=[("CT", 3), ("CT", 2)], **PATIENT)
    study = make_key_image_note(study_dir, study)
    key_note = study.series[-1].instances[0]
    rejected = study.series[0].instances[1].sop_instance_uid
    study = make_rejection_note(study_dir, study, [rejected])
    rejection = study.series[-1].instances[0]
    old_manifest = build_manifest(make_report(study), study, retrieve_base=RETRIEVE_BASE, uid_root=UID_ROOT)
    old_manifest_ref = InstanceRef(old_manifest.SOPClassUID, old_manifest.SOPInstanceUID, 1, "manifest")
    last = replace(study.series[-1], instances=(rejection, old_manifest_ref))
    study = replace(study, series=(*study.series[:-1], last))
    study = apply_rejections(study, {rejected})

    ds, data = _build(make_report(study), study)
    path = _write(tmp_path, data)
    dciodvfy(path)
    summary = read_manifest(data)
    uids = [uid for s in summary.series for _, uid in s.instances]
    assert summary.series[0].instances == [(key_note.sop_class_uid, key_note.sop_instance_uid)]
    assert rejected not in uids
    assert rejection.sop_instance_uid not in uids
    assert old_manifest.SOPInstanceUID not in uids
    assert len(uids) == 3 + 2 - 1 + 1
    read = pydicom.dcmread(path)
    first = read.ContentSequence[0]
    assert first.ValueType == "COMPOSITE"
    assert first.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == key_note.sop_instance_uid


def test_new_uids_on_every_build_within_64_characters():
    study = make_study_content(1, 1)
    report = make_report(study)
    long_root = "1.2.250.1.999.1234567890.1234567890.1234567"
    uids = set()
    for _ in range(20):
        ds = build_manifest(report, study, retrieve_base=RETRIEVE_BASE, uid_root=long_root)
        for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID):
            assert is_valid_uid(uid) and len(uid) <= 64 and uid.startswith(long_root + ".")
            uids.add(uid)
    assert len(uids) == 40


def test_timestamps_come_from_now():
    study = make_study_content(1, 1)
    now = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    ds = build_manifest(make_report(study), study, retrieve_base=RETRIEVE_BASE, uid_root=UID_ROOT, now=now)
    assert (ds.ContentDate, ds.ContentTime, ds.TimezoneOffsetFromUTC) == ("20240506", "070809", "+0000")


def test_refuses_without_ins_or_study_or_instances():
    study = make_study_content(1, 1)
    with pytest.raises(ManifestError, match="no INS"):
        build_manifest(make_report(study, ins=None), study, retrieve_base=RETRIEVE_BASE, uid_root=UID_ROOT)
    with pytest.raises(ManifestError, match="not one of report"):
        build_manifest(make_report("1.2.3.4"), study, retrieve_base=RETRIEVE_BASE, uid_root=UID_ROOT)
    empty = apply_rejections(study, {study.series[0].instances[0].sop_instance_uid})
    with pytest.raises(ManifestError, match="no instance"):
        build_manifest(make_report(study), empty, retrieve_base=RETRIEVE_BASE, uid_root=UID_ROOT)


def test_returned_dataset_reads_like_any_pydicom_dataset():
    study = make_study_content(2, 3)
    ds = build_manifest(make_report(study), study, retrieve_base=RETRIEVE_BASE, uid_root=UID_ROOT)
    series = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    assert [s.SeriesInstanceUID for s in series] == [s.series_uid for s in study.series]
    assert len(ds.ContentSequence) == 7
    assert ds.ContentSequence[-1].TextValue.startswith("Examen : ")
    ds.ContentSequence[-1].TextValue = "Examen : changé"  # decoded elements still encode
    assert read_manifest(encode_manifest(ds)).description == "Examen : changé"


def test_refuses_instances_without_sop_class():
    study = make_study_content(1, 2)
    broken = replace(study, series=(replace(study.series[0], instances=(
        study.series[0].instances[0], replace(study.series[0].instances[1], sop_class_uid=""))),))
    with pytest.raises(ManifestError, match="no SOP class UID"):
        build_manifest(make_report(study), broken, retrieve_base=RETRIEVE_BASE, uid_root=UID_ROOT)


@pytest.mark.parametrize(("instances", "budget"), [(1300, 0.5), (10000, 3.0)])
def test_build_and_encode_fast_enough(instances, budget):
    study = make_study_content(4, instances // 4)
    report = make_report(study)
    started = time.perf_counter()
    data = encode_manifest(build_manifest(report, study, retrieve_base=RETRIEVE_BASE, uid_root=UID_ROOT))
    elapsed = time.perf_counter() - started
    assert elapsed < budget
    assert read_manifest(data).instance_count == instances
