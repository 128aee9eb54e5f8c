from __future__ import annotations

from dataclasses import replace

from kos_helpers import INS, make_report

from drimbox.kos.consistency import comparable_name, find_conflicts
from drimbox.samples.studies import make_study_content


def _study(**changes):
    base = make_study_content(1, 1, study_uid="1.2.250.1.999.5.1", patient_id="IPP0042", patient_name="DUPONT^Marie",
                              birth_date="19790315", sex="F", accession="ACC1")
    return replace(base, **changes)


def test_consistent_study_has_no_conflict():
    study = _study()
    assert find_conflicts(make_report(study), study) == []


def test_ins_as_patient_id_and_accents_and_case_are_fine():
    study = _study(patient_id=INS, patient_name="dupont^marie")
    report = make_report(study)
    report = replace(report, patient=replace(report.patient, family="DUPONT", given="Marie"))
    assert find_conflicts(report, study) == []
    accented = _study(patient_name="Dùpônt^Marie")
    assert find_conflicts(make_report(accented), accented) == []


def test_used_name_matches_too():
    study = _study(patient_name="MARTIN^Marie")
    report = make_report(study)
    assert any("name mismatch" in p for p in find_conflicts(report, study))
    report = replace(report, patient=replace(report.patient, used_family="Martin"))
    assert find_conflicts(report, study) == []


def test_study_not_covered():
    study = _study()
    problems = find_conflicts(make_report("1.2.3.4.5"), study)
    assert len(problems) == 1 and "not covered" in problems[0] and study.study_uid in problems[0]


def test_accession_mismatch_only_when_both_present():
    study = _study()
    report = make_report(replace(study, accession="OTHER"))
    problems = find_conflicts(report, study)
    assert problems == [f"accession number mismatch for study {study.study_uid}: images say 'ACC1', "
                        "report says OTHER"]
    assert find_conflicts(make_report(study), replace(study, accession="")) == []
    assert find_conflicts(make_report(replace(study, accession="")), study) == []


def test_patient_mismatches():
    study = _study(patient_id="SOMEONE", patient_birth_date="19800101", patient_sex="M",
                   patient_name="DURAND^Paul")
    problems = find_conflicts(make_report(_study()), study)
    assert len(problems) == 4
    assert "PatientID 'SOMEONE'" in problems[0]
    assert "birth date" in problems[1]
    assert "sex" in problems[2]
    assert "name" in problems[3]


def test_unknown_sex_and_missing_traits_are_not_conflicts():
    study = _study(patient_sex="O", patient_birth_date="", patient_name="")
    assert find_conflicts(make_report(_study()), study) == []


def test_comparable_name():
    assert comparable_name("  Lœuf-Élise  d'Arc ") == "LOEUF ELISE D ARC"
