"""Two boxes: A publishes a patient's exam in the DMP; on B the appel contextuel lists it and opening it moves
its series from A into B's Orthanc (Orthanc's DICOMweb client, the professional's PSC token and the KOS UID),
then B's viewer session reaches that study and no other."""

from __future__ import annotations

import base64
import io
import dataclasses
import html
import re
import subprocess
import time
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlencode

import pydicom
import pytest
import requests

from drimbox.config.sections import IdentitySettings
from drimbox.dmp.client import DmpClient
from drimbox.dmp.settings import DmpSettings
from drimbox.launcher.ports import BoxPorts, free_port
from drimbox.launcher.processes import wait_for_port
from drimbox.reports.cda import parse_cda
from drimbox.samples.reports import make_cda, make_oru
from drimbox.samples.ris_dmp import register_report
from drimbox.samples.whitelist import make_demo_whitelist
from drimbox.trust.whitelist import parse_whitelist
from drimbox.web.viewer_session import cookie_name
from drimbox.testing import BoxClient, demo_order, demo_study, start_box, store_scu, wait_for

from .conftest import PATIENT_1, RADIOLOGIST, browser, hidden_fields, publish
from .test_appel_contextuel import give_reason, open_context

pytestmark = pytest.mark.integration

CACHE_HOURS = 0.012  # 43 s
PATIENT_3 = dataclasses.replace(PATIENT_1, ins="279107512300377", ipp="IPPC0003", family="DEUX-BOITES",
                                given="JEANNE")


def whitelist_status(box) -> dict:
    """The whitelist check as the operator sees it (the public health check only says ok or not)."""
    answer = box.operator_session().get(box.admin_url + "/drimbox/status/health", timeout=10)
    return answer.json().get("checks", {}).get("whitelist", {}) or {}


def whitelist_in_force(box) -> bool:
    return bool(whitelist_status(box).get("in_force", False))


DEAD_PORT = free_port()  # box-c: whitelisted, but nothing listens there (a source box that is down)
BOX_C_DN = "CN=AUTH_CLI box-c,OU=310000000000003,O=DRIMBOX TEST BOX-C,C=FR"


def network_whitelist(pki, ports, **operator_dns: str) -> bytes:
    """The signed list naming both boxes and box-c; ``operator_dns`` (box name with ``_``) overrides a DN."""
    domains = {name: {"db": f"localhost:{p.db}", "vi": f"localhost:{p.vi}",
                      "operator_dn": operator_dns.get(name.replace("-", "_"), "")} for name, p in ports.items()}
    domains["box-c"] = {"db": f"localhost:{DEAD_PORT}", "vi": f"localhost:{DEAD_PORT}", "operator_dn": BOX_C_DN}
    return make_demo_whitelist(pki, domains)


def put_whitelist(box, make: Callable[[], bytes]) -> None:
    """Replace the list a box reads and wait until it is the one in force (B re-reads it every 3.6 s)."""
    time.sleep(1.1)  # DateDeGeneration has a one-second resolution: the new list must be younger
    xml = make()
    generated = parse_whitelist(xml).generated_at
    assert generated is not None
    Path(box.whitelist).write_bytes(xml)
    wait_for(lambda: whitelist_status(box).get("generated_at") == generated.isoformat(), timeout=30,
             what="the new list in force")


@dataclass(frozen=True)
class LocalPacs:
    aet: str
    port: int
    folder: Path


