"""Which manifest still opens which images as the study changes: replaced (superseded), IOCM rejection,
withdrawal. See drimbox.trust.peer_facts for the rules."""

from __future__ import annotations

import pytest

from drimbox.samples.reports import make_oru
from drimbox.samples.studies import make_rejection_note
from drimbox.testing import demo_study, store_scu
from peer_helpers import dicom_parts, start_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lw(tmp_path_factory, pki):
    world = start_world(tmp_path_factory.mktemp("peer-life"), pki, series=(("CT", 3), ("CT", 2)), jpegls=False)
    yield world
    world.stop()


def _status(w, path, kos):
    response = w.session().get(w.wado + path, headers=w.headers(kos=kos), timeout=60)
    return response.status_code, response


def _next_kos(w, after: str) -> str:
    status = w.operator.wait_study(w.study.study_uid, lambda s: s.get("kos") and s["kos"]["kos_uid"] != after,
                                   timeout=90, what=f"a manifest after {after}")
    return status["kos"]["kos_uid"]


def test_superseded_rejected_withdrawn(lw):
    w = lw
    study = w.study.study_uid
    kos1 = w.kos_uid
    s0, s1 = w.series_path(0), w.series_path(1)
    assert _status(w, s0, kos1)[0] == 200
    assert _status(w, f"/studies/{study}", kos1)[0] == 200

    # 1. Images arrive after publication: a new manifest; the first one still opens what it lists.
    added = demo_study(w.tmp / "added", study_uid=study, series=(("CT", 2),))
    store_scu(w.box, w.tmp / "added")
    kos2 = _next_kos(w, kos1)
    new_series = f"/studies/{study}/series/{added.series[0].series_uid}"
    assert _status(w, s0, kos1)[0] == 200
    code, response = _status(w, new_series, kos1)
    assert code == 404 and "series" in response.json()["error"]
    # Orthanc holds the new series too: through the first manifest, the study is what that manifest lists.
    listed = [i.sop_instance_uid for series in w.study.series for i in series.instances]
    code, response = _status(w, f"/studies/{study}", kos1)
    assert code == 200, response.text
    assert sorted(ds.SOPInstanceUID for ds in dicom_parts(response)) == sorted(listed)
    assert response.headers["X-Transfer-Syntax"] and "max-age" in response.headers["Strict-Transport-Security"]
    metadata = w.session().get(w.wado + f"/studies/{study}/metadata",
                               headers={**w.headers(kos=kos1), "Accept": "application/dicom+json"}, timeout=60)
    assert metadata.status_code == 200, metadata.text
    assert sorted(item["00080018"]["Value"][0] for item in metadata.json()) == sorted(listed)
    code, response = _status(w, f"/studies/{study}", kos2)
    assert code == 200 and len(dicom_parts(response)) == 7
    assert _status(w, new_series, kos2)[0] == 200

    # 2. An IOCM rejection note rejects one instance: 410 through the manifests that listed it.
    rejected = w.study.series[0].instances[0].sop_instance_uid
    make_rejection_note(w.tmp / "note", w.study, [rejected])
    store_scu(w.box, w.tmp / "note")
    kos3 = _next_kos(w, kos2)
    for kos in (kos1, kos2):
        code, response = _status(w, f"{s0}/instances/{rejected}", kos)
        assert code == 410, (kos, response.text)
    assert _status(w, f"{s0}/instances/{rejected}", kos3)[0] == 404  # the new manifest does not list it
    other = w.study.series[0].instances[1].sop_instance_uid
    assert _status(w, f"{s0}/instances/{other}", kos3)[0] == 200
    # Orthanc still holds the rejected instance: the series is sent without it.
    code, response = _status(w, s0, kos3)
    assert code == 200, response.text
    sent = [ds.SOPInstanceUID for ds in dicom_parts(response)]
    assert sorted(sent) == sorted(i.sop_instance_uid for i in w.study.series[0].instances[1:])
    code, response = _status(w, s0, kos1)  # the superseded manifest listed it: not sent either
    assert code == 200 and rejected not in [ds.SOPInstanceUID for ds in dicom_parts(response)]
    assert _status(w, s1, kos1)[0] == 200  # untouched series, superseded manifest

    # 3. The report is withdrawn: every manifest of the study stops opening anything.
    report_id = w.operator.study(study)["kos"]["report_id"]
    answer = w.operator.post("/drimbox/reports", data=make_oru(None, event="withdraw", report_id=report_id),
                             headers={"Content-Type": "application/hl7-v2"})
    assert answer.status_code < 300, answer.text
    w.operator.wait_study(study, lambda s: s["state"] == "withdrawn", timeout=60, what="withdrawn")
    for kos in (kos1, kos2, kos3):
        code, response = _status(w, s1, kos)
        assert code == 404 and "withdrawn" in response.json()["error"], (kos, response.text)
