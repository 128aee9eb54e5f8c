"""Issue 2 end to end: studies by C-STORE and STOW-RS, reports by MLLP and REST, the KOS the box builds.

One real box (Orthanc + plugin + nginx, no DMP) is shared by the module; every test uses its own studies.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pydicom

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from source_helpers import (
    INS_OID,
    check_kos,
    dciodvfy,
    kos_of,
    mllp,
    new_study,
    order_for,
    referenced_sops,
    report_for,
    store_scu,
    study_sops,
    wait_for,
    wait_manifest,
)

from drimbox.reports.model import PatientIdentity
from drimbox.samples.reports import make_cda, make_mdm, make_omi_cancel, make_oru, new_uid
from drimbox.samples.studies import make_key_image_note, make_rejection_note
from drimbox.testing import BoxClient, demo_order, demo_study, start_box

pytestmark = pytest.mark.integration

REPORT_WAIT = 3


@pytest.fixture(scope="module")
def box(tmp_path_factory, pki):
    instance = start_box(tmp_path_factory.mktemp("source-box"), pki=pki,
                         settings={"Publication": {"ReportWaitForStudySeconds": REPORT_WAIT,
                                                   "ChangesPollSeconds": 1.0}})
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def operator(box) -> BoxClient:
    return BoxClient(box)


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


def stable(operator: BoxClient, study_uid: str, state: str = "waiting_report") -> dict:
    """The follower saw the study become stable (its row exists with an Orthanc id)."""
    return operator.wait_study(study_uid, lambda s: s.get("orthanc_id") and s.get("state") == state,
                               what=f"state {state}")


# --- both orders, every channel -------------------------------------------------------------------


def test_orthanc_runs_with_nagle_off_for_modalities(box):
    # DCMTK inside Orthanc leaves Nagle on unless TCP_NODELAY is set: ~50 ms per image from a modality
    environment = Path(f"/proc/{box.orthanc.process.pid}/environ").read_bytes().split(b"\0")
    assert b"TCP_NODELAY=1" in environment


def test_cstore_study_then_oru_report_over_mllp(box, operator, tmp):
    content, folder = new_study(tmp, "s1")
    content = make_key_image_note(folder, content)  # a Key Image Note lives in the study
    store_scu(box, folder)
    stable(operator, content.study_uid)
    code, text = mllp(box, make_oru(report_for(content)))
    assert code == "AA", text
    status = wait_manifest(operator, content.study_uid)
    assert status["kos"]["instance_count"] == content.instance_count == 6
    ds = check_kos(box, operator, content, tmp)
    # the key image note's series comes first
    first = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert first.ReferencedSOPSequence[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"



def test_orthanc_holds_no_pixel_codecs_after_building_and_reading_key_objects(box, operator, tmp):
    # pydicom would load numpy, Pillow and pyjpegls into Orthanc (~23 MB) for pixel handlers the box never uses
    content, folder = new_study(tmp, "lean")
    content = make_key_image_note(folder, content)  # a key object the plugin reads with pydicom
    store_scu(box, folder)
    stable(operator, content.study_uid)
    assert mllp(box, make_oru(report_for(content)))[0] == "AA"
    wait_manifest(operator, content.study_uid)
    check_kos(box, operator, content, tmp)
    mapped = Path(f"/proc/{box.orthanc.process.pid}/maps").read_text()
    loaded = {line.rsplit("/", 1)[-1] for line in mapped.splitlines() if ".so" in line}
    assert not {name for name in loaded if name.startswith(("_multiarray_umath", "_imaging", "_CharLS"))}, loaded
    assert any(name.startswith("libOrthancPython") for name in loaded)

def test_mdm_report_first_then_stow_study(box, operator, tmp):
    content, folder = new_study(tmp, "s2", series=(("MR", 2),))
    code, text = mllp(box, make_mdm(report_for(content), trigger="T02"))
    assert code == "AA", text
    assert "not been received" in text  # a warning rides along
    operator.wait_study(content.study_uid, lambda s: s["state"] == "waiting_images", what="waiting_images")
    client = DICOMwebClient(url=box.admin_url + "/dicom-web", session=box.operator_session())
    client.store_instances([pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))])
    wait_manifest(operator, content.study_uid)
    check_kos(box, operator, content, tmp)


def test_oru_report_first_then_cstore_study(box, operator, tmp):
    content, folder = new_study(tmp, "s3", series=(("CT", 2),))
    code, text = mllp(box, make_oru(report_for(content)))
    assert code == "AA", text
    store_scu(box, folder)
    wait_manifest(operator, content.study_uid)
    check_kos(box, operator, content, tmp)


def test_mdm_study_first_then_report(box, operator, tmp):
    content, folder = new_study(tmp, "s3b", series=(("CT", 2),))
    store_scu(box, folder)
    stable(operator, content.study_uid)
    code, text = mllp(box, make_mdm(report_for(content)))
    assert (code, text) == ("AA", "")
    wait_manifest(operator, content.study_uid)
    check_kos(box, operator, content, tmp)


def test_rest_hl7_and_bare_cda(box, operator, tmp):
    hl7_study, hl7_folder = new_study(tmp, "s4", series=(("CT", 2),))
    cda_study, cda_folder = new_study(tmp, "s5", series=(("CT", 2),))
    store_scu(box, hl7_folder)
    # bare CDA before its study, HL7 after
    response = operator.post("/drimbox/reports", data=report_for(cda_study),
                             headers={"Content-Type": "application/xml"})
    assert response.status_code == 200, response.text
    assert response.json()["ack"] == "AA"
    assert response.json()["studies"] == [cda_study.study_uid]
    store_scu(box, cda_folder)
    stable(operator, hl7_study.study_uid)
    response = operator.post("/drimbox/reports", data=make_oru(report_for(hl7_study)),
                             headers={"Content-Type": "application/hl7-v2"})
    assert response.status_code == 200, response.text
    assert response.json()["ack"] == "AA"
    for content in (hl7_study, cda_study):
        wait_manifest(operator, content.study_uid)
        check_kos(box, operator, content, tmp)


# --- the KOS follows the study and the report --------------------------------------------------------


def test_images_after_the_kos_give_a_new_kos(box, operator, tmp):
    content, folder = new_study(tmp, "s6", series=(("CT", 2),))
    store_scu(box, folder)
    assert mllp(box, make_oru(report_for(content)))[0] == "AA"
    first = wait_manifest(operator, content.study_uid)["kos"]
    # a second series arrives later, then a third image in the first series
    more = demo_more(tmp, content)
    store_scu(box, tmp / "s6-more")
    second = wait_manifest(operator, content.study_uid, after=first["kos_uid"])["kos"]
    assert second["replaces_kos_uid"] == first["kos_uid"]
    assert second["version"] == first["version"] + 1
    assert second["instance_count"] == more.instance_count
    ds = check_kos(box, operator, more, tmp)
    assert ds.SOPInstanceUID == second["kos_uid"] != first["kos_uid"]
    manifests = {m["kos_uid"]: m for m in operator.study(content.study_uid)["manifests"]}
    assert manifests[first["kos_uid"]]["status"] == "superseded"
    assert manifests[second["kos_uid"]]["status"] == "current"


def demo_more(tmp, content):
    """A new series of the same study written under tmp/<study>-more; returns the whole content."""
    extra = demo_study(tmp / "s6-more", study_uid=content.study_uid, accession=content.accession,
                       series=(("CT", 3),))
    return replace(content, series=(*content.series, *extra.series))


def test_replacement_reports_are_recorded_as_such(box, operator, tmp):
    content, folder = new_study(tmp, "s7", series=(("CT", 2),))
    store_scu(box, folder)
    first_id = new_uid()
    assert mllp(box, make_oru(report_for(content, report_id=first_id)))[0] == "AA"
    kos1 = wait_manifest(operator, content.study_uid)["kos"]["kos_uid"]

    # ORU with ORC RO and a CDA that says RPLC
    second_id = new_uid()
    cda2 = report_for(content, report_id=second_id, replaces_report_id=first_id, version=2)
    code, text = mllp(box, make_oru(cda2, event="replace"))
    assert code == "AA", text
    kos2 = wait_manifest(operator, content.study_uid, after=kos1)["kos"]
    assert kos2["report_id"] == second_id and kos2["replaces_kos_uid"] == kos1

    # MDM^T10 (TXA-13)
    third_id = new_uid()
    cda3 = report_for(content, report_id=third_id, replaces_report_id=second_id, version=3)
    code, text = mllp(box, make_mdm(cda3, trigger="T10"))
    assert code == "AA", text
    kos3 = wait_manifest(operator, content.study_uid, after=kos2["kos_uid"])["kos"]
    assert kos3["report_id"] == third_id

    # bare CDA with relatedDocument RPLC over REST
    fourth_id = new_uid()
    response = operator.post("/drimbox/reports", headers={"Content-Type": "application/xml"},
                             data=report_for(content, report_id=fourth_id, replaces_report_id=third_id, version=4))
    assert response.json()["ack"] == "AA" and response.json()["event"] == "replace"
    kos4 = wait_manifest(operator, content.study_uid, after=kos3["kos_uid"])["kos"]
    assert kos4["report_id"] == fourth_id

    reports = {r["report_id"]: r for r in operator.study(content.study_uid)["reports"]}
    assert reports[first_id]["state"] == "replaced" and reports[first_id]["replaced_by_report_id"] == second_id
    assert reports[second_id]["state"] == "replaced" and reports[second_id]["replaces_report_id"] == first_id
    assert reports[third_id]["state"] == "replaced" and reports[third_id]["replaces_report_id"] == second_id
    assert reports[fourth_id]["state"] == "active" and reports[fourth_id]["replaces_report_id"] == third_id
    events = [m["event"] for m in operator.get("/drimbox/messages?limit=20").json()
              if m["report_id"] in (second_id, third_id, fourth_id)]
    assert events.count("replace") == 3
    check_kos(box, operator, content, tmp)


@pytest.mark.parametrize("how", ["oru_ca", "mdm_t04"])
def test_withdrawal_is_recorded(box, operator, tmp, how):
    content, folder = new_study(tmp, f"s8-{how}", series=(("CT", 2),))
    store_scu(box, folder)
    report_id = new_uid()
    cda = report_for(content, report_id=report_id)
    assert mllp(box, make_oru(cda))[0] == "AA"
    kos = wait_manifest(operator, content.study_uid)["kos"]["kos_uid"]
    message = (make_oru(None, event="withdraw", report_id=report_id) if how == "oru_ca"
               else make_mdm(None, trigger="T04", report_id=report_id))
    code, text = mllp(box, message)
    assert code == "AA", text
    status = operator.wait_study(content.study_uid, lambda s: s["state"] == "withdrawn", what="withdrawn")
    assert status["reports"][0]["state"] == "withdrawn"
    assert {m["kos_uid"]: m["status"] for m in status["manifests"]}[kos] == "withdrawn"
    assert status["kos"] is None
    assert operator.get(f"/drimbox/studies/{content.study_uid}/kos").status_code == 404
    assert any(m["event"] == "withdraw" and m["report_id"] == report_id
               for m in operator.get("/drimbox/messages?limit=20").json())


def test_order_cancellation_withdraws_the_manifest(box, operator, tmp):
    content, folder = new_study(tmp, "s9", series=(("CT", 2),))
    store_scu(box, folder)
    assert mllp(box, make_oru(report_for(content)))[0] == "AA"
    wait_manifest(operator, content.study_uid)
    code, text = mllp(box, make_omi_cancel(accession=content.accession, study_uid=content.study_uid))
    assert code == "AA", text
    operator.wait_study(content.study_uid, lambda s: s["state"] == "withdrawn" and s["kos"] is None,
                        what="withdrawn")


def test_one_report_several_studies_one_kos_each(box, operator, tmp):
    a, folder_a = new_study(tmp, "s10a", accession="ACC0010", series=(("CT", 2),))
    b, folder_b = new_study(tmp, "s10b", accession="ACC0011", series=(("MR", 3),))
    store_scu(box, folder_a)
    cda = make_cda(report_id=new_uid(), studies=[order_for(a, "ORD0010"), order_for(b, "ORD0011")])
    code, text = mllp(box, make_oru(cda))
    assert code == "AA", text
    store_scu(box, folder_b)
    kos_a = wait_manifest(operator, a.study_uid)["kos"]
    kos_b = wait_manifest(operator, b.study_uid)["kos"]
    assert kos_a["kos_uid"] != kos_b["kos_uid"] and kos_a["report_id"] == kos_b["report_id"]
    check_kos(box, operator, a, tmp, orders=("ORD0010",))
    check_kos(box, operator, b, tmp, orders=("ORD0011",))


def test_iocm_rejection_note_gives_a_kos_without_the_rejected(box, operator, tmp):
    content, folder = new_study(tmp, "s11", series=(("CT", 3),))
    store_scu(box, folder)
    assert mllp(box, make_oru(report_for(content)))[0] == "AA"
    first = wait_manifest(operator, content.study_uid)["kos"]
    rejected = content.series[0].instances[0].sop_instance_uid
    with_note = make_rejection_note(tmp / "s11-note", content, [rejected])
    store_scu(box, tmp / "s11-note")
    second = wait_manifest(operator, content.study_uid, after=first["kos_uid"])["kos"]
    assert second["replaces_kos_uid"] == first["kos_uid"]
    ds = kos_of(operator, content.study_uid)
    assert referenced_sops(ds) == study_sops(content) - {rejected}
    note_uid = with_note.series[-1].instances[0].sop_instance_uid
    assert note_uid not in referenced_sops(ds)
    dciodvfy(operator.get(f"/drimbox/studies/{content.study_uid}/kos").content, tmp)


def test_a_manifest_stored_in_the_pacs_is_not_referenced(box, operator, tmp):
    """Someone sends the box's own KOS back into the study: it is a manifest, left out; no new KOS."""
    content, folder = new_study(tmp, "s12", series=(("CT", 2),))
    store_scu(box, folder)
    assert mllp(box, make_oru(report_for(content)))[0] == "AA"
    first = wait_manifest(operator, content.study_uid)["kos"]
    (tmp / "s12-kos").mkdir()
    (tmp / "s12-kos" / "kos.dcm").write_bytes(operator.get(f"/drimbox/studies/{content.study_uid}/kos").content)
    store_scu(box, tmp / "s12-kos")
    operator.post(f"/drimbox/studies/{content.study_uid}/reconcile")
    wait_for(lambda: operator.study(content.study_uid)["orthanc_id"], what="study")
    time.sleep(5)  # stable age 2 s + a poll
    status = operator.study(content.study_uid)
    assert status["kos"]["kos_uid"] == first["kos_uid"], "a stored manifest must not give a new KOS"
    assert referenced_sops(kos_of(operator, content.study_uid)) == study_sops(content)