@pytest.fixture(scope="module")
def local_pacs(tmp_path_factory):
    """dcmtk's storescp as B's local PACS: what "Import into my PACS" sends lands in its folder."""
    folder = tmp_path_factory.mktemp("local-pacs")
    pacs = LocalPacs("LOCALPACS", free_port(), folder)
    process = subprocess.Popen(["storescp", "-aet", pacs.aet, "-od", str(folder), "+xa", str(pacs.port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: wait_for_port("127.0.0.1", pacs.port), timeout=10, what="storescp listening")
        yield pacs
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def network(tmp_path_factory, pki, dmp_sim, psc_sim, local_pacs):
    root = tmp_path_factory.mktemp("two-boxes")
    secret = root / "psc-secret"
    secret.write_text("any-secret\n")
    ports = {"box-a": BoxPorts.free(), "box-b": BoxPorts.free()}
    boxes = {}
    try:
        for name in ("box-a", "box-b"):
            whitelist = root / f"whitelist-{name}.xml"  # B's is rewritten by a test, re-read every few seconds
            whitelist.write_bytes(network_whitelist(pki, ports))
            boxes[name] = start_box(
                root / name, name=name, pki=pki, ports=ports[name], psc_issuer=psc_sim.issuer, dmp_url=dmp_sim.url,
                whitelist=str(whitelist), aet=name.upper().replace("-", ""),
                # A accepts only whitelisted callers' certificates: B's retrieval must present its own
                settings={"Psc": {"ClientId": f"drimbox-{name}", "ClientSecretFile": str(secret)},
                          "PeerAccess": {"ClientCertificate": "required" if name == "box-a" else "off"},
                          "Whitelist": {"RefreshHours": 0.001 if name == "box-b" else 24.0},
                          # B's cache expires within the module's run so that the purge can be seen
                          "Consumer": {"CacheHours": CACHE_HOURS, "PurgeIntervalSeconds": 1,
                                       "ImportAet": local_pacs.aet, "ImportPort": local_pacs.port}})
        for box in boxes.values():
            wait_for(lambda b=box: whitelist_in_force(b), timeout=30, what="the whitelist in force")
        yield boxes
    finally:
        for box in boxes.values():
            box.stop()


def test_open_an_exam_published_by_another_box(network, tmp_path, psc_sim):
    a, b = network["box-a"], network["box-b"]
    exam = publish(a, BoxClient(a), tmp_path / "study", PATIENT_3, "ACCAB1", when="20240402")
    session = browser(b)
    context_url, page = open_context(session, b, PATIENT_3, RADIOLOGIST)
    history = give_reason(session, context_url, page)
    assert exam.kos_uid in history.text, history.text[:3000]

    exam_url = f"{context_url}/exams/{exam.kos_uid}"
    started = time.monotonic()
    first = session.get(exam_url, timeout=30)
    assert first.status_code == 200 and 'id="progress"' in first.text
    pages = []

    def retrieved():
        pages.append(session.get(exam_url, timeout=30))
        return "open-viewer" in pages[-1].text and "(1 série(s))." in pages[-1].text or pages[-1].status_code != 200

    wait_for(retrieved, timeout=60, what="the exam retrieved into box B")
    done = pages[-1]
    assert done.status_code == 200 and 'id="open-viewer"' in done.text, done.text
    print(f"exam retrieved into B in {time.monotonic() - started:.2f} s")

    # the study is in B's Orthanc, marked foreign and cached; the operator sees it
    operator_b = BoxClient(b)
    cache = operator_b.get("/drimbox/consumer/cache").json()
    entry = next(e for e in cache if e["study_uid"] == exam.study_uid)
    assert entry["state"] == "cached" and entry["kos_uid"] == exam.kos_uid and entry["patient_ins"] == PATIENT_3.ins
    assert entry["source_host"] == f"localhost:{a.ports.db}" and entry["expires_at"] > time.time()
    # the viewer session B set reaches that study through B's vi host, and nothing else
    uid = exam.study_uid
    series = session.get(b.vi_url + f"/dicom-web/studies/{uid}/series", timeout=30,
                         headers={"Accept": "application/dicom+json"})
    assert series.status_code == 200 and len(series.json()) == 1
    assert session.get(b.vi_url + "/dicom-web/studies", timeout=30).status_code == 403
    assert browser(b).get(b.vi_url + f"/dicom-web/studies/{uid}/series", timeout=30).status_code == 401
    # a foreign study is never served to B's own peers
    peer = requests.Session()
    peer.trust_env = False
    peer.verify = b.ca_bundle
    peer.cert = (b.pki["boxes"]["box-a"]["auth"]["cert"], b.pki["boxes"]["box-a"]["auth"]["key"])
    relayed = peer.get(b.wado_rs_base + f"/studies/{uid}", timeout=30, headers={
        "Authorization": f"Bearer {psc_sim.mint_access_token(RADIOLOGIST)}", "KOS-SOPInstanceUID": exam.kos_uid,
        "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    assert relayed.status_code == 404
    # nor published by B, even when B's RIS sends a report naming it
    cda = make_cda(patient=PATIENT_3, studies=[demo_order(uid, accession="ACCAB1", order="ORD-ACCAB1")])
    assert operator_b.post("/drimbox/reports", data=make_oru(cda, patient=PATIENT_3),
                           headers={"Content-Type": "application/hl7-v2"}).status_code < 300
    status = operator_b.wait_study(uid, lambda s: s["state"] == "foreign" and s["reports"], what="foreign state")
    time.sleep(3)  # past StableAge: a manifest would have been built by now
    assert operator_b.study(uid)["kos"] is None and status["publications"] == []
    # A saw B's professional token and KOS: its audit names the retrieval of each series
    served = [e for e in BoxClient(a).get(f"/drimbox/audit?study={uid}").json()
              if e["entry_point"] == "wado-rs" and e["outcome_status"] == 200]
    assert served and all(e["professional_id"] == RADIOLOGIST and "box-b" in e["caller_dn"] for e in served), served
    # B's audit: the consultation, with the source, the patient and the bytes
    opened = [e for e in operator_b.get(f"/drimbox/audit?study={uid}").json() if e["action"] == "consumer-open-exam"]
    assert opened and opened[0]["outcome_status"] == 200 and opened[0]["patient_id"] == PATIENT_3.ins
    assert opened[0]["bytes_sent"] > 0 and f"localhost:{a.ports.db}" in opened[0]["reason"]


def test_a_source_whose_certificate_is_not_the_listed_one_is_refused(network, tmp_path, pki):
    a, b = network["box-a"], network["box-b"]
    patient = dataclasses.replace(PATIENT_3, ins="279107512300488", ipp="IPPC0004", family="MAUVAIS-DN")
    exam = publish(a, BoxClient(a), tmp_path / "study", patient, "ACCAB2", when="20240403")
    ports = {"box-a": a.ports, "box-b": b.ports}
    # the list B trusts names another certificate for A's db host
    put_whitelist(b, lambda: network_whitelist(pki, ports, box_a=pki["boxes"]["box-b"]["auth"]["subject"]))
    try:
        session = browser(b)
        context_url, page = open_context(session, b, patient, RADIOLOGIST)
        history = give_reason(session, context_url, page)
        assert exam.kos_uid in history.text
        exam_url = f"{context_url}/exams/{exam.kos_uid}"
        pages = [session.get(exam_url, timeout=30)]
        wait_for(lambda: pages.append(session.get(exam_url, timeout=30))
                 or 'http-equiv="refresh"' not in pages[-1].text, timeout=60, what="the retrieval's outcome")
        refused = pages[-1]
        assert refused.status_code == 403 and 'id="exam-problem"' in refused.text, refused.text
        assert "DNCertificatOperateur" in refused.text and "open-viewer" not in refused.text
        # nothing was fetched: the study is neither in B's Orthanc nor in its cache
        operator_b = BoxClient(b)
        assert all(e["study_uid"] != exam.study_uid for e in operator_b.get("/drimbox/consumer/cache").json())
        assert operator_b.post("/tools/lookup", data=exam.study_uid).json() == []
        opened = [e for e in operator_b.get(f"/drimbox/audit?study={exam.study_uid}").json()
                  if e["action"] == "consumer-open-exam"]
        assert opened and opened[0]["outcome_status"] == 403 and "AUTH_CLI box-a" in opened[0]["reason"]
    finally:
        put_whitelist(b, lambda: network_whitelist(pki, ports))


def open_exam(session, context_url: str, kos_uid: str):
    """Open an exam of the history and wait for the retrieval's outcome: the last page."""
    exam_url = f"{context_url}/exams/{kos_uid}"
    pages = [session.get(exam_url, timeout=30)]
    wait_for(lambda: pages.append(session.get(exam_url, timeout=30))
             or 'http-equiv="refresh"' not in pages[-1].text, timeout=60, what="the retrieval's outcome")
    return pages[-1]


def test_expired_foreign_studies_are_purged_and_local_ones_kept(network, tmp_path):
    a, b = network["box-a"], network["box-b"]
    patient = dataclasses.replace(PATIENT_3, ins="279107512300599", ipp="IPPC0005", family="PURGE")
    exam = publish(a, BoxClient(a), tmp_path / "foreign", patient, "ACCAB3", when="20240404")
    local = demo_study(tmp_path / "local", patient=patient, accession="LOCAL1", series=(("CT", 1),))
    store_scu(b, tmp_path / "local")
    session = browser(b)
    context_url, page = open_context(session, b, patient, RADIOLOGIST)
    give_reason(session, context_url, page)
    assert 'id="open-viewer"' in open_exam(session, context_url, exam.kos_uid).text
    operator_b = BoxClient(b)

    def in_orthanc(uid: str) -> bool:
        return any(m["Type"] == "Study" for m in operator_b.post("/tools/lookup", data=uid).json())

    def cache_state() -> str:
        return next(e["state"] for e in operator_b.get("/drimbox/consumer/cache").json()
                    if e["study_uid"] == exam.study_uid)

    assert in_orthanc(exam.study_uid) and in_orthanc(local.study_uid) and cache_state() == "cached"
    wait_for(lambda: cache_state() == "purged", timeout=CACHE_HOURS * 3600 + 30, what="the cached study purged")
    assert not in_orthanc(exam.study_uid)
    assert in_orthanc(local.study_uid)  # the box's own study is never purged


def test_import_into_the_local_pacs_under_the_local_ipp_keeping_the_uids(network, local_pacs, tmp_path):
    a, b = network["box-a"], network["box-b"]
    patient = dataclasses.replace(PATIENT_3, ins="279107512300611", ipp="IPP-AT-A-66", family="IMPORT")
    exam = publish(a, BoxClient(a), tmp_path / "study", patient, "ACCAB4", when="20240405")
    originals = [pydicom.dcmread(f, stop_before_pixels=True) for f in (tmp_path / "study").rglob("*") if f.is_file()]
    session = browser(b)
    # B's RIS knows the patient under its own IPP
    context_url, page = open_context(session, b, patient, RADIOLOGIST, PatientID="IPP-LOCAL-77")
    give_reason(session, context_url, page)
    opened = open_exam(session, context_url, exam.kos_uid)
    assert 'id="import-form"' in opened.text and "IPP-LOCAL-77" in opened.text, opened.text
    exam_url = f"{context_url}/exams/{exam.kos_uid}"
    posted = session.post(exam_url + "/import", timeout=30, allow_redirects=False,
                          data={**hidden_fields(opened.text), "replace_patient_id": "1"})
    assert posted.status_code == 303 and posted.headers["Location"].endswith(f"/exams/{exam.kos_uid}")
    done = wait_for(lambda: (lambda p: p if 'id="import-state"' in p.text and "importing" not in p.text
                             and "Import en cours" not in p.text else None)(session.get(exam_url, timeout=30)),
                    timeout=60, what="the import's outcome")
    assert "Examen importé" in done.text, done.text

    received = [pydicom.dcmread(f, stop_before_pixels=True) for f in local_pacs.folder.rglob("*") if f.is_file()]
    received = [d for d in received if d.StudyInstanceUID == exam.study_uid]
    assert sorted(d.SOPInstanceUID for d in received) == sorted(d.SOPInstanceUID for d in originals)
    assert {d.SeriesInstanceUID for d in received} == {d.SeriesInstanceUID for d in originals}
    assert {(d.PatientID, d.IssuerOfPatientID) for d in received} == {("IPP-LOCAL-77", patient.ipp_issuer)}

    operator_b = BoxClient(b)
    entry = next(e for e in operator_b.get("/drimbox/consumer/cache").json() if e["study_uid"] == exam.study_uid)
    assert entry["state"] == "imported" and entry["import_state"] == "imported"
    audit = [e for e in operator_b.get(f"/drimbox/audit?study={exam.study_uid}").json()
             if e["action"] == "consumer-import"]
    assert audit and audit[0]["outcome_status"] == 200 and "IPP-LOCAL-77" in audit[0]["reason"]
    # an imported study is permanent: past the cache's expiry the purge leaves it (and B's copy has the IPP)
    time.sleep(max(0.0, entry["expires_at"] - time.time()) + 3)
    studies = [m["ID"] for m in operator_b.post("/tools/lookup", data=exam.study_uid).json() if m["Type"] == "Study"]
    assert len(studies) == 1
    assert operator_b.get(f"/studies/{studies[0]}").json()["PatientMainDicomTags"]["PatientID"] == "IPP-LOCAL-77"


def test_a_kos_file_opens_an_exam_when_the_dmp_does_not_answer(network, tmp_path, dmp_sim):
    a, b = network["box-a"], network["box-b"]
    patient = dataclasses.replace(PATIENT_3, ins="279107512300722", ipp="IPPC0007", family="SANS-DMP")
    exam = publish(a, BoxClient(a), tmp_path / "study", patient, "ACCAB5", when="20240406")
    kos = BoxClient(a).get(f"/drimbox/studies/{exam.study_uid}/kos").content  # what the source's RIS could give
    session = browser(b)
    context_url, page = open_context(session, b, patient, RADIOLOGIST)
    dmp_sim.faults.configure("http500", count=1)
    try:
        failed = give_reason(session, context_url, page)
    finally:
        dmp_sim.faults.configure("none")
    assert failed.status_code == 502 and 'id="open-kos"' in failed.text
    form = session.get(context_url + "/kos", timeout=30)
    assert form.status_code == 200 and 'id="kos-form"' in form.text
    posted = session.post(context_url + "/kos", files={"kos": ("manifest.dcm", kos, "application/dicom")},
                          data=hidden_fields(form.text), allow_redirects=False, timeout=30)
    assert posted.status_code == 303 and posted.headers["Location"].endswith(f"/exams/{exam.kos_uid}")
    done = open_exam(session, context_url, exam.kos_uid)
    assert done.status_code == 200 and 'id="open-viewer"' in done.text, done.text
    entry = next(e for e in BoxClient(b).get("/drimbox/consumer/cache").json() if e["study_uid"] == exam.study_uid)
    assert entry["kos_uid"] == exam.kos_uid and entry["source_host"] == f"localhost:{a.ports.db}"

    # the same file in another patient's context is refused, and stays out of that context's history
    other = dataclasses.replace(PATIENT_3, ins="279107512300833", ipp="IPPC0008", family="AUTRE")
    other_url, other_page = open_context(browser_b := browser(b), b, other, RADIOLOGIST)
    give_reason(browser_b, other_url, other_page)
    form = browser_b.get(other_url + "/kos", timeout=30)
    refused = browser_b.post(other_url + "/kos", files={"kos": ("manifest.dcm", kos, "application/dicom")},
                             data=hidden_fields(form.text), allow_redirects=False, timeout=30)
    assert refused.status_code == 403 and 'id="kos-problem"' in refused.text
    assert browser_b.get(f"{other_url}/exams/{exam.kos_uid}", timeout=30).status_code == 404
    # a file that is no manifest is explained
    junk = browser_b.post(other_url + "/kos", files={"kos": ("x.dcm", b"not dicom", "application/dicom")},
                          data=hidden_fields(form.text), allow_redirects=False, timeout=30)
    assert junk.status_code == 400 and 'id="kos-problem"' in junk.text


def test_no_launch_page_unless_configured(network):
    b = network["box-b"]
    assert browser(b).get(b.vi_url + "/drimbox/consumer/context", timeout=30).status_code == 404


def register_report_as_the_ris(pki, dmp_url: str, cda: bytes) -> str:
    """The source site's RIS registers the exam's CR-IMG in the DMP (a separate document from the KOS)."""
    entry = pki["boxes"]["box-a"]
    client = DmpClient(DmpSettings(base_url=dmp_url, client_cert=entry["auth"]["fullchain"],
                                   client_key=entry["auth"]["key"], ca_bundle=pki["ca_bundle"],
                                   signing_cert=entry["signing"]["fullchain"], signing_key=entry["signing"]["key"]),
                       IdentitySettings())
    try:
        return register_report(client, cda)
    finally:
        client.close()


def embedded_pdf(cda: bytes) -> bytes:
    match = re.search(rb'mediaType="application/pdf" representation="B64">([A-Za-z0-9+/=\s]+)<', cda)
    assert match
    return base64.b64decode(match.group(1))


def test_the_exams_report_opens_beside_the_images(network, tmp_path, pki, dmp_sim):
    a, b = network["box-a"], network["box-b"]
    patient = dataclasses.replace(PATIENT_3, ins="279107512300944", ipp="IPPC0009", family="COMPTE-RENDU")
    with_report = publish(a, BoxClient(a), tmp_path / "one", patient, "ACCAB6", when="20240407")
    without = publish(a, BoxClient(a), tmp_path / "two", patient, "ACCAB7", modality="MR", when="20240408")
    register_report_as_the_ris(pki, dmp_sim.url, with_report.cda)
    session = browser(b)
    context_url, page = open_context(session, b, patient, RADIOLOGIST)
    give_reason(session, context_url, page)
    exam_page = session.get(f"{context_url}/exams/{with_report.kos_uid}", timeout=30)
    assert 'id="open-report"' in exam_page.text
    report_url = f"{context_url}/exams/{with_report.kos_uid}/report"

    pdf = session.get(report_url, timeout=30)
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content == embedded_pdf(with_report.cda) and pdf.content.startswith(b"%PDF")

    # no report shared for the other exam: said so
    none = session.get(f"{context_url}/exams/{without.kos_uid}/report", timeout=30)
    assert none.status_code == 404 and "Aucun compte rendu" in none.text

    # the DMP does not answer: explained, with a retry that works
    dmp_sim.faults.configure("http500", count=1)
    try:
        failed = session.get(report_url, timeout=30)
    finally:
        dmp_sim.faults.configure("none")
    assert failed.status_code == 502 and 'id="retry"' in failed.text
    assert session.get(report_url, timeout=30).content == pdf.content

    # the PSC session is gone: log in again, then back to the same report
    session.cookies.clear(domain=session.cookies.list_domains()[0], path="/drimbox/", name="drimbox_psc")
    again = session.get(report_url, allow_redirects=False, timeout=30)
    assert again.status_code == 303 and again.headers["Location"] == (
        "/drimbox/psc/login?return=" + quote(report_url.removeprefix(b.vi_url), safe=""))
    back = session.get(b.vi_url + again.headers["Location"] + f"&login_hint={RADIOLOGIST}&prompt=none", timeout=60)
    assert back.status_code == 200 and back.content == pdf.content


def test_a_source_that_is_down_leaves_the_other_exams_usable(network, tmp_path):
    a, b = network["box-a"], network["box-b"]
    patient = dataclasses.replace(PATIENT_3, ins="279107512301055", ipp="IPPC0010", family="SOURCE-ARRETEE")
    exam = publish(a, BoxClient(a), tmp_path / "study", patient, "ACCAB8", when="20240409")
    # the same exam's manifest as box-c (whitelisted, down) would have made it
    manifest = pydicom.dcmread(io.BytesIO(BoxClient(a).get(f"/drimbox/studies/{exam.study_uid}/kos").content))
    manifest.SOPInstanceUID = pydicom.uid.generate_uid()
    for study in manifest.CurrentRequestedProcedureEvidenceSequence:
        for series in study.ReferencedSeriesSequence:
            series.RetrieveURL = re.sub(r"//localhost:\d+/", f"//localhost:{DEAD_PORT}/", series.RetrieveURL)
    buffer = io.BytesIO()
    manifest.save_as(buffer)
    session = browser(b)
    context_url, page = open_context(session, b, patient, RADIOLOGIST)
    give_reason(session, context_url, page)
    form = session.get(context_url + "/kos", timeout=30)
    session.post(context_url + "/kos", files={"kos": ("down.dcm", buffer.getvalue(), "application/dicom")},
                 data=hidden_fields(form.text), timeout=30)
    down = open_exam(session, context_url, manifest.SOPInstanceUID)
    assert down.status_code == 502 and 'id="exam-problem"' in down.text and 'id="retry"' in down.text
    assert "source unreachable" in down.text and "Les autres examens restent consultables" in down.text
    # the exam as A published it opens
    assert 'id="open-viewer"' in open_exam(session, context_url, exam.kos_uid).text


def test_an_exam_withdrawn_at_the_source_meanwhile_is_explained(network, tmp_path):
    a, b = network["box-a"], network["box-b"]
    patient = dataclasses.replace(PATIENT_3, ins="279107512301166", ipp="IPPC0011", family="RETIRE")
    exam = publish(a, BoxClient(a), tmp_path / "study", patient, "ACCAB9", when="20240410")
    session = browser(b)
    context_url, page = open_context(session, b, patient, RADIOLOGIST)
    assert exam.kos_uid in give_reason(session, context_url, page).text  # listed while still shared
    operator_a = BoxClient(a)
    withdrawal = make_oru(None, event="withdraw", report_id=parse_cda(exam.cda).report_id)
    assert operator_a.post("/drimbox/reports", data=withdrawal,
                           headers={"Content-Type": "application/hl7-v2"}).status_code < 300
    operator_a.wait_study(exam.study_uid, lambda s: s["manifests"][-1]["dmp_status"] == "deleted",
                          what="the manifest deleted from the DMP")
    withdrawn = open_exam(session, context_url, exam.kos_uid)
    assert withdrawn.status_code == 502 and 'id="exam-problem"' in withdrawn.text
    assert "retiré du partage" in withdrawn.text and 'id="open-viewer"' not in withdrawn.text


def test_two_exams_of_the_context_open_side_by_side(network, tmp_path):
    a, b = network["box-a"], network["box-b"]
    patient = dataclasses.replace(PATIENT_3, ins="279107512301277", ipp="IPPC0012", family="COMPARAISON")
    prior = publish(a, BoxClient(a), tmp_path / "prior", patient, "ACCAB10", when="20220101")
    current = publish(a, BoxClient(a), tmp_path / "current", patient, "ACCAB11", modality="MR", when="20240411")
    session = browser(b)
    context_url, page = open_context(session, b, patient, RADIOLOGIST)
    give_reason(session, context_url, page)
    assert 'id="compare"' not in open_exam(session, context_url, prior.kos_uid).text  # nothing to compare yet
    opened = open_exam(session, context_url, current.kos_uid)
    links = [html.unescape(u) for u in re.findall(r'href="(/viewer\?[^"]+)" class="compare"', opened.text)]
    assert links == ["/viewer?" + urlencode({"StudyInstanceUIDs": f"{current.study_uid},{prior.study_uid}",
                                             "hangingProtocolId": "@ohif/hpCompare"})]
    # the browser's viewer sessions reach both studies, each with its own cookie
    for uid in (current.study_uid, prior.study_uid):
        answer = session.get(b.vi_url + f"/dicom-web/studies/{uid}/series", timeout=30,
                             headers={"Accept": "application/dicom+json"})
        assert answer.status_code == 200 and answer.json()[0]["0020000D"]["Value"] == [uid]
    only_current = browser(b)
    for cookie in session.cookies:
        if cookie.name != cookie_name(prior.study_uid):
            only_current.cookies.set_cookie(cookie)
    assert only_current.get(b.vi_url + f"/dicom-web/studies/{prior.study_uid}/series",
                            timeout=30).status_code in (401, 403)


def store_local_study(box, folder: Path, patient, accession: str, issuer: str | None) -> str:
    """A study of the local PACS (stored in B directly), under ``patient.ipp`` and ``issuer``."""
    content = demo_study(folder, patient=patient, accession=accession, series=(("CT", 1),))
    for path in (p for p in folder.rglob("*") if p.is_file()):
        dataset = pydicom.dcmread(path)
        if issuer is not None:
            dataset.IssuerOfPatientID = issuer
        dataset.save_as(path)
    store_scu(box, folder)
    return content.study_uid


def test_the_local_pacs_studies_of_the_patient_are_offered_for_comparison(network, tmp_path):
    a, b = network["box-a"], network["box-b"]
    patient = dataclasses.replace(PATIENT_3, ins="279107512301388", ipp="IPPC0013", family="LOCAL-PACS")
    exam = publish(a, BoxClient(a), tmp_path / "foreign", patient, "ACCAB12", when="20240412")
    local_ipp, issuer = "IPP-B-LOCAL-13", "1.2.250.1.999.9.9"
    at_b = dataclasses.replace(patient, ipp=local_ipp)
    mine = store_local_study(b, tmp_path / "mine", at_b, "LOCB1", issuer)
    other_issuer = store_local_study(b, tmp_path / "other", at_b, "LOCB2", "1.2.250.1.999.8.8")
    no_issuer = store_local_study(b, tmp_path / "none", at_b, "LOCB3", None)
    session = browser(b)
    context_url, page = open_context(session, b, patient, RADIOLOGIST, PatientID=local_ipp, PatientIDIssuer=issuer)
    give_reason(session, context_url, page)
    opened = open_exam(session, context_url, exam.kos_uid)
    links = [html.unescape(u) for u in re.findall(r'href="(/viewer\?[^"]+)" class="compare"', opened.text)]
    assert links == ["/viewer?" + urlencode({"StudyInstanceUIDs": f"{exam.study_uid},{mine}",
                                             "hangingProtocolId": "@ohif/hpCompare"})]
    assert "PACS local" in opened.text
    answer = session.get(b.vi_url + f"/dicom-web/studies/{mine}/series", timeout=30,
                         headers={"Accept": "application/dicom+json"})
    assert answer.status_code == 200 and answer.json()[0]["0020000D"]["Value"] == [mine]
    for refused in (other_issuer, no_issuer):
        assert session.get(b.vi_url + f"/dicom-web/studies/{refused}/series", timeout=30).status_code in (401, 403)


def test_a_psc_session_expiring_while_viewing_goes_to_login_and_back_to_the_exam(network, tmp_path, psc_sim):
    a, b = network["box-a"], network["box-b"]
    patient = dataclasses.replace(PATIENT_3, ins="279107512300955", ipp="IPPC0010", family="EXPIRATION")
    exam = publish(a, BoxClient(a), tmp_path / "study", patient, "ACCAB10", when="20240410")
    lifetime = psc_sim.provider.token_lifetime
    psc_sim.provider.token_lifetime = 10  # the PSC tokens of this login, hence its PSC session, last 10 s
    try:
        session = browser(b)
        context_url, page = open_context(session, b, patient, RADIOLOGIST)
        logged_in = time.monotonic()
    finally:
        psc_sim.provider.token_lifetime = lifetime
    give_reason(session, context_url, page)
    exam_url = f"{context_url}/exams/{exam.kos_uid}"
    wait_for(lambda: 'id="open-viewer"' in session.get(exam_url, timeout=30).text, timeout=60,
             what="the exam retrieved")
    viewing = session.get(exam_url, allow_redirects=False, timeout=30)
    assert viewing.status_code == 200 and time.monotonic() - logged_in < 10, "the session expired too early"

    time.sleep(max(0.0, 11 - (time.monotonic() - logged_in)))
    again = session.get(exam_url, allow_redirects=False, timeout=30)
    assert again.status_code == 303 and again.headers["Location"] == (
        "/drimbox/psc/login?return=" + quote(exam_url.removeprefix(b.vi_url), safe=""))
    back = session.get(b.vi_url + again.headers["Location"] + f"&login_hint={RADIOLOGIST}&prompt=none", timeout=60)
    assert back.status_code == 200 and back.url == exam_url and 'id="open-viewer"' in back.text
