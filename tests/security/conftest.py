"""The box's attack suite: in-process fuzzing of every parser (hypothesis, bounded) and a live campaign
against a running box on loopback (``integration`` marker). See docs/security.md, "Attack suite"."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from drimbox.crypto.pki import create_test_pki

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# the live campaign reuses the peer-access world (one box, PSC simulator, signed whitelist, a published study)
sys.path.insert(0, str(HERE.parent / "integration" / "peer"))


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    # box-c: an organisation certificate of the trusted CA that no whitelist of the campaign names
    return create_test_pki(tmp_path_factory.mktemp("pki"), hosts=("localhost", "127.0.0.1"),
                           boxes=("box-a", "box-b", "box-c"))


@pytest.fixture(scope="session")
def world(tmp_path_factory, pki):
    """The campaign's box: box-a's and box-b's operator DNs whitelisted, one published study, and a study of
    another patient in the PACS (``world.extra["other"]``: its StudyContent), never published."""
    from campaign import OTHER_PATIENT_ID, OTHER_PATIENT_NAME
    from peer_helpers import start_world

    from drimbox.samples.studies import make_study
    from drimbox.testing import store_scu

    w = start_world(tmp_path_factory.mktemp("campaign"), pki, series=(("CT", 2),), jpegls=False)
    try:
        folder = w.tmp / "other-patient"
        w.extra["other"] = make_study(folder, patient_id=OTHER_PATIENT_ID, patient_name=OTHER_PATIENT_NAME,
                                      birth_date="19800202", sex="F", accession="ACCOTHER1",
                                      series=(("MR", 2),))
        store_scu(w.box, folder)
    except BaseException:
        w.stop()
        raise
    yield w
    w.stop()


@pytest.fixture(scope="session")
def markers(world) -> list[bytes]:
    """What only Orthanc's own REST would put in an answer: its resource ids and its JSON field names."""
    ids: list[bytes] = []
    for level in ("patients", "studies", "series", "instances"):
        answer = world.operator.get(f"/{level}")
        assert answer.status_code == 200
        ids += [i.encode() for i in answer.json()]
    assert ids
    return ids + [b'"MainDicomTags"', b'"DicomAet"', b'"ParentPatient"', b'"ApiVersion"', b'"ExpandedTags"']
