"""The appel contextuel against a real box: 400 naming the parameter, 303 to a context bound to the browser,
PSC login, activity, access reason, the DMP existence test and the patient's history from the DMP simulator."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from urllib.parse import urlencode, urlsplit

import pytest

from .conftest import GENERAL_PRACTITIONER, PATIENT_1, PATIENT_2, RADIOLOGIST, appel_of, browser, hidden_fields

pytestmark = pytest.mark.integration

CONTEXT = "/drimbox/consumer/context"


def post_appel(session, box, values: dict[str, str] | str, **kwargs):
    body = values if isinstance(values, str) else urlencode(values)
    return session.post(box.vi_url + CONTEXT, data=body.encode(), allow_redirects=False, timeout=30,
                        headers={"Content-Type": "application/x-www-form-urlencoded"}, **kwargs)


def open_context(session, box, patient, professional: str, **extra: str):
    """Post the appel, log in on PSC (prompt=none shortcut) and come back to the context: its page."""
    answer = post_appel(session, box, appel_of(patient, **extra))
    assert answer.status_code == 303, answer.text
    context_url = box.vi_url + answer.headers["Location"]
    first = session.get(context_url, allow_redirects=False, timeout=30)
    assert first.status_code == 303 and first.headers["Location"].startswith("/drimbox/psc/login?return=")
    page = session.get(box.vi_url + first.headers["Location"] + f"&login_hint={professional}&prompt=none",
                       timeout=60)
    return context_url, page


def give_reason(session, context_url: str, page, reason: str = "consent", text: str = ""):
    assert 'id="reason-form"' in page.text, page.text[:2000]
    return session.post(context_url + "/reason", data={**hidden_fields(page.text), "reason": reason,
                                                        "reason_text": text}, timeout=60)


def statistics(operator, day: dt.date) -> list[str]:
    response = operator.get(f"/drimbox/consumer/statistics.csv?day={day.isoformat()}")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    return response.text.splitlines()


def test_bad_calls_get_400_naming_the_parameter_and_count_as_errors(consumer_box, operator):
    today = dt.datetime.now(dt.timezone.utc).date()
    before = statistics(operator, today)
    session = browser(consumer_box)
    cases = [
        ({**appel_of(PATIENT_1), "StudyInstanceUID": "1.2.3"}, "StudyInstanceUID"),
        ({**appel_of(PATIENT_1), "patientID": "x"}, "patientID"),
        ({**appel_of(PATIENT_1), "Address.district": ""}, "Address.district"),
        ({k: v for k, v in appel_of(PATIENT_1).items() if k != "InformationEtConsentement"},
         "InformationEtConsentement"),
    ]
    for values, named in cases:
        answer = post_appel(session, consumer_box, values)
        assert answer.status_code == 400, (named, answer.status_code)
        assert answer.headers["Content-Type"].startswith("text/html") and f"« {named} »" in answer.text
        assert "Set-Cookie" not in answer.headers
    after = statistics(operator, today)
    assert after[0] == "Date;Heure;Nombre_Appel;Statut_Appel"
    new = after[len(before):]
    assert len(new) == len(cases) and all(line.endswith(";1;erreur") for line in new), new
    # the statistics are the operator's: not on the viewer host
    assert session.get(consumer_box.vi_url + "/drimbox/consumer/statistics.csv", timeout=10).status_code == 403


def test_appel_login_reason_and_history_from_the_dmp(consumer_box, operator, exams, dmp_sim):
    session = browser(consumer_box)
    today = dt.datetime.now(dt.timezone.utc).date()
    before = statistics(operator, today)
    values = appel_of(PATIENT_1)
    # spaces as %20 instead of + are the same form
    answer = post_appel(session, consumer_box, urlencode(values).replace("+", "%20"))
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert location.startswith(CONTEXT + "/") and len(location.rsplit("/", 1)[1]) == 43
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("drimbox_consumer=") and "HttpOnly" in cookie and "Secure" in cookie
    assert "SameSite=Lax" in cookie and "Path=/drimbox/consumer/" in cookie and "Max-Age=" in cookie
    assert statistics(operator, today)[len(before):] == [statistics(operator, today)[-1]]
    assert statistics(operator, today)[-1].endswith(";1;succes")

    context_url, page = open_context(session, consumer_box, PATIENT_1, RADIOLOGIST)
    assert urlsplit(page.url).path == urlsplit(context_url).path  # PSC brought us back to the context
    assert "CONSO-UN" in page.text and "LÉA" in page.text and "15/01/1980" in page.text and "75115" in page.text
    assert "ne sont pas destinées au diagnostic" in page.text
    history = give_reason(session, context_url, page)
    assert history.status_code == 200 and 'id="history"' in history.text, history.text[:3000]
    rows = history.text.split('class="exam"')[1:]
    assert len(rows) == 2, history.text
    assert exams["p1-mr"].kos_uid in rows[0] and exams["p1-ct"].kos_uid in rows[1]  # newest first
    assert "2024-02-20" in rows[0] and "MR" in rows[0] and "Genou" in rows[0]
    assert "2023-05-10" in rows[1] and "CT" in rows[1] and "Centre de radiologie Ambroise" in rows[1]
    assert exams["p2-ct"].kos_uid not in history.text
    assert f"<code>{PATIENT_1.ins}</code>" in history.text and 'id="ins"' in history.text  # INS on demand

    filtered = session.get(context_url, params={"modality": "MR"}, timeout=30)
    assert filtered.status_code == 200 and filtered.text.count('class="exam"') == 1
    assert exams["p1-mr"].kos_uid in filtered.text
    dated = session.get(context_url, params={"from": "2023-01-01", "to": "2023-12-31"}, timeout=30)
    assert dated.text.count('class="exam"') == 1 and exams["p1-ct"].kos_uid in dated.text
    english = session.get(context_url, params={"lang": "en"}, timeout=30)
    assert "Imaging history" in english.text and "not meant for diagnosis" in english.text

    audit = operator.get(f"/drimbox/audit?professional={RADIOLOGIST}").json()
    listed = [e for e in audit if e["action"] == "consumer-dmp-history" and e["outcome_status"] == 200]
    assert listed and listed[0]["patient_id"] == PATIENT_1.ins and listed[0]["purpose"] == "normal"
    assert listed[0]["structure_id"] == "334422928290001"


def test_other_reason_goes_to_the_audit_and_emergency_is_bris_de_glace(consumer_box, operator, exams):
    session = browser(consumer_box)
    context_url, page = open_context(session, consumer_box, PATIENT_2, RADIOLOGIST)
    empty = give_reason(session, context_url, page, "other", "   ")
    assert empty.status_code == 400 and 'id="reason-problem"' in empty.text
    history = give_reason(session, context_url, page, "other", "Avis  pour RCP")
    assert history.status_code == 200 and exams["p2-ct"].kos_uid in history.text
    audit = operator.get(f"/drimbox/audit?professional={RADIOLOGIST}").json()
    assert any(e["action"] == "consumer-access-reason" and e["purpose"] == "normal: Avis pour RCP"
               and e["patient_id"] == PATIENT_2.ins for e in audit)

    urgent = browser(consumer_box)
    context_url, page = open_context(urgent, consumer_box, PATIENT_2, RADIOLOGIST)
    assert give_reason(urgent, context_url, page, "emergency").status_code == 200
    audit = operator.get(f"/drimbox/audit?professional={RADIOLOGIST}").json()
    assert any(e["action"] == "consumer-dmp-history" and e["purpose"] == "bris_de_glace" for e in audit)


def test_two_tabs_two_patients_and_a_context_is_bound_to_its_browser(consumer_box, exams):
    session = browser(consumer_box)
    first_url, page = open_context(session, consumer_box, PATIENT_1, RADIOLOGIST)
    first = give_reason(session, first_url, page)
    second = post_appel(session, consumer_box, appel_of(PATIENT_2))  # a second tab, same browser and login
    second_url = consumer_box.vi_url + second.headers["Location"]
    assert second_url != first_url
    page = session.get(second_url, timeout=30)
    second_page = give_reason(session, second_url, page)
    assert exams["p2-ct"].kos_uid in second_page.text and exams["p1-ct"].kos_uid not in second_page.text
    again = session.get(first_url, timeout=30)
    assert exams["p1-ct"].kos_uid in again.text and exams["p2-ct"].kos_uid not in again.text
    assert "CONSO-UN" in first.text and "CONSO-DEUX" not in again.text

    # another browser, even logged in as the same professional, does not reach these contexts
    stranger = browser(consumer_box)
    other_url, _ = open_context(stranger, consumer_box, PATIENT_2, RADIOLOGIST)
    refused = stranger.get(first_url, timeout=30)
    assert refused.status_code == 404 and "CONSO-UN" not in refused.text
    assert stranger.get(consumer_box.vi_url + CONTEXT + "/" + "A" * 43, timeout=30).status_code == 404


def test_situation_preselects_the_activity(consumer_box, exams):
    session = browser(consumer_box)
    context_url, page = open_context(session, consumer_box, PATIENT_1, GENERAL_PRACTITIONER,
                                     Situation="1690000001")
    if "/drimbox/psc/activity" in page.url:  # the viewer's login flow asks first; pick the other one
        import re

        fields = dict(re.findall(r"name='(return|csrf)' value='([^']*)'", page.text))
        import html

        page = session.post(consumer_box.vi_url + "/drimbox/psc/activity",
                            data={**{k: html.unescape(v) for k, v in fields.items()}, "activity": "0.0"}, timeout=30)
    assert 'id="activity-form"' in page.text, page.text[:2000]
    assert 'value="0.1" id="activity-0.1" checked' in page.text and 'id="activity-0.0" checked' not in page.text
    reason = session.post(context_url + "/activity", data={**hidden_fields(page.text), "activity": "0.1"},
                          timeout=30)
    history = give_reason(session, context_url, reason)
    assert history.status_code == 200 and "CENTRE HOSPITALIER DE DEMONSTRATION" in history.text


class _Forms(HTMLParser):
    """The forms of a page as a browser sees them: attributes and named inputs, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[dict[str, str], list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values, []))
        elif tag in ("input", "select", "textarea") and self.forms and values.get("name"):
            self.forms[-1][1].append(values["name"])


