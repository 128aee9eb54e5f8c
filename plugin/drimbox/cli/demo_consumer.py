"""The consumer half of ``drimbox demo``: box-a publishes three patients' exams, box-b's launch page is printed.

Through box-a's normal pipeline (C-STORE, then the report over MLLP): eight exams, one of them with a key image
note, one withdrawn after its publication (ORC CA: its KOS deleted in the DMP). The site's RIS then registers
each remaining exam's report (CR-IMG CDA) in the DMP beside the KOS, as a RIS does. Shared by ``drimbox demo``
and ``drimbox run --two-boxes --demo-exams``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode

from drimbox.launcher.box_instance import BoxInstance
from drimbox.reports.model import Code, PatientIdentity

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
KEY_IMAGE_EXAM = "DEMOC7"
WITHDRAWN_EXAM = "DEMOC8"


@dataclass(frozen=True)
class DemoExam:
    accession: str
    modality: str
    date: str
    region: tuple[str, str] | None = None


# (family, given, INS, sex, birth date, birth place) and the patient's exams
CONSUMER_PATIENTS: tuple[tuple[tuple[str, str, str, str, str, str], tuple[DemoExam, ...]], ...] = (
    (("DEMO-UN", "LÉA", "180017512300142", "F", "19800115", "75115"),
     (DemoExam("DEMOC1", "CT", "20230510"), DemoExam("DEMOC2", "MR", "20240220", ("72696002", "Genou")))),
    (("DEMO-DEUX", "MARC", "291127512300233", "M", "19911203", "69123"),
     (DemoExam("DEMOC3", "CR", "20220707", ("51185008", "Thorax")), DemoExam("DEMOC4", "CT", "20240101"),
      DemoExam(WITHDRAWN_EXAM, "CT", "20200606"))),
    (("DEMO-TROIS", "JEANNE", "279107512300377", "F", "19791028", "13055"),
     (DemoExam("DEMOC5", "US", "20211111"), DemoExam("DEMOC6", "MR", "20230303"),
      DemoExam(KEY_IMAGE_EXAM, "CT", "20240402"))),
)


@dataclass
class PublishedExam:
    exam: DemoExam
    patient: PatientIdentity
    study_uid: str
    cda: bytes
    ack: str


def demo_patients() -> list[tuple[PatientIdentity, tuple[DemoExam, ...]]]:
    from drimbox.samples.reports import DEMO_PATIENT

    out = []
    for number, (traits, exams) in enumerate(CONSUMER_PATIENTS, start=1):
        family, given, ins, sex, birth, place = traits
        patient = dataclasses.replace(DEMO_PATIENT, ins=ins, ipp=f"IPP-A-{number:04d}", family=family, given=given,
                                      used_family=family, used_given=given, sex=sex, birth_date=birth,
                                      birthplace=place)
        out.append((patient, exams))
    return out


def prepare_consumer_scenario(network, data_dir: Path, step: Callable[[str], None]) -> bool:
    """box-a publishes the demo exams, withdraws one, the RIS registers the reports; prints B's launch pages."""
    from drimbox.testing import BoxClient

    source, consumer = network.boxes["box-a"], network.boxes["box-b"]
    operator = BoxClient(source)
    step("box-a publishes the exams of three patients (C-STORE, then each report over MLLP)")
    patients = demo_patients()
    published = [publish_exam(source, data_dir, patient, exam) for patient, exams in patients for exam in exams]
    approved = [p for p in published if p.ack == "AA" and operator.wait_study(
        p.study_uid, lambda s: bool(s["kos"]) and s["kos"].get("dmp_status") == "approved", timeout=120,
        what="the DMP registration")]
    print(f"   {len(approved)} of {len(published)} exams registered in the DMP")
    ok = len(approved) == len(published)

    key_images = next(p for p in published if p.exam.accession == KEY_IMAGE_EXAM)
    step(f"{KEY_IMAGE_EXAM} carries a key image note: its manifest lists it first")
    ok = show_key_image_note(operator, key_images) and ok

    withdrawn = next(p for p in published if p.exam.accession == WITHDRAWN_EXAM)
    step(f"the RIS withdraws {WITHDRAWN_EXAM}'s report (ORC CA over MLLP): box-a deletes its KOS in the DMP")
    ok = withdraw(source, operator, withdrawn) and ok

    step("box-a's RIS registers each exam's report (CR-IMG CDA) in the DMP beside its KOS")
    kept = [p for p in published if p is not withdrawn]
    registered = register_reports(network, kept)
    print(f"   {registered} of {len(kept)} reports registered in the DMP (the withdrawn exam's report is not)")
    ok = ok and registered == len(kept)

    step("box-b's test launch page: post the appel contextuel as a RIS would (then PSC login, e.g. 810002000015)")
    print_launch_pages(consumer, [patient for patient, _ in patients])
    return ok


