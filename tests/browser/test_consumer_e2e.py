"""The consumer scenario in a real browser on a two-box network: the launch page posts the appel contextuel,
PSC login, access reason, history, an exam opened (OHIF paints the image fetched from box-a), its report PDF,
a second exam in OHIF's comparison layout, then "Import into my PACS" (dcmtk's storescp) under the local IPP.

Needs `drimbox viewer fetch` first (the OHIF dist is not in git).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

import pydicom
import pytest

from drimbox.config.sections import IdentitySettings
from drimbox.crypto.pki import create_test_pki
from drimbox.dmp.client import DmpClient
from drimbox.dmp.settings import DmpSettings
from drimbox.launcher.ports import BoxPorts, free_port
from drimbox.launcher.processes import wait_for_port
from drimbox.samples.appel import appel_for
from drimbox.samples.reports import DEMO_PATIENT, make_cda, make_oru
from drimbox.samples.ris_dmp import register_report
from drimbox.samples.whitelist import make_demo_whitelist
from drimbox.sim.dmp.server import DmpSimulator
from drimbox.sim.psc import PscSimulator
from drimbox.testing import BoxClient, demo_order, demo_study, start_box, store_scu, wait_for
from drimbox.web.ohif import REPO_VIEWER_DIR
from support.chromium import Chromium
from support.logs import logged
from test_ohif_smoke import viewport_statistics

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed"),
              pytest.mark.skipif(not (REPO_VIEWER_DIR / "dist" / "index.html").is_file(),
                                 reason="OHIF dist not fetched: run `drimbox viewer fetch` first")]

RADIOLOGIST = "810002000015"
PATIENT = dataclasses.replace(DEMO_PATIENT, ins="279107512309999", ipp="IPP-A-E2E", family="NAVIGATEUR",
                              given="ALICE", used_family="NAVIGATEUR", used_given="ALICE")
LOCAL_IPP = "IPP-B-E2E"


@pytest.fixture
def scene(tmp_path):
    pki = create_test_pki(tmp_path / "pki", hosts=("localhost", "127.0.0.1"), boxes=("box-a", "box-b"))
    secret = tmp_path / "psc-secret"
    secret.write_text("any\n")
    pacs_port, pacs_dir = free_port(), tmp_path / "local-pacs"
    pacs_dir.mkdir()
    storescp = subprocess.Popen(["storescp", "-aet", "LOCALPACS", "-od", str(pacs_dir), "+xa", str(pacs_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ports = {"box-a": BoxPorts.free(), "box-b": BoxPorts.free()}
    whitelist = tmp_path / "whitelist.xml"
    whitelist.write_bytes(make_demo_whitelist(pki, {n: {"db": f"localhost:{p.db}", "vi": f"localhost:{p.vi}"}
                                                    for n, p in ports.items()}))
    server = pki["servers"]["dmp-sim"]
    boxes = {}
    with PscSimulator() as psc, DmpSimulator(str(tmp_path / "dmp"), tls_cert=server["fullchain"],
                                             tls_key=server["key"], client_ca=pki["ca_bundle"],
                                             signing_ca=pki["ca_bundle"]) as dmp:
        try:
            wait_for(lambda: wait_for_port("127.0.0.1", pacs_port), timeout=10, what="storescp")
            for name in ("box-a", "box-b"):
                boxes[name] = start_box(
                    tmp_path / name, name=name, pki=pki, ports=ports[name], psc_issuer=psc.issuer, dmp_url=dmp.url,
                    whitelist=str(whitelist), aet=name.upper().replace("-", ""),
                    ohif_dir=str(REPO_VIEWER_DIR / "dist"),
                    settings={"Psc": {"ClientId": f"drimbox-{name}", "ClientSecretFile": str(secret)},
                              "Consumer": {"LaunchPage": True, "ImportAet": "LOCALPACS", "ImportPort": pacs_port}})
            operator = BoxClient(boxes["box-a"])
            studies = []
            for accession, modality, when in (("ACCE2E1", "CT", "20220505"), ("ACCE2E2", "MR", "20240606")):
                content = demo_study(tmp_path / accession, patient=PATIENT, accession=accession, rows=256, cols=256,
                                     series=((modality, 2),))
                store_scu(boxes["box-a"], tmp_path / accession)
                cda = make_cda(patient=PATIENT, modalities=(modality,), service_start=when + "100000",
                               service_stop=when + "103000",
                               studies=[demo_order(content.study_uid, accession=accession, order="ORD" + accession)])
                operator.post("/drimbox/reports", data=make_oru(cda, patient=PATIENT),
                              headers={"Content-Type": "application/hl7-v2"}).raise_for_status()
                status = operator.wait_study(content.study_uid, lambda s: s["kos"] and s["kos"].get("dmp_status")
                                             == "approved", timeout=90, what="the manifest in the DMP")
                studies.append((content, status["kos"]["kos_uid"], cda))
            yield {"a": boxes["box-a"], "b": boxes["box-b"], "studies": studies, "tmp": tmp_path, "pki": pki,
                   "dmp": dmp, "pacs": pacs_dir}
        finally:
            for box in boxes.values():
                box.stop()
            storescp.terminate()
            storescp.wait(timeout=10)


def register_as_the_ris(pki: dict, dmp_url: str, cda: bytes) -> None:
    """box-a's site RIS registers the CR-IMG in the DMP beside the box's KOS."""
    entry = pki["boxes"]["box-a"]
    client = DmpClient(DmpSettings(base_url=dmp_url, client_cert=entry["auth"]["fullchain"],
                                   client_key=entry["auth"]["key"], ca_bundle=pki["ca_bundle"],
                                   signing_cert=entry["signing"]["fullchain"], signing_key=entry["signing"]["key"]),
                       IdentitySettings())
    try:
        register_report(client, cda)
    finally:
        client.close()


def click(browser: Chromium, element_id: str, what: str) -> None:
    browser.wait(f"!!document.getElementById('{element_id}')", what=what)
    browser.evaluate(f"document.getElementById('{element_id}').click()")


def painted(browser: Chromium, path: Path, timeout: float = 120) -> tuple[int, int, int]:
    deadline, stats = time.monotonic() + timeout, (0, 0, 1)
    while time.monotonic() < deadline:
        time.sleep(2)
        stats = viewport_statistics(browser.screenshot(path))
        if stats[0] > 20 and stats[1] > stats[2] // 4:
            break
    return stats


@pytest.mark.timeout(420)
def test_consumer_scenario_in_a_browser(scene):
    b, tmp = scene["b"], scene["tmp"]
    (prior, prior_kos, _), (current, current_kos, current_cda) = scene["studies"]
    register_as_the_ris(scene["pki"], scene["dmp"].url, current_cda)
    browser = Chromium(tmp / "chromium")
    try:
        # the RIS's form (B's test launch page), then PSC login, then the access reason
        browser.navigate(f"{b.vi_url}/drimbox/consumer/context?{urlencode(appel_for(PATIENT, PatientID=LOCAL_IPP))}")
        click(browser, "launch", "the launch page")
        click(browser, f"login-{RADIOLOGIST}", "the PSC login page")
        click(browser, "reason-consent", "the access reason page")
        click(browser, "reason-submit", "the access reason's button")
        browser.wait("!!document.getElementById('history')", what="the history")
        rows = browser.evaluate("[...document.querySelectorAll('tr.exam')].map(r => r.dataset.kos)")
        assert rows == [current_kos, prior_kos]  # newest first

        # open the prior exam first, then the current one: OHIF paints the image fetched from box-a
        for kos in (prior_kos, current_kos):
            browser.wait("!!document.getElementById('history')", what="the history")
            browser.evaluate(f"document.querySelector('tr.exam[data-kos=\"{kos}\"] a.open-exam').click()")
            browser.wait(f"location.pathname.endsWith('/exams/{kos}') && "
                         "!!document.getElementById('open-viewer')", timeout=90, what="the exam retrieved")
            if kos == prior_kos:
                click(browser, "back", "the way back to the history")
        exam_url = browser.evaluate("location.href")
        assert browser.evaluate("!!document.getElementById('open-report')")
        report = browser.evaluate("fetch(document.getElementById('open-report').href).then(r => r.status + ' ' + "
                                  "r.headers.get('content-type'))", await_promise=True)
        assert report == "200 application/pdf"
        click(browser, "open-viewer", "the viewer link")
        browser.wait("location.pathname === '/viewer'", what="OHIF")
        grays, lit, samples = painted(browser, tmp / "current.png")
        assert grays > 20 and lit > samples // 4, f"image not rendered: {grays} gray levels, {lit}/{samples} lit"

        # the comparison layout: both studies' DICOMweb answered through B's viewer sessions
        browser.navigate(exam_url)
        browser.wait("!!document.querySelector('a.compare')", what="the comparison link")
        browser.evaluate("document.querySelector('a.compare').click()")
        browser.wait("location.pathname === '/viewer'", what="OHIF in comparison")
        assert "hpCompare" in browser.evaluate("location.search")
        painted(browser, tmp / "compare.png")
        access = logged(b.log_dir / "nginx-access.log", f"/dicom-web/studies/{prior.study_uid}/series").splitlines()
        for uid in (current.study_uid, prior.study_uid):
            served = [line for line in access if f"/dicom-web/studies/{uid}/series" in line and '" 200 ' in line]
            assert served, f"OHIF's comparison did not load study {uid}"

        # Import into my PACS, under the local IPP
        browser.navigate(exam_url)
        browser.wait("!!document.getElementById('import-form')", what="the import form")
        browser.evaluate("document.querySelector('#import-form button').click()")
        browser.wait("(document.getElementById('import-state') || {dataset: {}}).dataset.state === 'imported'",
                     timeout=90, what="the import done")
        received = [pydicom.dcmread(f, stop_before_pixels=True) for f in scene["pacs"].rglob("*") if f.is_file()]
        assert received and {d.PatientID for d in received} == {LOCAL_IPP}
        assert {d.StudyInstanceUID for d in received} == {current.study_uid}
    finally:
        browser.close()
