"""The viewer's DICOMweb gate against the real box (nginx + Orthanc + DICOMweb), with studies of two patients.

Orthanc's DICOMweb drops query keys it does not know and searches without them: a viewer session of one study
must never get another patient's data, whatever spelling, repetition or encoding the query uses. Every request
is either answered from the rebuilt URI (the session's study pinned) or refused with a JSON 403.
"""

from __future__ import annotations

import pytest

from drimbox.samples.studies import make_study
from drimbox.testing import store_scu

from .conftest import RADIOLOGIST, browser, query_of

pytestmark = pytest.mark.integration

OTHER_PATIENT_ID = "IPP-OTHER-7731"
OTHER_PATIENT_NAME = "AUTRE^Patiente"


@pytest.fixture(scope="module")
def other_patient_study(viewer_box, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("other-patient")
    content = make_study(folder, patient_id=OTHER_PATIENT_ID, patient_name=OTHER_PATIENT_NAME,
                         birth_date="19800202", sex="F", accession="ACCOTHER1")
    store_scu(viewer_box, folder)
    return content.study_uid


@pytest.fixture(scope="module")
def session_of_a(viewer_box, viewer_operator, studies, other_patient_study):
    a = studies["a"]
    link = viewer_operator.get(f"/drimbox/studies/{a.content.study_uid}/viewer-link").json()["url"]
    session = browser(viewer_box)
    answer = session.get(link + f"&login_hint={RADIOLOGIST}&prompt=none", timeout=30)
    assert query_of(answer.url)["StudyInstanceUIDs"] == a.content.study_uid
    return session


def get(session, box, path: str):
    return session.get(box.vi_url + path, timeout=30, headers={"Accept": "application/dicom+json"})


def assert_only_study(answer, uid: str, forbidden: list[str]) -> None:
    assert answer.status_code == 200, answer.text
    for text in forbidden:
        assert text not in answer.text
    studies = {item["0020000D"]["Value"][0] for item in answer.json() if "0020000D" in item}
    assert studies <= {uid}


def test_canonical_searches_answer_the_session_study_only(viewer_box, studies, session_of_a, other_patient_study):
    a, b = studies["a"], studies["b"]
    uid, s = a.content.study_uid, a.content.series[0].series_uid
    forbidden = [OTHER_PATIENT_ID, "AUTRE", other_patient_study, b.content.study_uid]
    paths = [
        f"/dicom-web/studies?StudyInstanceUID={uid}&includefield=00081030&includefield=00080060&limit=101"
        "&offset=0&fuzzymatching=false",
        f"/dicom-web/studies?0020000D={uid}",
        f"/dicom-web/studies?0020000d={uid}&includefield=00100020",
        f"/dicom-web/studies?%53tudyInstanceUID={uid}",
        f"/dicom-web/studies/{uid}/series?includefield=0008103E",
        f"/dicom-web/studies/{uid}/instances?limit=1000",
        f"/dicom-web/studies/{uid}/series/{s}/instances?includefield=all",
        f"/dicom-web/series?StudyInstanceUID={uid}",
        f"/dicom-web/instances?0020000D={uid}",
    ]
    for path in paths:
        answer = get(session_of_a, viewer_box, path)
        assert_only_study(answer, uid, forbidden)
        assert answer.json(), path  # the study itself is found
    study_level = get(session_of_a, viewer_box, f"/dicom-web/studies?0020000d={uid}&includefield=00100020").json()
    assert [item["00100020"]["Value"] for item in study_level] == [[a.content.patient_id]]


def test_queries_the_gate_does_not_understand_are_refused(viewer_box, studies, session_of_a, other_patient_study):
    a, b = studies["a"], studies["b"]
    uid, other, s = a.content.study_uid, b.content.study_uid, a.content.series[0].series_uid
    i = a.content.series[0].instances[0].sop_instance_uid
    stranger = other_patient_study
    tricks = []
    for prefix in ("/dicom-web/studies?", "/dicom-web/series?", "/dicom-web/instances?"):
        tricks += [prefix + query for query in (
            f"studyinstanceuid={uid}", f"STUDYINSTANCEUID={uid}", f"Studyinstanceuid={uid}",
            f"%73tudyinstanceuid={uid}", f"studyinstanceuid={stranger}",
            f"StudyInstanceUID={uid}&studyinstanceuid={stranger}",
            f"StudyInstanceUID={uid}&StudyInstanceUID={stranger}",
            f"StudyInstanceUID={uid}&0020000D={stranger}", f"0020000d={uid}&0020000D={other}",
            f"StudyInstanceUID={uid}&StudyInstanceUID={uid}",
            f"StudyInstanceUID={uid},{stranger}", f"StudyInstanceUID={uid}%2C{stranger}",
            f"StudyInstanceUID={uid}%5C{stranger}", "StudyInstanceUID=*", f"StudyInstanceUID={uid[:-1]}*",
            f"StudyInstanceUID={uid[:-1]}?", f"StudyInstanceUID={uid[:-1]}%3F", "StudyInstanceUID=", "0020000D=",
            f"StudyInstanceUID={uid}&PatientID={OTHER_PATIENT_ID}", f"StudyInstanceUID={uid}&00100020=*",
            f"StudyInstanceUID={uid};PatientID={OTHER_PATIENT_ID}", f"StudyInstanceUID={uid}%3BPatientID%3D*",
            f"StudyInstanceUID={uid}%26PatientID%3D*", f"StudyInstanceUID={uid}%0d%0aX-Drimbox-Grant:%20x",
            f"StudyInstanceUID={uid}&limit=1&limit=5000", f"StudyInstanceUID={uid}&fuzzymatching=TRUE",
            f"PatientID={OTHER_PATIENT_ID}", "limit=1000", "",
        )]
    tricks += [
        "/dicom-web/studies", "/dicom-web/series", "/dicom-web/instances",
        f"/dicom-web/studies/{uid}/series?StudyInstanceUID={stranger}",
        f"/dicom-web/studies/{uid}/series?studyinstanceuid={stranger}",
        f"/dicom-web/studies/{uid}/series?0020000D={uid}",
        f"/dicom-web/studies/{uid}/series?PatientID={OTHER_PATIENT_ID}",
        f"/dicom-web/studies/{uid}/instances?studyinstanceuid={stranger}",
        f"/dicom-web/studies/{uid}/series/{s}/instances?StudyInstanceUID={stranger}",
        f"/dicom-web/studies/{uid}/series/{s}/instances?0020000d={stranger}",
        f"/dicom-web/studies/{uid}/series/{s}/instances?SOPInstanceUID={i}",
        f"/dicom-web/studies/{uid}/metadata?StudyInstanceUID={stranger}",
        f"/dicom-web/studies/{uid}%2F..%2F{stranger}/series",
        f"/dicom-web/studies/{uid};x/series",
        f"/dicom-web/studies/{uid},{stranger}/series",
        f"/dicom-web/studies/{stranger}/series",
        f"/dicom-web/studies?StudyInstanceUID={stranger}",
    ]
    for path in tricks:
        answer = get(session_of_a, viewer_box, path)
        assert answer.status_code == 403, (path, answer.status_code, answer.text[:300])
        assert answer.headers["Content-Type"].startswith("application/json"), path
        assert answer.json()["status"] == 403 and answer.json()["error"], path
        assert OTHER_PATIENT_ID not in answer.text and stranger not in answer.text
    # an encoded fragment is refused like the rest
    raw = get(session_of_a, viewer_box, f"/dicom-web/studies?StudyInstanceUID={uid}%23x")
    assert raw.status_code == 403
    # without a session, the same tricks are 401 (log in again), never data
    assert get(browser(viewer_box), viewer_box, f"/dicom-web/studies?studyinstanceuid={uid}").status_code == 401


def test_a_refused_search_is_audited(viewer_box, viewer_operator, session_of_a, studies):
    uid = studies["a"].content.study_uid
    assert get(session_of_a, viewer_box, f"/dicom-web/studies?studyinstanceuid={uid}").status_code == 403
    denied = viewer_operator.get("/drimbox/audit?outcome=denied").json()
    assert any(e["action"] == "viewer-dicomweb" and "does not know" in e["reason"] for e in denied)
