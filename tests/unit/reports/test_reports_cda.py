from pathlib import Path

import pytest

from drimbox.reports.cda import parse_cda
from drimbox.reports.errors import ReportError
from drimbox.reports.model import PatientIdentity, StudyOrder
from drimbox.samples.reports import DEMO_AUTHOR, DEMO_ORGANIZATION, DEMO_PATIENT, make_cda

SHARED_SAMPLE = Path(__file__).parents[2] / "fixtures" / "ci-sis-cr-img-example.xml"


def study(uid: str, acc: str = "", order: str = "") -> StudyOrder:
    return StudyOrder(uid, accession=acc, accession_issuer="1.2.250.1.9.2" if acc else "",
                      order=order, order_issuer="1.2.250.1.9.3" if order else "")


def test_generated_report_round_trips():
    cda = make_cda(report_id="1.2.250.1.9.1^R42", studies=[study("1.2.3.4", "ACC1", "ORD1")], version=3,
                   set_id="1.2.250.1.9.1^SET1")
    report = parse_cda(cda)
    assert report.report_id == "1.2.250.1.9.1^R42"
    assert report.set_id == "1.2.250.1.9.1^SET1"
    assert report.version == 3
    assert report.replaces_report_id is None
    assert report.patient.ins == DEMO_PATIENT.ins and report.patient.ins_oid == "1.2.250.1.213.1.4.10"
    assert (report.patient.ipp, report.patient.ipp_issuer) == (DEMO_PATIENT.ipp, DEMO_PATIENT.ipp_issuer)
    assert (report.patient.family, report.patient.given) == ("PAT-TROIS", "DOMINIQUE")
    assert (report.patient.sex, report.patient.birth_date, report.patient.birthplace) == ("F", "19790328", "63220")
    assert report.studies == (StudyOrder("1.2.3.4", "ACC1", "1.2.250.1.9.2", "ORD1", "1.2.250.1.9.3"),)
    assert report.act.code == "24727-0"
    assert {c.system for c in report.act_translations} == {
        "1.2.250.1.213.2.5", "1.2.840.10008.2.16.4", "2.16.840.1.113883.6.96"}
    assert report.modalities == ("CT",)
    assert report.anatomic_regions[0].code == "774007"
    assert report.author == DEMO_AUTHOR
    assert report.legal_authenticator == DEMO_AUTHOR
    assert report.organization.id == DEMO_ORGANIZATION.id
    assert report.organization.name == DEMO_ORGANIZATION.name
    assert report.organization.sector.code == "AMBULATOIRE"
    assert report.organization.facility_type.code == "SA08"
    assert report.practice_setting.code == "AMBULATOIRE"
    assert report.confidentiality.code == "N"
    assert report.warnings == ()


def test_replacement_and_root_only_id():
    report = parse_cda(make_cda(report_id="1.2.250.1.9.7", replaces_report_id="1.2.250.1.9.1^R41"))
    assert report.report_id == "1.2.250.1.9.7"
    assert report.replaces_report_id == "1.2.250.1.9.1^R41"


@pytest.mark.parametrize("oid", ["1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10",
                                 "1.2.250.1.213.1.4.11"])
def test_every_ins_oid_is_accepted(oid):
    patient = PatientIdentity(ins="180012345678901", ins_oid=oid, ipp="X1", ipp_issuer="1.2.3", family="A",
                              given="B", sex="M", birth_date="19800101")
    report = parse_cda(make_cda(patient=patient))
    assert (report.patient.ins, report.patient.ins_oid) == ("180012345678901", oid)
    assert report.patient.birthplace is None


def test_birth_name_and_used_name_are_kept_apart():
    patient = PatientIdentity(ins="280012345678901", ins_oid="1.2.250.1.213.1.4.10", family="MARTIN",
                              given="ANNE", used_family="DURAND", used_given="ANNIE", sex="F", birth_date="19800101")
    report = parse_cda(make_cda(patient=patient))
    assert (report.patient.family, report.patient.given) == ("MARTIN", "ANNE")
    assert (report.patient.used_family, report.patient.used_given) == ("DURAND", "ANNIE")


def test_study_uid_in_root_with_extension_variant():
    report = parse_cda(make_cda(studies=[study("1.2.3.5")], study_id_style="extension"))
    assert report.study_uids == ("1.2.3.5",)


def test_pairing_by_position_when_counts_match():
    report = parse_cda(make_cda(studies=[study("1.2.3.1", "A1", "O1"), study("1.2.3.2", "A2", "O2")]))
    assert [(s.study_uid, s.accession, s.order) for s in report.studies] == [
        ("1.2.3.1", "A1", "O1"), ("1.2.3.2", "A2", "O2")]
    assert report.orders_for("1.2.3.2")[0].accession == "A2"


