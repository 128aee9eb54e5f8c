"""Issue 7, first finding, attacked through a patient's report link on the running campaign box: the link's
viewer session reaches its one study and nothing else of the PACS (another patient's study is stored, never
published), whatever the DICOMweb query looks like; and its refusals do not tell what else the PACS holds."""

from __future__ import annotations

import requests
from campaign import OTHER_PATIENT_ID
from peer_helpers import PeerWorld

import pytest

pytestmark = pytest.mark.integration

DICOM_JSON = {"Accept": "application/dicom+json"}
DICOM_PARTS = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
RANDOM_UID = "1.2.826.0.1.3680043.8.498.99.12345678901234567890123456789012345"


@pytest.fixture(scope="module")
def patient(world) -> requests.Session:
    """A browser that opened the patient link of the published study (token in the link, cookie after)."""
    study = world.study.study_uid
    issued = world.operator.post(f"/drimbox/studies/{study}/patient-link", json={"subject": "INS-279035121518989"})
    assert issued.status_code == 200, issued.text
    session = requests.Session()
    session.trust_env = False
    session.verify = world.box.ca_bundle
    opened = session.get(issued.json()["url"], timeout=30, allow_redirects=False)
    assert opened.status_code == 303 and opened.headers["Location"].startswith("/viewer?"), opened.text[:300]
    assert session.cookies, "the link gave no viewer session"
    return session


def other_patient(world: PeerWorld) -> list[str]:
    other = world.extra["other"]
    return [OTHER_PATIENT_ID, "AUTRE", "19800202", "ACCOTHER1", other.study_uid,
            *(s.series_uid for s in other.series), *(i.sop_instance_uid for s in other.series for i in s.instances)]


def query_tricks(world: PeerWorld) -> list[str]:
    """Every spelling of the study key (names in any case, escaped, tag numbers), repeated keys, lists,
    wildcards and other keys, at study, series and instance level, and the other patient's UIDs in paths."""
    uid, series = world.study.study_uid, world.study.series[0].series_uid
    other = world.extra["other"]
    stranger, other_series = other.study_uid, other.series[0].series_uid
    other_instance = other.series[0].instances[0].sop_instance_uid
    keys = ["StudyInstanceUID", "studyinstanceuid", "STUDYINSTANCEUID", "studyInstanceUid", "%53tudyInstanceUID",
            "Study%49nstanceUID", "0020000D", "0020000d", "0020,000D", "(0020,000D)", "x0020000D"]
    queries = []
    for key in keys:
        queries += [
            f"{key}={uid}", f"{key}={stranger}", f"{key}=*", f"{key}={uid[:-2]}*", f"{key}=",
            f"{key}={uid}&{key}={stranger}", f"{key}={stranger}&{key}={uid}",
            f"{key}={uid},{stranger}", f"{key}={uid}%5C{stranger}", f"{key}={uid}%2C{stranger}",
            f"{key}={uid}&StudyInstanceUID={stranger}", f"{key}[]={uid}", f"{key}={uid}&{key}[]={stranger}",
        ]
    queries += ["", "limit=1000", f"PatientID={OTHER_PATIENT_ID}", "PatientID=*", "00100020=*", "PatientName=AUTRE*",
                f"StudyInstanceUID={uid}&PatientID=*", f"StudyInstanceUID={uid}&00100010=*",
                f"StudyInstanceUID={uid}&SeriesInstanceUID={other_series}",
                f"StudyInstanceUID={uid}&SOPInstanceUID={other_instance}", f"StudyInstanceUID={uid}&fuzzymatching=true",
                f"StudyInstanceUID={uid}&includefield=all&limit=1&limit=100000", "AccessionNumber=ACCOTHER1"]
    targets = []
    for level in ("studies", "series", "instances"):
        targets += [f"/dicom-web/{level}?{query}" for query in queries]
    scoped = [f"/dicom-web/studies/{uid}/series", f"/dicom-web/studies/{uid}/instances",
              f"/dicom-web/studies/{uid}/series/{series}/instances"]
    for path in scoped:
        targets += [f"{path}?{query}" for query in (
            f"StudyInstanceUID={stranger}", f"studyinstanceuid={stranger}", f"0020000D={stranger}",
            f"SeriesInstanceUID={other_series}", f"0020000E={other_series}", f"SOPInstanceUID={other_instance}",
            f"PatientID={OTHER_PATIENT_ID}", "includefield=all", "PatientID=*", "SeriesInstanceUID=*")]
    targets += [f"/dicom-web/studies/{stranger}/series", f"/dicom-web/studies/{stranger}/metadata",
                f"/dicom-web/studies/{uid}/series/{other_series}/instances",
                f"/dicom-web/studies/{uid}/series/{other_series}/metadata",
                f"/dicom-web/studies/{uid}/series/{series}/instances/{other_instance}/metadata",
                f"/dicom-web/studies/{uid}%2F..%2F{stranger}/series", f"/dicom-web/studies/{uid},{stranger}/series",
                f"/dicom-web/series/{other_series}", f"/dicom-web/instances/{other_instance}",
                f"/wado?requestType=WADO&studyUID={stranger}&seriesUID={other_series}&objectUID={other_instance}"]
    return targets


