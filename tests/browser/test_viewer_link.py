"""A real browser opens a report's viewer link: PSC login (the simulator's page, clicked through the Chrome
DevTools protocol), OHIF shows the study's image, and another study's UID typed into the URL is refused.

Headless chromium is driven over ``--remote-debugging-pipe`` (no extra package). It is started with
``--ignore-certificate-errors`` because the box's TLS certificate comes from the throw-away test PKI.
Needs `drimbox viewer fetch` first (the OHIF dist is not in git).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from drimbox.crypto.pki import create_test_pki
from drimbox.samples.reports import make_cda, make_oru
from drimbox.sim.psc import PscSimulator
from drimbox.testing import BoxClient, demo_order, demo_study, start_box, store_scu
from drimbox.web.ohif import REPO_VIEWER_DIR
from support.chromium import Chromium
from test_ohif_smoke import viewport_statistics

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed"),
              pytest.mark.skipif(not (REPO_VIEWER_DIR / "dist" / "index.html").is_file(),
                                 reason="OHIF dist not fetched: run `drimbox viewer fetch` first")]

RADIOLOGIST = "810002000015"


@pytest.fixture
def scene(tmp_path):
    pki = create_test_pki(tmp_path / "pki", hosts=("localhost", "127.0.0.1"), boxes=("box-a",))
    secret = tmp_path / "psc-secret"
    secret.write_text("any\n")
    with PscSimulator() as psc:
        box = start_box(tmp_path / "box", pki=pki, psc_issuer=psc.issuer, ohif_dir=str(REPO_VIEWER_DIR / "dist"),
                        settings={"Psc": {"ClientId": "drimbox-browser", "ClientSecretFile": str(secret)}})
        try:
            operator = BoxClient(box)
            studies = []
            for name, accession in (("a", "ACCBR1"), ("b", "ACCBR2")):
                content = demo_study(tmp_path / name, accession=accession, rows=256, cols=256, series=(("CT", 3),))
                store_scu(box, tmp_path / name)
                order = demo_order(content.study_uid, accession=accession, order="ORD" + accession)
                operator.post("/drimbox/reports", data=make_oru(make_cda(studies=[order])),
                              headers={"Content-Type": "application/hl7-v2"}).raise_for_status()
                operator.wait_study(content.study_uid, lambda s: s["kos"], what="a current manifest")
                studies.append(content)
            yield {"box": box, "operator": operator, "studies": studies, "tmp": tmp_path}
        finally:
            box.stop()


@pytest.mark.timeout(240)
def test_report_link_login_and_one_study_only(scene):
    box, operator, (study, other), tmp = scene["box"], scene["operator"], scene["studies"], scene["tmp"]
    link = operator.get(f"/drimbox/studies/{study.study_uid}/viewer-link").json()["url"]
    browser = Chromium(tmp / "chromium")
    kept = os.environ.get("DRIMBOX_KEEP_SCREENSHOT")
    try:
        browser.navigate(link)
        button = f"login-{RADIOLOGIST}"
        browser.wait(f"!!document.getElementById('{button}')", what="the PSC login page")
        browser.evaluate(f"document.getElementById('{button}').click()")
        browser.wait("location.pathname === '/viewer'", what="OHIF after the login")
        assert study.study_uid in browser.evaluate("location.search")

        # OHIF fetched frames of the study and paints the image (retry while it loads: a loaded CI machine with
        # software GL has taken more than a minute)
        deadline, stats = time.monotonic() + 120, (0, 0, 1)
        while time.monotonic() < deadline:
            time.sleep(2)
            stats = viewport_statistics(browser.screenshot(tmp / "viewer.png"))
            if stats[0] > 20 and stats[1] > stats[2] // 4:
                break
        if kept:
            shutil.copy(tmp / "viewer.png", kept)
        grays, lit, samples = stats
        assert grays > 20 and lit > samples // 4, f"image not rendered: {grays} gray levels, {lit}/{samples} lit"
        # no onboarding tour over the image (its overlay dims the viewport)
        assert browser.evaluate("document.querySelector('.shepherd-element') === null")
        access = (box.log_dir / "nginx-access.log").read_text()
        assert f"/dicom-web/studies/{study.study_uid}/series/" in access and "/frames/1" in access

        # from the same page, the other study's DICOMweb is refused
        status = browser.evaluate(f"fetch('/dicom-web/studies/{other.study_uid}/series').then(r => r.status)",
                                  await_promise=True)
        assert status == 403

        # the other study's UID typed into OHIF's URL: nothing of it is served, the viewer shows no image
        browser.navigate(f"{box.vi_url}/viewer?StudyInstanceUIDs={other.study_uid}")
        time.sleep(8)
        shot = browser.screenshot(tmp / "other.png")
        if kept:
            shutil.copy(tmp / "other.png", Path(kept).with_name("other-" + Path(kept).name))
        access = (box.log_dir / "nginx-access.log").read_text()
        lines = [line for line in access.splitlines() if other.study_uid in line and "/dicom-web/" in line]
        assert lines, "OHIF did not even ask for the other study"
        assert all('" 403 ' in line for line in lines), lines
        grays, lit, samples = viewport_statistics(shot)
        assert lit < samples // 10, f"something is painted for a refused study: {lit}/{samples} lit"
        audit = operator.get(f"/drimbox/audit?study={other.study_uid}&outcome=denied").json()
        assert any(e["action"] == "viewer-dicomweb" for e in audit)
    finally:
        browser.close()
