import json
import subprocess
import sys

import pytest

from drimbox.cli import main
from drimbox.reports.ack import build_ack
from drimbox.reports.hl7 import parse_message
from drimbox.reports.mllp import MllpServer
from drimbox.reports.model import PatientIdentity
from drimbox.samples.reports import DEMO_PATIENT, make_oru


@pytest.mark.parametrize("kind, event, expected_type, expected_event", [
    ("oru", "publish", "ORU^R01", "publish"), ("oru", "replace", "ORU^R01", "replace"),
    ("oru", "withdraw", "ORU^R01", "withdraw"), ("mdm", "publish", "MDM^T02", "publish"),
    ("mdm", "replace", "MDM^T10", "replace"), ("mdm", "withdraw", "MDM^T04", "withdraw"),
    ("omi", "publish", "OMI^O23", "cancel")])
def test_sample_then_parse_json(tmp_path, capsys, kind, event, expected_type, expected_event):
    target = tmp_path / "msg.hl7"
    assert main(["hl7", "sample", "--study-uid", "1.2.3.4", "--accession", "ACC1", "--type", kind, "--event", event,
                 "--report-id", "1.2.250.1.9^R1", "--replaces", "1.2.250.1.9^R0", "-o", str(target)]) == 0
    assert main(["hl7", "parse", str(target), "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert (parsed["message_type"], parsed["event"]) == (expected_type, expected_event)
    assert parsed["studies"][0]["study_uid"] == "1.2.3.4" and parsed["studies"][0]["accession"] == "ACC1"
    if kind != "omi":
        assert parsed["report_id"] == "1.2.250.1.9^R1"
    if event == "replace":
        assert parsed["replaces_report_id"] == "1.2.250.1.9^R0"


def test_parse_unusable_file_exits_1_and_prints_errors(tmp_path, capsys):
    target = tmp_path / "bad.hl7"
    target.write_bytes(b"this is not HL7")
    assert main(["hl7", "parse", str(target)]) == 1
    assert "error: no valid MSH" in capsys.readouterr().out


def test_parse_missing_file(tmp_path, capsys):
    assert main(["hl7", "parse", str(tmp_path / "absent.hl7")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_send_prints_ack_code(tmp_path, capsys):
    def handle(message: bytes) -> bytes:
        parsed = parse_message(message)
        return build_ack(message, "AA" if parsed.usable else "AE", "; ".join(parsed.errors))

    good = tmp_path / "good.hl7"
    good.write_bytes(make_oru())
    bad = tmp_path / "bad.hl7"
    bad.write_bytes(make_oru(patient=PatientIdentity(**{**DEMO_PATIENT.__dict__, "birth_date": "19800101"})))
    with MllpServer("127.0.0.1", 0, handle) as server:
        assert main(["hl7", "send", str(good), "--port", str(server.port)]) == 0
        assert capsys.readouterr().out.strip() == "AA"
        assert main(["hl7", "send", str(bad), "--port", str(server.port)]) == 1
        out = capsys.readouterr().out
        assert out.startswith("AE ") and "birth date mismatch" in out


def test_send_to_closed_port(tmp_path, capsys):
    from drimbox.launcher.ports import free_port

    port = free_port()  # nothing listens there
    message = tmp_path / "m.hl7"
    message.write_bytes(make_oru())
    assert main(["hl7", "send", str(message), "--port", str(port), "--timeout", "2"]) == 1
    assert "cannot connect" in capsys.readouterr().err


def test_command_line_pipe():
    code = "import sys; from drimbox.cli import main; sys.exit(main())"
    sample = subprocess.run([sys.executable, "-c", code, "hl7", "sample", "--study-uid", "1.2.3.4", "--accession", "A"],
                            capture_output=True, check=True, timeout=60)
    assert sample.stdout.startswith(b"MSH|")
    parsed = subprocess.run([sys.executable, "-c", code, "hl7", "parse", "-"], input=sample.stdout,
                            capture_output=True, timeout=60)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    assert b"publish -> usable" in parsed.stdout


def test_parse_json_says_replace_for_an_oru_nw_whose_cda_replaces(tmp_path, capsys):
    from drimbox.samples.reports import make_cda

    target = tmp_path / "update.hl7"
    document = make_cda(report_id="1.2.250.1.9^R2", replaces_report_id="1.2.250.1.9^R1", version=2)
    target.write_bytes(make_oru(document, event="publish"))
    assert main(["hl7", "parse", str(target), "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert (parsed["event"], parsed["report_id"], parsed["replaces_report_id"]) == (
        "replace", "1.2.250.1.9^R2", "1.2.250.1.9^R1")
