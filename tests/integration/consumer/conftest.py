"""A real box (Orthanc + plugin + nginx) connected to the DMP and PSC simulators, with exams of two patients
published in the DMP through the box's own pipeline (their KOS are what the consumer lists)."""

from __future__ import annotations

import dataclasses
import html
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from drimbox.reports.model import Code, PatientIdentity
from drimbox.samples.appel import appel_for
from drimbox.samples.reports import DEMO_PATIENT, make_cda, make_oru
from drimbox.sim.psc import PscSimulator
from drimbox.testing import BoxClient, demo_order, demo_study, start_box, store_scu
from drimbox.web.ohif import REPO_VIEWER_DIR

RADIOLOGIST = "810002000015"  # one activity (structure 334422928290001)
GENERAL_PRACTITIONER = "810002000023"  # two activities (410002000023001 and 1690000001)
PATIENT_1 = dataclasses.replace(DEMO_PATIENT, ins="180017512300142", ipp="IPPC0001", family="CONSO-UN",
                                given="LÉA", birth_date="19800115", sex="F", birthplace="75115")
PATIENT_2 = dataclasses.replace(DEMO_PATIENT, ins="291127512300233", ipp="IPPC0002", family="CONSO-DEUX",
                                given="MARC", birth_date="19911203", sex="M", birthplace="69123")
KNEE = Code("72696002", "2.16.840.1.113883.6.96", "Genou")


@dataclass(frozen=True)
class Exam:
    study_uid: str
    accession: str
    kos_uid: str
    cda: bytes = b""  # the report the box published the exam with


@pytest.fixture(scope="module")
def psc_sim():
    with PscSimulator() as simulator:
        yield simulator


@pytest.fixture(scope="module")
def consumer_box(tmp_path_factory, pki, dmp_sim, psc_sim):
    root = tmp_path_factory.mktemp("consumer-box")
    secret = root / "psc-secret"
    secret.write_text("any-secret\n")
    dist = REPO_VIEWER_DIR / "dist"
    instance = start_box(root / "box", pki=pki, psc_issuer=psc_sim.issuer, dmp_url=dmp_sim.url,
                         ohif_dir=str(dist) if (dist / "index.html").is_file() else None,
                         settings={"Psc": {"ClientId": "drimbox-consumer-test", "ClientSecretFile": str(secret)},
                                   "Consumer": {"LaunchPage": True}})
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def operator(consumer_box) -> BoxClient:
    return BoxClient(consumer_box)


def publish(box, operator: BoxClient, folder: Path, patient: PatientIdentity, accession: str, *,
            modality: str = "CT", region: Code | None = None, when: str = "20240110") -> Exam:
    folder.mkdir(parents=True, exist_ok=True)
    content = demo_study(folder, patient=patient, accession=accession, series=((modality, 2),))
    order = demo_order(content.study_uid, accession=accession, order="ORD-" + accession)
    extra = {"anatomic_region": region} if region else {}
    cda = make_cda(patient=patient, studies=[order], modalities=(modality,), service_start=when + "100000",
                   service_stop=when + "103000", **extra)
    store_scu(box, folder)
    response = operator.post("/drimbox/reports", data=make_oru(cda, patient=patient),
                             headers={"Content-Type": "application/hl7-v2"})
    assert response.status_code < 300, response.text
    status = operator.wait_study(content.study_uid, lambda s: s["kos"] and s["kos"].get("dmp_status") == "approved",
                                 what="a manifest registered in the DMP", timeout=90)
    return Exam(content.study_uid, accession, status["kos"]["kos_uid"], cda)


@pytest.fixture(scope="module")
def exams(consumer_box, operator, tmp_path_factory) -> dict[str, Exam]:
    root = tmp_path_factory.mktemp("consumer-studies")
    return {
        "p1-ct": publish(consumer_box, operator, root / "p1-ct", PATIENT_1, "ACCC1", when="20230510"),
        "p1-mr": publish(consumer_box, operator, root / "p1-mr", PATIENT_1, "ACCC2", modality="MR", region=KNEE,
                         when="20240220"),
        "p2-ct": publish(consumer_box, operator, root / "p2-ct", PATIENT_2, "ACCC3", when="20240101"),
    }


def appel_of(patient: PatientIdentity, **extra: str) -> dict[str, str]:
    """The appel contextuel a RIS would post for ``patient``."""
    return appel_for(patient, **extra)


def browser(box) -> requests.Session:
    session = requests.Session()
    session.verify = box.ca_bundle
    session.trust_env = False
    return session


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in re.findall(r'name="(csrf)" value="([^"]*)"', page)}
