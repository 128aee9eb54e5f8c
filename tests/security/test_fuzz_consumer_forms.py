"""Fuzzing the consumer's two forms, both posted from outside: the appel contextuel (urlencoded, from any RIS or
DPI, before any login) and the KOS file upload (multipart). Property: a value or the documented refusal
(AppelRefused naming a parameter of the interface, ValueError), in bounded time."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import example, given
from hypothesis import strategies as st
from sec_limits import FUZZ, time_limit

from drimbox.consumer.appel import FORM_TYPE, MANDATORY, OPTIONAL, AppelContextuel, AppelRefused, parse_appel
from drimbox.web.multipart_form import parse_form_data

NAMES = [*MANDATORY, *OPTIONAL, "patient.identifier.value", "Patient.identifier.value[]", "x", "", "%00", "&", "="]
VALUES = st.one_of(st.text(max_size=40), st.sampled_from(["1.2.250.1.213.1.4.8", "19800115", "1980-01-15", "female",
                                                         "\r\nX: y", "\udcff", "%ff", "+", " ", "0" * 5000]))
pairs = st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=16)


def appel(body: bytes, content_type: str = FORM_TYPE) -> AppelContextuel | AppelRefused:
    with time_limit(2):
        try:
            return parse_appel(body, content_type)
        except AppelRefused as refused:
            return refused


@FUZZ
@given(pairs)
def test_appel_from_random_parameters(fields):
    body = urlencode(fields, errors="surrogatepass").encode("utf-8", "surrogatepass")
    outcome = appel(body)
    if isinstance(outcome, AppelRefused):
        assert outcome.parameter in ("", *NAMES), outcome.parameter
    else:
        assert outcome.ins and outcome.family and {name for name, _ in fields} <= {*MANDATORY, *OPTIONAL}


@FUZZ
@given(st.binary(max_size=4000), st.sampled_from([FORM_TYPE, FORM_TYPE + "; charset=utf-8", "text/plain", "",
                                                   "APPLICATION/X-WWW-FORM-URLENCODED", "multipart/form-data"]))
@example(b"%ff=1", FORM_TYPE)
@example(b"a" * 100_000, FORM_TYPE)
def test_appel_from_random_bytes(body, content_type):
    outcome = appel(body, content_type)
    assert isinstance(outcome, (AppelRefused, AppelContextuel))


def form(body: bytes, content_type: str) -> dict[str, bytes] | ValueError:
    with time_limit(2):
        try:
            return parse_form_data(body, content_type, max_bytes=64 * 1024)
        except ValueError as refused:
            return refused


BOUNDARIES = st.sampled_from(["b", "", '"q"', "x" * 200, "b\r\nX-Injected: 1", "\u00e9", "--"])


@FUZZ
@given(BOUNDARIES, st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=200)), max_size=8),
       st.sampled_from(["multipart/form-data", "application/x-drimbox-form-data", "MULTIPART/FORM-DATA", "text/x"]))
def test_kos_upload_from_random_parts(boundary, parts, media_type):
    chunks = [b"--" + boundary.encode("utf-8", "surrogatepass") + b"\r\n"
              + f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode("utf-8", "surrogatepass")
              + value + b"\r\n" for name, value in parts]
    body = b"".join(chunks) + b"--" + boundary.encode("utf-8", "surrogatepass") + b"--\r\n"
    outcome = form(body, f"{media_type}; boundary={boundary}")
    assert isinstance(outcome, (dict, ValueError))
    if isinstance(outcome, dict):
        assert all(isinstance(value, bytes) for value in outcome.values())


@FUZZ
@given(st.binary(max_size=8000), st.text(max_size=80))
@example(b"x" * 70_000, "multipart/form-data; boundary=b")
def test_kos_upload_from_random_bytes(body, content_type):
    outcome = form(body, content_type)
    assert isinstance(outcome, (dict, ValueError))
    if isinstance(outcome, dict):
        assert len(body) <= 64 * 1024
