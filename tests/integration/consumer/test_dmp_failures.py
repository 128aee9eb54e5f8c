"""What the professional sees when the DMP cannot give the history: explained pages, never a 500."""

from __future__ import annotations

import dataclasses
import html

import pytest

from .conftest import PATIENT_1, RADIOLOGIST, browser
from .test_appel_contextuel import give_reason, open_context

pytestmark = pytest.mark.integration

NOBODY = dataclasses.replace(PATIENT_1, ins="180017512300999", family="SANS-DMP")


def test_dmp_unreachable_offers_a_retry_that_works(consumer_box, exams, dmp_sim):
    session = browser(consumer_box)
    context_url, page = open_context(session, consumer_box, PATIENT_1, RADIOLOGIST)
    dmp_sim.faults.configure("http500", count=1)
    try:
        failed = give_reason(session, context_url, page)
    finally:
        dmp_sim.faults.configure("none")
    assert failed.status_code == 502 and 'id="retry"' in failed.text and "ne répond pas" in failed.text
    retry = session.get(context_url + "?refresh=1", timeout=60)
    assert retry.status_code == 200 and exams["p1-ct"].kos_uid in retry.text


@pytest.mark.parametrize(("exists", "authorized", "says"), [
    (False, True, "n'a pas de dossier médical partagé"),
    (True, False, "n'est pas autorisé"),
])
def test_no_dmp_or_closed_dmp_is_explained(consumer_box, dmp_sim, exists, authorized, says):
    patient = dataclasses.replace(NOBODY, ins=f"18001751230{int(exists)}{int(authorized)}99")
    cx = f"{patient.ins}^^^&{patient.ins_oid}&ISO^NH"
    dmp_sim.store.set_patient(cx, exists, authorized)
    session = browser(consumer_box)
    context_url, page = open_context(session, consumer_box, patient, RADIOLOGIST)
    answer = give_reason(session, context_url, page)
    assert answer.status_code == 403 and says in html.unescape(answer.text) and 'id="history"' not in answer.text
