import base64

import pytest

from drimbox.reports.flags import DEFAULT_FLAGS
from drimbox.reports.hl7 import parse_message
from drimbox.reports.model import PatientIdentity, ReportEvent, StudyOrder
from drimbox.samples.reports import DEMO_ACCESSION_ISSUER, DEMO_PATIENT, make_cda, make_mdm, make_omi_cancel, make_oru

STUDY = StudyOrder("1.2.250.1.9.5.1", accession="ACC9", accession_issuer="1.2.250.1.9.2", order="ORD9",
                   order_issuer="1.2.250.1.9.3")


def cda(**kwargs) -> bytes:
    kwargs.setdefault("report_id", "1.2.250.1.9.1^R1")
    kwargs.setdefault("studies", [STUDY])
    return make_cda(**kwargs)


def test_oru_publish_is_complete():
    document = cda()
    message = parse_message(make_oru(document, control_id="CTL1",
                                     viewer_partial_url="https://vi.example.org/drim?StudyInstanceUID=1.2"))
    assert message.usable, message.errors
    assert message.warnings == ()
    assert (message.message_type, message.control_id, message.event) == ("ORU^R01", "CTL1", ReportEvent.PUBLISH)
    assert message.report_id == "1.2.250.1.9.1^R1"
    assert message.studies == (STUDY,)
    assert message.modalities == ("CT",)
    assert message.cda == document
    assert message.report is not None and message.report.report_id == message.report_id
    assert message.patient.ins == DEMO_PATIENT.ins and message.patient.ins_validated
    assert message.patient.ipp == DEMO_PATIENT.ipp
    assert message.flags == DEFAULT_FLAGS
    assert message.viewer_partial_url == "https://vi.example.org/drim?StudyInstanceUID=1.2"
    assert message.sending_structure == message.report.organization.id
    as_json = message.to_json()
    assert as_json["event"] == "publish" and as_json["studies"][0]["accession"] == "ACC9"


@pytest.mark.parametrize("event, expected", [("replace", ReportEvent.REPLACE), ("withdraw", ReportEvent.WITHDRAW)])
def test_oru_events(event, expected):
    message = parse_message(make_oru(cda(replaces_report_id="1.2.250.1.9.1^R0"), event=event))
    assert message.usable, message.errors
    assert message.event is expected
    assert message.replaces_report_id == "1.2.250.1.9.1^R0"


def test_oru_nw_whose_cda_replaces_a_parent_is_a_replacement():
    """The national update message: ORC-1 still NW, OBX-11 F, but the CDA (version 2) has relatedDocument RPLC."""
    raw = make_oru(cda(report_id="1.2.250.1.9.1^R2", replaces_report_id="1.2.250.1.9.1^R1", version=2),
                   event="publish")
    assert b"ORC|NW\r" in raw and b"||||||F\rPRT" in raw
    message = parse_message(raw)
    assert message.usable, message.errors
    assert message.event is ReportEvent.REPLACE
    assert message.replaces_report_id == "1.2.250.1.9.1^R1"
    assert message.report is not None and message.report.version == 2
    assert not any("publish" in w for w in message.warnings)


@pytest.mark.parametrize("orc, obx11, expected", [
    ("NW", "F", ReportEvent.PUBLISH), ("NW", "C", ReportEvent.REPLACE), ("NW", "D", ReportEvent.WITHDRAW),
    ("RO", "F", ReportEvent.REPLACE), ("CA", "F", ReportEvent.WITHDRAW), ("RE", "F", ReportEvent.PUBLISH)])
def test_oru_event_table(orc, obx11, expected):
    raw = make_oru(cda()).replace(b"ORC|NW", f"ORC|{orc}".encode())
    raw = raw.replace(b"||||||F\rPRT", f"||||||{obx11}\rPRT".encode())
    assert parse_message(raw).event is expected


def test_oru_preliminary_report_is_refused():
    raw = make_oru(cda()).replace(b"||||||F\rPRT", b"||||||P\rPRT")
    message = parse_message(raw)
    assert not message.usable and "OBX-11 'P'" in message.errors[0]


