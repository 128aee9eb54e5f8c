"""A real box (Orthanc + plugin + nginx) with the PSC simulator on loopback and two published studies."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from drimbox.reports.model import StudyOrder
from drimbox.samples.reports import make_cda, make_oru
from drimbox.samples.studies import make_key_image_note
from drimbox.sim.psc import PscSimulator
from drimbox.studies.model import StudyContent
from drimbox.testing import BoxClient, demo_order, demo_study, start_box, store_scu, wait_for
from drimbox.web.ohif import REPO_VIEWER_DIR

RADIOLOGIST = "810002000015"  # one activity
GENERAL_PRACTITIONER = "810002000023"  # two activities


@dataclass
class Published:
    content: StudyContent
    accession: str
    report_id: str
    kos_uid: str
    key_image: tuple[str, str] | None = None  # (series, sop) of the first key image


@pytest.fixture(scope="module")
def psc_sim():
    with PscSimulator() as simulator:
        yield simulator


@pytest.fixture(scope="module")
def viewer_box(tmp_path_factory, pki, psc_sim):
    root = tmp_path_factory.mktemp("viewer-box")
    secret = root / "psc-secret"
    secret.write_text("any-secret\n")
    dist = REPO_VIEWER_DIR / "dist"
    instance = start_box(root / "box", pki=pki, psc_issuer=psc_sim.issuer,
                         ohif_dir=str(dist) if (dist / "index.html").is_file() else None,
                         settings={"Psc": {"ClientId": "drimbox-viewer-test", "ClientSecretFile": str(secret)}})
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def viewer_operator(viewer_box) -> BoxClient:
    return BoxClient(viewer_box)


def publish(box, operator: BoxClient, folder: Path, accession: str, *, key_images: bool = False,
            jpegls: bool = False, rows: int = 64) -> Published:
    folder.mkdir(parents=True, exist_ok=True)
    content = demo_study(folder, accession=accession, jpegls=jpegls, rows=rows, cols=rows)
    key = None
    if key_images:
        target = content.series[1].instances[1]
        key = (content.series[1].series_uid, target.sop_instance_uid)
        content = make_key_image_note(folder, content, referenced=[target])
    store_scu(box, folder)
    order: StudyOrder = demo_order(content.study_uid, accession=accession, order="ORD-" + accession)
    response = operator.post("/drimbox/reports", data=make_oru(make_cda(studies=[order])),
                             headers={"Content-Type": "application/hl7-v2"})
    assert response.status_code < 300, response.text
    status = operator.wait_study(content.study_uid, lambda s: s["kos"], what="a current manifest")
    return Published(content, accession, status["kos"]["report_id"], status["kos"]["kos_uid"], key)


@pytest.fixture(scope="module")
def studies(viewer_box, viewer_operator, tmp_path_factory) -> dict[str, Published]:
    root = tmp_path_factory.mktemp("viewer-studies")
    return {
        "a": publish(viewer_box, viewer_operator, root / "a", "ACCVA1", key_images=True),
        "b": publish(viewer_box, viewer_operator, root / "b", "ACCVB1"),
    }


def browser(box) -> requests.Session:
    """A cookie-keeping client of the vi host, trusting the test PKI."""
    session = requests.Session()
    session.verify = box.ca_bundle
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    return session


def viewer_secret(box) -> bytes:
    with sqlite3.connect(box.data_dir / "state" / "drimbox.db") as db:
        return bytes.fromhex(db.execute("SELECT value FROM facts WHERE key = 'viewer_secret'").fetchone()[0])


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


__all__ = ["Published", "browser", "publish", "query_of", "viewer_secret", "wait_for",
           "RADIOLOGIST", "GENERAL_PRACTITIONER"]