def test_a_patient_link_never_lists_another_patient(world, patient):
    uid = world.study.study_uid
    own = patient.get(world.box.vi_url + f"/dicom-web/studies?StudyInstanceUID={uid}", headers=DICOM_JSON,
                      timeout=30)
    assert own.status_code == 200 and [item["0020000D"]["Value"] for item in own.json()] == [[uid]]
    forbidden = other_patient(world)
    failures = []
    for target in query_tricks(world):
        answer = patient.get(world.box.vi_url + target, headers=DICOM_JSON, timeout=30, allow_redirects=False)
        leaked = [text for text in forbidden if text in answer.text]
        if leaked or answer.status_code >= 500:
            failures.append((target, answer.status_code, leaked[:2]))
        elif answer.status_code == 200 and answer.headers.get("Content-Type", "").startswith("application/dicom+json"):
            studies = {item.get("0020000D", {}).get("Value", [uid])[0] for item in answer.json()}
            if studies - {uid}:
                failures.append((target, 200, sorted(studies - {uid})))
    assert not failures, failures[:10]


def test_refusals_inside_the_study_do_not_tell_what_else_the_pacs_holds(world, patient):
    """Asking, inside the session's study, for another patient's series or instance and for a UID that exists
    nowhere must give the same answer: Orthanc's own error texts differ ("No series ... in study ..." against
    "Accessing an inexistent series"), which told a link holder whether a UID is in the PACS."""
    uid, series = world.study.study_uid, world.study.series[0].series_uid
    other = world.extra["other"]
    other_series, other_instance = other.series[0].series_uid, other.series[0].instances[0].sop_instance_uid
    pairs = [
        (f"/dicom-web/studies/{uid}/series/{{}}", other_series, DICOM_PARTS),
        (f"/dicom-web/studies/{uid}/series/{{}}/metadata", other_series, DICOM_JSON),
        (f"/dicom-web/studies/{uid}/series/{{}}/rendered", other_series, {"Accept": "image/jpeg"}),
        (f"/dicom-web/studies/{uid}/series/{series}/instances/{{}}", other_instance, DICOM_PARTS),
        (f"/dicom-web/studies/{uid}/series/{series}/instances/{{}}/metadata", other_instance, DICOM_JSON),
        (f"/dicom-web/studies/{uid}/series/{series}/instances/{{}}/frames/1", other_instance,
         {"Accept": "multipart/related; type=application/octet-stream"}),
        (f"/dicom-web/studies/{uid}/series/{series}/instances/{{}}/rendered", other_instance, {"Accept": "image/png"}),
    ]
    for template, existing, headers in pairs:
        answers = [patient.get(world.box.vi_url + template.format(value), headers=headers, timeout=30)
                   for value in (existing, RANDOM_UID)]
        seen = [(a.status_code, a.content.replace(value.encode(), b"<uid>"))
                for a, value in zip(answers, (existing, RANDOM_UID), strict=True)]
        assert seen[0] == seen[1], (template, seen)
        assert 400 <= answers[0].status_code < 500, (template, seen)
        assert existing not in answers[0].text and "Orthanc" not in answers[0].text, (template, answers[0].text)