def test_oru_withdraw_without_cda_uses_obr3():
    message = parse_message(make_oru(None, event="withdraw", report_id="1.2.250.1.9.1^R1"))
    assert message.usable, message.errors
    assert (message.event, message.report_id, message.cda) == (ReportEvent.WITHDRAW, "1.2.250.1.9.1^R1", None)


def test_withdraw_without_any_report_id_is_refused():
    message = parse_message(make_oru(None, event="withdraw"))
    assert not message.usable and "no report id" in message.errors[0]


@pytest.mark.parametrize("trigger, expected", [("T02", ReportEvent.PUBLISH), ("T10", ReportEvent.REPLACE),
                                               ("T04", ReportEvent.WITHDRAW)])
def test_mdm_triggers(trigger, expected):
    message = parse_message(make_mdm(cda(), trigger=trigger, replaces_report_id="1.2.250.1.9.1^R0"))
    assert message.usable, message.errors
    assert (message.message_type, message.event) == (f"MDM^{trigger}", expected)
    assert message.report_id == "1.2.250.1.9.1^R1"
    assert message.replaces_report_id == "1.2.250.1.9.1^R0"


def test_mdm_withdraw_without_cda_uses_txa12():
    message = parse_message(make_mdm(None, trigger="T04", report_id="1.2.250.1.9.1^R1"))
    assert message.usable, message.errors
    assert (message.event, message.report_id) == (ReportEvent.WITHDRAW, "1.2.250.1.9.1^R1")


def test_mdm_replace_takes_txa13_when_cda_has_no_rplc():
    message = parse_message(make_mdm(cda(), trigger="T10", replaces_report_id="1.2.250.1.9.1^OLD"))
    assert message.replaces_report_id == "1.2.250.1.9.1^OLD"


def test_omi_cancel():
    raw = make_omi_cancel(accession="ACC9", study_uid="1.2.250.1.9.5.1", modality="RM")
    message = parse_message(raw)
    assert message.usable, message.errors
    assert (message.message_type, message.event, message.report_id) == ("OMI^O23", ReportEvent.CANCEL, None)
    assert message.studies[0].accession == "ACC9" and message.studies[0].study_uid == "1.2.250.1.9.5.1"
    assert message.studies[0].accession_issuer == DEMO_ACCESSION_ISSUER
    assert message.modalities == ("MR",)


def test_omi_new_order_is_not_a_cancellation():
    raw = make_omi_cancel(accession="A", study_uid="1.2.3").replace(b"ORC|CA", b"ORC|NW")
    message = parse_message(raw)
    assert not message.usable and "only cancellations" in message.errors[0]


def test_omi_cancel_without_keys_is_refused():
    raw = make_omi_cancel(accession="", study_uid="")
    assert "neither an accession" in parse_message(raw).errors[0]


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_segment_separators(separator):
    message = parse_message(make_oru(cda(), separator=separator))
    assert message.usable, message.errors
    assert message.event is ReportEvent.PUBLISH and message.studies == (STUDY,)


def test_report_obx_component_case_varies():
    raw = make_oru(cda()).replace(b"^TEXT^XML^Base64^", b"^text^xml^BASE64^")
    assert parse_message(raw).usable


def test_ins_in_any_pid3_repetition_and_ipp_pi():
    raw = make_oru(cda())
    pid = next(seg for seg in raw.split(b"\r") if seg.startswith(b"PID"))
    fields = pid.split(b"|")
    fields[3] = b"~".join(reversed(fields[3].split(b"~")))  # INS first this time
    message = parse_message(raw.replace(pid, b"|".join(fields)))
    assert message.patient.ins == DEMO_PATIENT.ins
    assert message.patient.ipp == DEMO_PATIENT.ipp


def test_pid32_not_vali_warns():
    message = parse_message(make_oru(cda(), ins_validated=False))
    assert message.usable
    assert not message.patient.ins_validated
    assert any("VALI" in w for w in message.warnings)