# --- bad input ------------------------------------------------------------------------------------


def problems(operator) -> list[dict]:
    return operator.get("/drimbox/messages?problems=1&limit=50").json()


def test_malformed_hl7_is_refused_and_kept(box, operator):
    garbage = (b"MSH|^~\\&|RIS|X|DRIMBOX|X|20240101||ORU^R01|CTRL-BAD-1|P|2.5\rPID|1||||\r"
               b"OBX|1|ED|18748-4^CR^LN||^TEXT^XML^Base64^!!!notbase64!!!||||||F\r")
    code, text = mllp(box, garbage)
    assert code in ("AE", "AR"), text
    assert text
    kept = [m for m in problems(operator) if m["control_id"] == "CTRL-BAD-1"]
    assert kept and kept[0]["ack_code"] == code and kept[0]["errors"]
    # not HL7 at all
    code, text = mllp(box, b"hello, this is not HL7")
    assert code == "AR", text
    # over REST
    response = operator.post("/drimbox/reports", data=b"MSH|garbage", headers={"Content-Type": "application/hl7-v2"})
    assert response.status_code in (400, 422) and response.json()["errors"]
    response = operator.post("/drimbox/reports", data=b"<ClinicalDocument/>",
                             headers={"Content-Type": "application/xml"})
    assert response.status_code in (400, 422) and response.json()["errors"]
    assert operator.get("/drimbox/status").status_code == 200


