from __future__ import annotations

import json

import pydicom
from kos_helpers import INS, INS_OID, PATIENT, dciodvfy

from drimbox.cli import main
from drimbox.kos.uids import is_valid_uid
from drimbox.reports.model import PatientIdentity, StudyOrder
from drimbox.samples.reports import make_cda
from drimbox.samples.studies import make_key_image_note, make_study

BASE = "https://db.example.org/wado-rs"
REPORT_PATIENT = PatientIdentity(ins=INS, ins_oid=INS_OID, ipp="IPP0042", ipp_issuer="1.2.250.1.999.3",
                                 family="DUPONT", given="Marie", sex="F", birth_date="19790315")


def _order(study, accession=None):
    return StudyOrder(study.study_uid, accession=accession or study.accession, accession_issuer="1.2.250.1.999.1.1",
                      order="ORD1", order_issuer="1.2.250.1.999.1.2")


def _report(tmp_path, *orders):
    path = tmp_path / "cr.xml"
    path.write_bytes(make_cda(patient=REPORT_PATIENT, studies=list(orders)))
    return path


def test_build_then_dump(tmp_path, capsys):
    dicom = tmp_path / "dicom"
    study = make_study(dicom, accession="ACC1", series=[("CT", 3), ("CT", 2)], **PATIENT)
    study = make_key_image_note(dicom, study)
    other = make_study(dicom / "other", accession="ZZZ", series=[("CR", 1)], **PATIENT)  # not in the report
    report = _report(tmp_path, _order(study))
    out = tmp_path / "out" / "kos.dcm"

    code = main(["kos", "build", "--report", str(report), "--dicom-dir", str(dicom), "--retrieve-base", BASE,
                 "--out", str(out), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["study_uid"] == study.study_uid
    assert (result["series"], result["instances"], result["out"]) == (3, 6, str(out))
    assert is_valid_uid(result["kos_sop_instance_uid"])
    dciodvfy(out)
    ds = pydicom.dcmread(out)
    assert ds.SOPInstanceUID == result["kos_sop_instance_uid"]
    assert other.study_uid not in out.read_bytes().decode("latin-1")

    assert main(["kos", "dump", str(out), "--json"]) == 0
    dumped = json.loads(capsys.readouterr().out)
    assert dumped["sop_instance_uid"] == result["kos_sop_instance_uid"]
    assert dumped["instance_count"] == 6
    assert dumped["series"][0]["retrieve_url"].startswith(f"{BASE}/studies/{study.study_uid}/series/")
    assert main(["kos", "dump", str(out)]) == 0
    assert "Série 1 : CT" in capsys.readouterr().out


def test_several_studies_give_several_manifests(tmp_path, capsys):
    dicom = tmp_path / "dicom"
    first = make_study(dicom / "a", accession="ACC1", series=[("CT", 1)], **PATIENT)
    second = make_study(dicom / "b", accession="ACC2", series=[("MR", 2)], **PATIENT)
    report = _report(tmp_path, _order(first), _order(second))
    code = main(["kos", "build", "--report", str(report), "--dicom-dir", str(dicom), "--retrieve-base", BASE,
                 "--out", str(tmp_path / "kos.dcm"), "--json"])
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert sorted((r["study_uid"], r["instances"]) for r in results) == sorted(
        [(first.study_uid, 1), (second.study_uid, 2)])
    for r in results:
        dciodvfy(r["out"])
    assert {r["out"] for r in results} == {str(tmp_path / "kos-1.dcm"), str(tmp_path / "kos-2.dcm")}


def test_conflict_exits_1_and_writes_nothing(tmp_path, capsys):
    dicom = tmp_path / "dicom"
    study = make_study(dicom, accession="ACC1", series=[("CT", 1)], **{**PATIENT, "sex": "M"})
    report = _report(tmp_path, _order(study, accession="ACC9"))
    out = tmp_path / "kos.dcm"
    code = main(["kos", "build", "--report", str(report), "--dicom-dir", str(dicom), "--retrieve-base", BASE,
                 "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "accession number mismatch" in err and "sex mismatch" in err
    assert not out.exists()


def test_no_study_of_the_report_exits_1(tmp_path, capsys):
    dicom = tmp_path / "dicom"
    make_study(dicom, accession="ACC1", series=[("CT", 1)], **PATIENT)
    report = _report(tmp_path, StudyOrder("1.2.250.1.999.8.8", accession="ACC1"))
    code = main(["kos", "build", "--report", str(report), "--dicom-dir", str(dicom), "--retrieve-base", BASE,
                 "--out", str(tmp_path / "kos.dcm")])
    assert code == 1
    assert "holds no study of report" in capsys.readouterr().err