def test_flags_are_read():
    message = parse_message(make_oru(cda(), flags={"MASQUE_PS": True, "DESTDMP": False, "ACK_LECTURE_MSS": True}))
    assert message.flags["MASQUE_PS"] and message.flags["ACK_LECTURE_MSS"]
    assert not message.flags["DESTDMP"]
    assert set(message.flags) == set(DEFAULT_FLAGS)


def test_absent_flags_take_defaults():
    raw = b"\r".join(seg for seg in make_oru(cda()).split(b"\r") if b"MetaDMPMSS" not in seg)
    assert parse_message(raw).flags == DEFAULT_FLAGS


def test_no_msh_is_an_error():
    message = parse_message(b"PID|||123\rOBX|1|TX|x")
    assert not message.usable and "MSH" in message.errors[0]


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff\xfe", b"MSH", b"hello world", bytes(range(256))])
def test_garbage_never_raises(garbage):
    assert not parse_message(garbage).usable


def test_unsupported_type():
    raw = make_oru(cda()).replace(b"ORU^R01^ORU_R01", b"ADT^A01^ADT_A01")
    assert "unsupported message type ADT^A01" in parse_message(raw).errors[0]


def test_broken_base64_is_an_error():
    raw = make_oru(cda())
    start = raw.index(b"^Base64^") + len(b"^Base64^")
    broken = raw[:start] + b"@@@not*base64" + raw[start + 20:]
    message = parse_message(broken)
    assert not message.usable and "base64" in " ".join(message.errors)


def test_missing_cda_on_publish_is_an_error():
    raw = b"\r".join(seg for seg in make_oru(cda()).split(b"\r") if b"18748-4^CR d'imagerie" not in seg
                     or not seg.startswith(b"OBX"))
    assert "no CDA" in " ".join(parse_message(raw).errors)


def test_cda_without_study_uid_is_an_error():
    document = cda().replace(f'<id root="{STUDY.study_uid}"/>'.encode(), b"")
    message = parse_message(make_oru(document, patient=DEMO_PATIENT))
    assert not message.usable and "no study" in " ".join(message.errors)


def test_ins_mismatch_is_an_error():
    other = PatientIdentity(**{**DEMO_PATIENT.__dict__, "ins": "180019999999999"})
    message = parse_message(make_oru(cda(), patient=other))
    assert not message.usable and "INS mismatch" in message.errors[0]


def test_birth_date_mismatch_is_an_error():
    other = PatientIdentity(**{**DEMO_PATIENT.__dict__, "birth_date": "19790329"})
    assert "birth date mismatch" in " ".join(parse_message(make_oru(cda(), patient=other)).errors)


def test_prt8_differing_from_the_cda_author_is_a_warning_not_an_error():
    message = parse_message(make_oru(cda(), sending_structure="1999999999"))
    assert message.usable, message.errors
    assert message.report is not None and message.report.organization.id == "1012355550"
    assert message.sending_structure == "1999999999"
    (warning,) = [w for w in message.warnings if "PRT-8" in w]
    assert "1999999999" in warning and "1012355550" in warning


def test_prt8_with_or_without_type_prefix_matches():
    report_org = parse_message(make_oru(cda())).report.organization.id
    assert parse_message(make_oru(cda(), sending_structure=report_org[1:])).usable


def test_viewer_url_plain_text_is_tolerated():
    raw = make_oru(cda(), viewer_partial_url="https://vi.example.org/x")
    encoded = base64.b64encode(b"https://vi.example.org/x")
    message = parse_message(raw.replace(encoded, b"https://vi.example.org/x"))
    assert message.viewer_partial_url == "https://vi.example.org/x"


def test_double_encoded_cda_inside_message_is_repaired():
    patient = PatientIdentity(**{**DEMO_PATIENT.__dict__, "family": "LÉON"})
    document = cda(patient=patient)
    mangled = document.decode().encode("utf-8").decode("cp1252", errors="ignore").encode("utf-8")
    message = parse_message(make_oru(mangled, patient=patient))
    assert message.usable, message.errors
    assert message.patient.family == "LÉON"
    assert any("double-encoded" in w for w in message.warnings)