def test_report_without_study_uid(box, operator):
    cda = make_cda(report_id=new_uid(), studies=[])
    code, text = mllp(box, make_oru(cda))
    assert code == "AE", text
    assert "study" in text.lower()
    assert any(m["ack_code"] == "AE" and "study" in m["ack_text"].lower() for m in problems(operator))


def test_report_contradicting_the_stored_study(box, operator, tmp):
    content, folder = new_study(tmp, "s13", accession="ACC0013", series=(("CT", 2),))
    store_scu(box, folder)
    stable(operator, content.study_uid)
    # wrong accession
    wrong_acc = make_cda(report_id=new_uid(), studies=[replace(order_for(content), accession="OTHER")])
    code, text = mllp(box, make_oru(wrong_acc))
    assert code == "AE" and "accession" in text, text
    # another patient
    other = PatientIdentity(ins="180012345678901", ins_oid=INS_OID, ipp="IPP9999", ipp_issuer="1.2.250.1.999.1.1",
                            family="AUTRE", given="PERSONNE", sex="M", birth_date="19800101", birthplace="75056")
    wrong_patient = make_cda(report_id=new_uid(), patient=other, studies=[order_for(content)])
    code, text = mllp(box, make_oru(wrong_patient))
    assert code == "AE" and "patient" in text, text
    status = operator.study(content.study_uid)
    assert status["kos"] is None and "refused" in status["problem"]
    assert status["state"] == "waiting_report"


