"""The appel contextuel's parsing: names, emptiness, encodings (spec-facts §8)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest

from drimbox.consumer.appel import MANDATORY, AppelRefused, parse_appel

FORM = "application/x-www-form-urlencoded"
VALID = {
    "Patient.identifier.value": "279035121518989",
    "Patient.identifier.system": "urn:oid:1.2.250.1.213.1.4.10",
    "Patient.name.family": "PAT-TROIS",
    "Patient.name.given": "DOMINIQUE MARIE",
    "Patient.gender": "female",
    "Patient.birthDate": "1979-03-28",
    "Address.district": "63220",
    "InformationEtConsentement": "true",
    "PatientID": "IPP0001",
    "PatientIDIssuer": "1.2.250.1.999.1.1",
}


def test_a_complete_call_is_read_with_plus_or_percent20_spaces():
    for body in (urlencode(VALID).encode(), urlencode(VALID).replace("+", "%20").encode()):
        appel = parse_appel(body, FORM + "; charset=UTF-8")
        assert appel.given == "DOMINIQUE MARIE" and appel.ins == "279035121518989"
        assert appel.ins_oid == "1.2.250.1.213.1.4.10" and appel.sex == "F"
        assert appel.birth_date == dt.date(1979, 3, 28) and appel.situation == ""


def test_utf8_and_the_optional_situation():
    appel = parse_appel(urlencode({**VALID, "Patient.name.family": "LÉA-ÇA", "Situation": "1690000001"}).encode(),
                        FORM)
    assert appel.family == "LÉA-ÇA" and appel.situation == "1690000001"


@pytest.mark.parametrize("name", MANDATORY)
def test_each_empty_or_missing_mandatory_parameter_is_named(name):
    for values in ({**VALID, name: ""}, {k: v for k, v in VALID.items() if k != name}):
        with pytest.raises(AppelRefused) as refused:
            parse_appel(urlencode(values).encode(), FORM)
        assert refused.value.parameter == name and refused.value.problem == "empty"


def test_names_are_case_sensitive_and_unknown_ones_refused():
    for extra in ({"patientid": "x"}, {"StudyInstanceUID": "1.2.3"}, {"InformationEtOppositionConsultation": "1"}):
        with pytest.raises(AppelRefused) as refused:
            parse_appel(urlencode({**VALID, **extra}).encode(), FORM)
        assert refused.value.parameter == next(iter(extra)) and refused.value.problem == "unknown"


def test_repeated_parameter_and_bad_bodies():
    with pytest.raises(AppelRefused) as refused:
        parse_appel((urlencode(VALID) + "&PatientID=OTHER").encode(), FORM)
    assert refused.value.parameter == "PatientID" and refused.value.problem == "repeated"
    for body, content_type in ((urlencode(VALID).encode(), "application/json"),
                               (urlencode(VALID).encode() + b"&%ff=1", FORM),
                               (b"PatientID", FORM)):
        with pytest.raises(AppelRefused) as refused:
            parse_appel(body, content_type)
        assert refused.value.problem == "not_form"


def test_an_ins_system_that_is_no_ins_oid_and_a_bad_date_are_named():
    with pytest.raises(AppelRefused) as refused:
        parse_appel(urlencode({**VALID, "Patient.identifier.system": "1.2.3"}).encode(), FORM)
    assert refused.value.parameter == "Patient.identifier.system"
    with pytest.raises(AppelRefused) as refused:
        parse_appel(urlencode({**VALID, "Patient.birthDate": "28/03/1979"}).encode(), FORM)
    assert refused.value.parameter == "Patient.birthDate"
    assert parse_appel(urlencode({**VALID, "Patient.birthDate": "19790328"}).encode(), FORM).birth_date.year == 1979