def test_birth_name_mismatch_is_an_error_when_pid5_is_typed():
    other = PatientIdentity(**{**DEMO_PATIENT.__dict__, "family": "AUTRE"})
    assert "birth name mismatch" in " ".join(parse_message(make_oru(cda(), patient=other)).errors)


def test_birth_name_comparison_ignores_case_and_accents():
    patient = PatientIdentity(**{**DEMO_PATIENT.__dict__, "family": "PAT-TROÏS"})
    raw = make_oru(cda(), patient=patient).replace("PAT-TROÏS".encode(), "pat trois".encode())
    message = parse_message(raw)
    assert message.usable, message.errors


def test_untyped_pid5_name_mismatch_only_warns():
    raw = make_oru(cda()).replace(b"PAT-TROIS^DOMINIQUE^DOMINIQUE^^^^L", b"DUPONT^DOMINIQUE")
    message = parse_message(raw)
    assert message.usable, message.errors
    assert any("birth name mismatch" in w for w in message.warnings)


def test_used_name_from_pid5_type_d():
    raw = make_oru(cda()).replace(b"^^^^L|", b"^^^^L~EPOUSE^DOMI^^^^^D|")
    message = parse_message(raw)
    assert message.usable, message.errors
    assert message.patient.family == "PAT-TROIS"
    assert (message.patient.used_family, message.patient.used_given) == ("EPOUSE", "DOMI")


NATIONAL_MSH = (b"MSH|^~\\&|{{applicationSupplier}}|{{facilitySupplier}}|{{applicationReceiver}}|{{facilityReceiver}}|"
                b"{{dateMessage}}||ORU^R01^ORU_R01|{{idMessage}}|P|2.5|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2")


def with_national_msh(raw: bytes) -> bytes:
    first, _, rest = raw.partition(b"\r")
    assert first.startswith(b"MSH|")
    return NATIONAL_MSH + b"\r" + rest


def test_national_template_placeholders_in_msh_are_tolerated():
    from drimbox.reports.ack import ack_for, read_ack
    from drimbox.reports.v2 import parse_er7

    raw = with_national_msh(make_oru(cda()))
    message = parse_message(raw)
    assert message.usable, message.errors
    assert (message.message_type, message.control_id, message.event) == ("ORU^R01", "{{idMessage}}",
                                                                          ReportEvent.PUBLISH)
    ack = ack_for(raw, message)
    assert read_ack(ack)[:2] == ("AA", "{{idMessage}}")
    msh = parse_er7(ack.decode()).first("MSH")
    assert msh is not None and (msh.field(3), msh.field(5)) == ("{{applicationReceiver}}", "{{applicationSupplier}}")


def test_embedded_cda_differing_from_the_standalone_copy_is_accepted():
    """The national update message's embedded CDA names another organisation than PRT-8 and is double-encoded."""
    from drimbox.reports.model import Organization
    from drimbox.samples.reports import DEMO_ORGANIZATION

    patient = PatientIdentity(**{**DEMO_PATIENT.__dict__, "family": "LÉON"})
    other = Organization(id="1750803447", name="Hôpital émetteur", sector=DEMO_ORGANIZATION.sector,
                         facility_type=DEMO_ORGANIZATION.facility_type)
    standalone = cda(patient=patient)
    embedded = cda(patient=patient, organization=other)
    mangled = embedded.decode().encode("utf-8").decode("cp1252", errors="ignore").encode("utf-8")
    raw = with_national_msh(make_oru(mangled, patient=patient, organization=DEMO_ORGANIZATION))
    message = parse_message(raw)
    assert message.usable, message.errors
    assert message.report is not None and message.report.organization.id == "1750803447"
    assert message.report.organization.name == "Hôpital émetteur"
    assert message.report.report_id == parse_message(make_oru(standalone)).report_id
    assert message.patient.family == "LÉON"
    assert any("double-encoded" in w for w in message.warnings)
    assert any("PRT-8" in w for w in message.warnings)