# spec-facts section 8, as RIS and DPI vendors integrate it
APPEL_PARAMETERS = ["Patient.identifier.value", "Patient.identifier.system", "Patient.name.family",
                    "Patient.name.given", "Patient.gender", "Patient.birthDate", "Address.district",
                    "InformationEtConsentement", "PatientID", "PatientIDIssuer", "Situation"]


def test_the_launch_page_posts_exactly_the_appel_contextuel(consumer_box, exams):
    session = browser(consumer_box)
    page = session.get(consumer_box.vi_url + CONTEXT + "?Patient.name.family=CONSO-UN", timeout=30)
    assert page.status_code == 200 and 'value="CONSO-UN"' in page.text
    parser = _Forms()
    parser.feed(page.text)
    (attributes, names), = parser.forms
    assert attributes["method"].lower() == "post" and attributes["action"] == CONTEXT
    assert attributes["enctype"] == "application/x-www-form-urlencoded" and attributes["accept-charset"] == "UTF-8"
    assert names == APPEL_PARAMETERS
    # what the browser sends once the tester has filled the fields: the box takes it as a RIS's call
    values = appel_of(PATIENT_1, Situation="334422928290001")
    answer = post_appel(session, consumer_box, urlencode([(name, values[name]) for name in names]))
    assert answer.status_code == 303 and answer.headers["Location"].startswith(CONTEXT + "/")