def test_images_contradicting_a_report_received_first(box, operator, tmp):
    content, folder = new_study(tmp, "s13b", accession="ACC0014", series=(("CT", 2),))
    report = make_cda(report_id=new_uid(), studies=[replace(order_for(content), accession="ACC9999")])
    code, text = mllp(box, make_oru(report))
    assert code == "AA", text  # the images are not there yet: nothing to compare
    store_scu(box, folder)
    status = operator.wait_study(content.study_uid, lambda s: s["state"] == "conflict", what="conflict")
    assert "accession" in status["problem"] and status["kos"] is None
    assert content.study_uid in operator.get("/drimbox/status").json()["studies_with_problems"]


def test_report_for_a_study_never_received(box, operator):
    study_uid = new_uid()
    code, text = mllp(box, make_oru(make_cda(report_id=new_uid(), studies=[demo_order(study_uid)])))
    assert code == "AA" and "not been received" in text, text
    operator.wait_study(study_uid, lambda s: s["state"] == "waiting_images", what="waiting_images")
    status = operator.wait_study(study_uid, lambda s: s["problem"], timeout=REPORT_WAIT + 20,
                                 what="a problem after ReportWaitForStudySeconds")
    assert status["state"] == "waiting_images" and study_uid in status["problem"]
    assert study_uid in operator.get("/drimbox/status").json()["studies_with_problems"]


# --- operator API -----------------------------------------------------------------------------------


def test_kos_is_404_when_none_and_needs_authentication(box, operator, tmp):
    assert operator.get(f"/drimbox/studies/{new_uid()}/kos").status_code == 404
    anonymous = requests.Session()
    anonymous.trust_env = False
    anonymous.verify = box.ca_bundle
    response = anonymous.get(f"{box.admin_url}/drimbox/studies/{new_uid()}/kos", timeout=10)
    assert response.status_code == 401
    assert "basic" in response.headers.get("www-authenticate", "").lower()
    response = anonymous.get(f"{box.admin_url}/drimbox/studies/{new_uid()}/kos", auth=("operator", "wrong"),
                             timeout=10)
    assert response.status_code == 401
