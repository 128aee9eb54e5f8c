"""``drimbox demo`` plays the whole source scenario on a two-box network; its exit status says it worked."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from io import BytesIO
from urllib.parse import parse_qsl

import pydicom
import pytest

from drimbox.sim.dmp.store import DmpStore

pytestmark = pytest.mark.integration
DRIMBOX = str(Path(sys.executable).with_name("drimbox"))
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"
KOS_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"


def test_demo_scenario_runs_end_to_end(tmp_path):
    result = subprocess.run([DRIMBOX, "demo", "--no-wait", "--free-ports", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "DMP approved as urn:uuid:" in result.stdout
    assert "HTTP 200," in result.stdout and "DICOM part(s)" in result.stdout
    assert "with a forged token: HTTP 401" in result.stdout
    assert "without a client certificate: HTTP 403" in result.stdout
    assert "/drimbox/open?study=" in result.stdout
    # the consumer side: three patients' exams in the DMP, and box-b's launch page prefilled for each of them
    assert "8 of 8 exams registered in the DMP" in result.stdout
    launches = re.findall(r"https://localhost:\d+/drimbox/consumer/context\?(\S+)", result.stdout)
    assert len(launches) == 3
    patients = [dict(parse_qsl(query)) for query in launches]
    assert all(set(p) >= {"Patient.identifier.value", "PatientID", "PatientIDIssuer", "Address.district"}
               for p in patients)
    assert len({p["Patient.identifier.value"] for p in patients}) == 3
    assert all(re.fullmatch(r"[12]\d{14}", p["Patient.identifier.value"]) for p in patients)
    check_dmp_after_the_demo(tmp_path / "dmp-sim")


def study_of(document) -> str:
    return next(r.split("^", 1)[0] for r in document.reference_ids if r.endswith("studyInstanceUID"))


def check_dmp_after_the_demo(dmp_dir: Path) -> None:
    """What the DMP simulator holds once the demo has stopped (read from its own store, not from the printout)."""
    store = DmpStore(str(dmp_dir))
    try:
        documents = store.all_documents()
    finally:
        store.close()
    manifests = [d for d in documents if d.kind == "KOS" and d.type_code.startswith("IMG-KOS")]
    reports = [d for d in documents if d.type_code.startswith("18748-4")]
    approved = {study_of(d) for d in manifests if d.status == APPROVED}
    withdrawn = [d for d in manifests if d.status == DELETED]
    # the source scenario's exam, and eight consumer exams of which one was withdrawn after publication
    assert len(approved) == 8 and len(withdrawn) == 1
    assert study_of(withdrawn[0]) not in approved
    # each exam still published has its report (CR-IMG) registered by the RIS, the withdrawn one has none
    assert all(d.status == APPROVED and d.mime_type == "text/xml" for d in reports)
    report_studies = {study_of(d) for d in reports}
    assert len(reports) == 7 and report_studies < approved and study_of(withdrawn[0]) not in report_studies
    assert all(b"18748-4" in d.content and b"ClinicalDocument" in d.content for d in reports)
    # exactly one published manifest references a key image note (a KO instance of the study), in its first series
    with_notes = []
    for document in (d for d in manifests if d.status == APPROVED):
        evidence = pydicom.dcmread(BytesIO(document.content)).CurrentRequestedProcedureEvidenceSequence[0]
        classes = [[i.ReferencedSOPClassUID for i in series.ReferencedSOPSequence]
                   for series in evidence.ReferencedSeriesSequence]
        if any(KOS_CLASS in c for c in classes):
            with_notes.append(classes)
    assert len(with_notes) == 1 and KOS_CLASS in with_notes[0][0]


def run_two_boxes_until_launch_pages(data_dir: Path) -> str:
    """``drimbox run --two-boxes`` until it says it is running, then Ctrl-C; its output."""
    process = subprocess.Popen([DRIMBOX, "run", "--two-boxes", "--free-ports", "--stable-age", "2",
                                "--data-dir", str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith(("Running.", "Stopping")):  # the demo exams come before "Running."
                break
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    return "".join(lines) + rest


@pytest.mark.timeout(400)
def test_run_two_boxes_publishes_the_demo_exams_once_and_prints_the_launch_pages(tmp_path):
    first = run_two_boxes_until_launch_pages(tmp_path)
    assert "8 of 8 exams registered in the DMP" in first, first[-3000:]
    assert "7 of 7 reports registered in the DMP" in first
    assert "DMP deleted" in first and "(listed first)" in first
    assert len(re.findall(r"https://localhost:\d+/drimbox/consumer/context\?\S+", first)) == 3
    second = run_two_boxes_until_launch_pages(tmp_path)
    assert "exams registered" not in second, second[-3000:]
    assert len(re.findall(r"https://localhost:\d+/drimbox/consumer/context\?\S+", second)) == 3
    store = DmpStore(str(tmp_path / "dmp-sim"))
    try:
        manifests = [d for d in store.all_documents() if d.kind == "KOS" and d.type_code.startswith("IMG-KOS")]
    finally:
        store.close()
    assert len(manifests) == 8  # published once: the restart did not publish them again