def ensure_demo_exams(network, data_dir: Path, step: Callable[[str], None]) -> bool:
    """``drimbox run --two-boxes``: the consumer scenario once per data directory, the launch pages every time."""
    marker = data_dir / "demo-exams-published"
    if marker.exists():
        step("the demo exams were published at an earlier start; box-b's test launch page for each patient:")
        print_launch_pages(network.boxes["box-b"], [patient for patient, _ in demo_patients()])
        return True
    ok = prepare_consumer_scenario(network, data_dir, step)
    if ok:
        marker.write_text("the consumer demo exams are in box-a and the DMP simulator\n")
    return ok


def publish_exam(source: BoxInstance, data_dir: Path, patient: PatientIdentity, exam: DemoExam) -> PublishedExam:
    from drimbox.reports.ack import read_ack
    from drimbox.reports.mllp import send_message
    from drimbox.samples.reports import DEMO_REGION, make_cda, make_oru
    from drimbox.samples.studies import make_key_image_note
    from drimbox.testing import demo_order, demo_study, store_scu

    folder = data_dir / "consumer-studies" / exam.accession
    study = demo_study(folder, patient=patient, accession=exam.accession, series=((exam.modality, 2),))
    if exam.accession == KEY_IMAGE_EXAM:
        study = make_key_image_note(folder, study)
    store_scu(source, folder)
    region = Code(exam.region[0], "2.16.840.1.113883.6.96", exam.region[1]) if exam.region else DEMO_REGION
    cda = make_cda(patient=patient, studies=[demo_order(study.study_uid, accession=exam.accession,
                                                        order="ORD-" + exam.accession)],
                   modalities=(exam.modality,), service_start=exam.date + "100000",
                   service_stop=exam.date + "103000", title=f"CR d'imagerie médicale - {exam.modality}",
                   anatomic_region=region)
    code, _, _ = read_ack(send_message(source.bind, source.ports.hl7, make_oru(cda, patient=patient)))
    return PublishedExam(exam, patient, study.study_uid, cda, code)


def show_key_image_note(operator, exam: PublishedExam) -> bool:
    from drimbox.kos.reader import read_manifest

    answer = operator.get(f"/drimbox/studies/{exam.study_uid}/kos")
    if answer.status_code != 200:
        print(f"   no manifest for {exam.exam.accession}: HTTP {answer.status_code}")
        return False
    manifest = read_manifest(answer.content)
    notes = [s for s in manifest.series if any(cls == KOS_SOP_CLASS for cls, _ in s.instances)]
    first = bool(manifest.series) and manifest.series[0] in notes
    print(f"   manifest {manifest.sop_instance_uid}: {len(manifest.series)} series, "
          f"key image note series {notes[0].series_uid if notes else 'missing'}"
          f"{' (listed first)' if first else ''}")
    return first


def withdraw(source: BoxInstance, operator, exam: PublishedExam) -> bool:
    from drimbox.reports.ack import read_ack
    from drimbox.reports.cda import parse_cda
    from drimbox.reports.mllp import send_message
    from drimbox.samples.reports import make_oru

    report_id = parse_cda(exam.cda).report_id
    code, _, text = read_ack(send_message(source.bind, source.ports.hl7,
                                          make_oru(None, event="withdraw", report_id=report_id,
                                                   patient=exam.patient)))
    print(f"   ACK {code} {text}")
    status = operator.wait_study(
        exam.study_uid, lambda s: any(m.get("dmp_status") == "deleted" for m in s["manifests"]), timeout=60,
        what="the deletion in the DMP")
    deleted = [m for m in status["manifests"] if m.get("dmp_status") == "deleted"]
    print(f"   manifest {deleted[-1]['kos_uid']}: DMP deleted")
    return code == "AA"


def register_reports(network, exams: list[PublishedExam]) -> int:
    from drimbox.config.sections import IdentitySettings
    from drimbox.dmp.client import DmpClient
    from drimbox.dmp.settings import DmpSettings
    from drimbox.samples.ris_dmp import register_report

    pki = network.pki
    entry = pki["boxes"]["box-a"]  # box-a's site: its RIS uses the structure's certificates
    client = DmpClient(DmpSettings(base_url=network.dmp_url, client_cert=entry["auth"]["fullchain"],
                                   client_key=entry["auth"]["key"], ca_bundle=pki["ca_bundle"],
                                   signing_cert=entry["signing"]["fullchain"], signing_key=entry["signing"]["key"]),
                       IdentitySettings())
    try:
        return sum(bool(register_report(client, exam.cda)) for exam in exams)
    finally:
        client.close()


def print_launch_pages(consumer: BoxInstance, patients: list[PatientIdentity]) -> None:
    from drimbox.samples.appel import appel_for

    for number, patient in enumerate(patients, start=1):
        appel = appel_for(patient, PatientID=f"IPP-B-{number:04d}")
        print(f"   {patient.family} {patient.given}: {consumer.vi_url}/drimbox/consumer/context?{urlencode(appel)}")