def test_one_order_covers_every_study():
    cda = make_cda(studies=[study("1.2.3.1", "A1", "O1"), study("1.2.3.2", "A1", "O1")])
    assert cda.count(b"<inFulfillmentOf>") == 1
    report = parse_cda(cda)
    assert [(s.study_uid, s.accession) for s in report.studies] == [("1.2.3.1", "A1"), ("1.2.3.2", "A1")]


def test_one_study_with_several_orders():
    report = parse_cda(make_cda(studies=[study("1.2.3.1", "A1", "O1"), study("1.2.3.1", "A2", "O2")]))
    assert report.study_uids == ("1.2.3.1",)
    assert [s.accession for s in report.orders_for("1.2.3.1")] == ["A1", "A2"]


def test_uneven_pairing_warns():
    cda = make_cda(studies=[study("1.2.3.1", "A1", "O1"), study("1.2.3.2", "A2", "O2"), study("1.2.3.3")])
    report = parse_cda(cda)
    assert [s.accession for s in report.studies] == ["A1", "A2", ""]
    assert any("paired by position" in w for w in report.warnings)


def test_rm_is_read_as_mr():
    report = parse_cda(make_cda(modalities=("RM", "CT")))
    assert report.modalities == ("MR", "CT")
    assert any(c.code == "MR" and c.system == "1.2.840.10008.2.16.4" for c in report.act_translations)
    assert any("'RM'" in w for w in report.warnings)


def test_double_encoded_utf8_is_repaired():
    patient = PatientIdentity(ins="280012345678901", ins_oid="1.2.250.1.213.1.4.10", family="BÉRANGER",
                              given="HÉLÈNE", sex="F", birth_date="19800101")
    good = make_cda(patient=patient, title="Échographie abdominale – contrôle")
    mangled = good.decode("utf-8").encode("utf-8").decode("cp1252", errors="ignore").encode("utf-8")
    assert "Ã‰" in mangled.decode("utf-8")
    report = parse_cda(mangled)
    assert report.patient.family == "BÉRANGER"
    assert report.patient.given == "HÉLÈNE"
    assert report.title == "Échographie abdominale – contrôle"
    assert any("double-encoded" in w for w in report.warnings)


def test_latin1_document_with_declaration_parses():
    cda = make_cda(title="Radiographie du thorax, contrôle")
    latin = cda.decode("utf-8").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("latin-1")
    assert parse_cda(latin).title == "Radiographie du thorax, contrôle"


def test_document_without_namespace_parses():
    cda = make_cda(studies=[study("1.2.3.9")]).replace(b'xmlns="urn:hl7-org:v3" ', b"")
    assert parse_cda(cda).study_uids == ("1.2.3.9",)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"<ClinicalDocument><id root='1.2'/>", "well-formed"),
    (b"<?xml version='1.0'?><Other/>", "not a CDA"),
    (b"garbage \x00\xff", "well-formed"),
])
def test_unusable_documents(data, reason):
    with pytest.raises(ReportError, match=reason):
        parse_cda(data)


def test_cda_without_study_uid_is_refused():
    cda = make_cda(studies=[study("1.2.3.4")]).replace(b'<id root="1.2.3.4"/>', b"")
    with pytest.raises(ReportError, match="no study"):
        parse_cda(cda)


def test_cda_without_ins_is_refused():
    patient = PatientIdentity(ipp="X1", ipp_issuer="1.2.3", family="A", given="B", sex="M", birth_date="19800101")
    with pytest.raises(ReportError, match="no INS"):
        parse_cda(make_cda(patient=patient))


def test_cda_without_id_is_refused():
    cda = make_cda(report_id="1.2.250.1.9.99").replace(b'<id root="1.2.250.1.9.99"/>', b"", 1)
    with pytest.raises(ReportError, match="no identifier"):
        parse_cda(cda)


def test_ci_sis_example_parses():
    report = parse_cda(SHARED_SAMPLE.read_bytes())
    assert report.report_id == "1.2.250.1.213.1.1.1.45.2"
    assert report.version == 2
    assert report.replaces_report_id == "90E1C8EC-F951-4B26-A305-A34848818DD6"
    assert report.patient.ins == "279035121518989"
    assert report.patient.birthplace == "63220"
    assert len(report.study_uids) == 3
    assert all(s.accession == "105234751" for s in report.studies)  # one order for the three studies
    assert report.modalities == ("CT",)
    assert report.organization.id == "101235555"
    assert report.organization.facility_type.code == "SA08"
