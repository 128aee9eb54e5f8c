"""Fuzzing what carries identity: the box's sealed cookies (PSC session, login state, viewer sessions),
patient link tokens, PSC ID tokens, and hostile PSC answers (discovery, JWKS, userinfo, introspection).
Property: only the documented refusal (SessionError, TokenRefused, PscError), bounded time, and a mutated
signed token never passes unless its decoded content is unchanged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from functools import partial

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sec_limits import FUZZ, FUZZ_SMALL, ScriptedServer, measured, mutate

from drimbox.psc.client import PscClient, unverified_expiry
from drimbox.psc.errors import PscError
from drimbox.psc.model import Introspection, Professional
from drimbox.psc.session import (
    SessionError,
    UserSession,
    begin_login,
    open_login_state,
    open_user_session,
    seal_login_state,
    seal_user_session,
    unseal,
)
from drimbox.psc.settings import PscSettings
from drimbox.psc.userinfo import parse_userinfo
from drimbox.sim.psc import PscSimulator
from drimbox.store.store import Store
from drimbox.web.patient_tokens import LocalSigner, PatientTokenVerifier, TokenRefused
from drimbox.util.json_depth import loads_untrusted, nesting_depth
from drimbox.web.viewer_session import COOKIE_PREFIX, ViewerSession, cookie_name, decide, seal_session

SECRET = b"s" * 32
STUDY = "1.2.250.1.999.1.1"
RADIOLOGIST = "810002000015"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decoded(token: str, first: int = 0) -> list[bytes]:
    """The bytes the dot-separated base64url segments stand for, read as leniently as the decoders do
    (python's urlsafe_b64decode drops characters outside the alphabet)."""
    return [base64.urlsafe_b64decode(re.sub(r"[^A-Za-z0-9_-]", "", p) + "==") for p in token.split(".")[first:]]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# Deeply nested JSON, the one input random text rarely reaches: json's C decoder raises RecursionError.
json_bombs = st.integers(1, 100_000).map(nested)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                          max_size=4), max_leaves=20)
json_payloads = st.one_of(json_bombs, json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200))
token_text = st.one_of(
    st.text(max_size=300),
    st.tuples(json_payloads, json_payloads, st.text(max_size=40)).map(lambda p: f"{b64(p[0])}.{b64(p[1])}.{p[2]}"),
    st.tuples(st.sampled_from(["v1", "v2", ""]), json_payloads, st.text(max_size=40)).map(
        lambda p: f"{p[0]}.{b64(p[1])}.{p[2]}"),
)


def refused_only(call, *errors: type[BaseException]):
    outcome, elapsed, _ = measured(call, seconds=2)
    assert not isinstance(outcome, BaseException) or isinstance(outcome, errors), f"raised {outcome!r}"
    assert elapsed < 2
    return outcome


# --- the box's own sealed cookies -------------------------------------------------------------------------


@FUZZ
@given(token_text, st.sampled_from(["psc-login", "psc-session", "viewer-session"]))
def test_unseal_refuses_with_session_error_only(value, purpose):
    refused_only(lambda: unseal(value, SECRET, purpose=purpose), SessionError)
    refused_only(lambda: open_user_session(value, SECRET), SessionError)
    refused_only(lambda: open_login_state(value, SECRET, state="x"), SessionError)


@FUZZ
@given(json_bombs)
def test_cookie_with_deeply_nested_json(bomb):
    refused_only(lambda: unseal(f"v1.{b64(bomb)}.{b64(b'x' * 32)}", SECRET, purpose="psc-session"), SessionError)


def _professional() -> Professional:
    return parse_userinfo({"SubjectNameID": RADIOLOGIST, "given_name": "A", "family_name": "B"})


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 3), st.binary(max_size=3)), min_size=1, max_size=3))
def test_mutated_sealed_cookies_never_open_changed(changes):
    session = UserSession(professional=_professional(), expires_at=4e9, session_id="sid")
    viewer = ViewerSession(STUDY, "1.2.3", "professional", RADIOLOGIST)
    sealed = [(seal_user_session(session, SECRET), "psc-session"),
              (seal_login_state(begin_login("/x"), SECRET), "psc-login"),
              (seal_session(viewer, SECRET, max_age=60), "viewer-session")]
    for value, purpose in sealed:
        mutated = mutate(value.encode(), changes).decode("latin-1")
        opened = refused_only(partial(unseal, mutated, SECRET, purpose=purpose), SessionError)
        if not isinstance(opened, SessionError):
            assert decoded(mutated, 1) == decoded(value, 1)


@FUZZ
@given(st.sampled_from(["GET", "get", "POST", "HEAD", "OPTIONS"]),
       st.lists(st.sampled_from(["/dicom-web", "/studies", f"/{STUDY}", "/series", "/1.2.3", "/..", "/%2e%2e",
                                 "%2f", "/", "//", "?", "StudyInstanceUID=", STUDY, "&", "0020000D=1.2.3", ";a=b",
                                 "/metadata", "\\", "%5c", "#"]), max_size=10).map("".join),
       st.one_of(st.text(max_size=200), token_text.map(lambda t: f"{COOKIE_PREFIX}{'0' * 16}={t}")))
def test_viewer_decision(method, uri, cookie):
    sealed = seal_session(ViewerSession(STUDY, "1.2.3", "professional", "x"), SECRET, max_age=60)
    good = f"{cookie_name(STUDY)}={sealed}"
    for header in (cookie, f"{cookie}; {good}"):
        decision = refused_only(partial(decide, method, uri, header, SECRET))
        assert decision.status in (200, 401, 403)
        if decision.status == 200:
            assert decision.target.study_uid == STUDY and good in header and method.upper() == "GET"
            path = decision.target.orthanc_path
            assert path.startswith("/dicom-web/studies") and "/../" not in path + "/" and "/./" not in path + "/"


# --- patient link tokens ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def patient_signer(tmp_path_factory) -> LocalSigner:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('store') / 'drimbox.db'}")
    return LocalSigner(store, issuer="https://vi.box.test")


@FUZZ
@given(token_text)
def test_patient_token_refused_with_token_refused_only(patient_signer, token):
    verifier = PatientTokenVerifier(audience="https://vi.box.test", local=patient_signer)
    refused_only(lambda: verifier.verify(token, study_uid=STUDY), TokenRefused)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 3), st.binary(max_size=3)), min_size=1, max_size=3))
def test_mutated_patient_token_never_passes_changed(patient_signer, changes):
    verifier = PatientTokenVerifier(audience="https://vi.box.test", local=patient_signer)
    token = patient_signer.issue(audience="https://vi.box.test", study_uid=STUDY)
    mutated = mutate(token.encode(), changes).decode("latin-1")
    grant = refused_only(lambda: verifier.verify(mutated, study_uid=STUDY), TokenRefused)
    if not isinstance(grant, TokenRefused):
        assert decoded(mutated) == decoded(token)


# --- PSC: ID tokens against the PSC simulator's real keys ---------------------------------------------------


@pytest.fixture(scope="module")
def psc() -> Iterator[PscSimulator]:
    with PscSimulator() as simulator:
        yield simulator


@pytest.fixture(scope="module")
def psc_client(psc) -> PscClient:
    return PscClient(PscSettings(issuer=psc.issuer, client_id="drimbox-fuzz"), redirect_uri="http://127.0.0.1/cb")


@FUZZ_SMALL
@given(token_text)
def test_id_token_garbage_refused(psc_client, token):
    refused_only(lambda: psc_client.validate_id_token(token, "nonce"), PscError)


@FUZZ_SMALL
@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 3), st.binary(max_size=3)), min_size=1, max_size=3))
def test_mutated_id_token_never_passes_changed(psc, psc_client, changes):
    token = psc.mint_tokens(RADIOLOGIST, client_id="drimbox-fuzz", nonce="n-1")["id_token"]
    assert psc_client.validate_id_token(token, "n-1")
    mutated = mutate(token.encode(), changes).decode("latin-1")
    claims = refused_only(lambda: psc_client.validate_id_token(mutated, "n-1"), PscError)
    if not isinstance(claims, PscError):
        assert decoded(mutated) == decoded(token)


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_algorithm_confusion_refused(psc, psc_client, alg):
    """A token 'signed' with no algorithm, or with HMAC keyed by PSC's public key, must not pass."""
    genuine = psc.mint_tokens(RADIOLOGIST, client_id="drimbox-fuzz", nonce="n")["id_token"]
    claims = json.loads(decoded(genuine)[1])
    public = json.dumps(psc_client._jwks_document(refresh=False)["keys"][0])
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    mac = hmac.new(public.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}." + ("" if alg == "none" else b64(mac))
    with pytest.raises(PscError):
        psc_client.validate_id_token(forged, "n")


@FUZZ
@given(st.one_of(st.text(max_size=200), json_bombs.map(lambda b: f"h.{b64(b)}.s"), token_text))
def test_unverified_expiry_never_raises(token):
    assert isinstance(refused_only(lambda: unverified_expiry(token)), float)


# --- PSC: a hostile or broken PSC ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_psc() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.answer("/.well-known/", "application/json", json.dumps({
        "issuer": server.base, "jwks_uri": server.base + "/jwks", "userinfo_endpoint": server.base + "/userinfo",
        "introspection_endpoint": server.base + "/introspect", "token_endpoint": server.base + "/token",
        "authorization_endpoint": server.base + "/auth"}).encode())
    yield server
    server.close()


@pytest.fixture(scope="module")
def hostile_client(hostile_psc) -> PscClient:
    return PscClient(PscSettings(issuer=hostile_psc.base, client_id="c", http_timeout_seconds=3),
                     redirect_uri="http://127.0.0.1/cb", client_secret="secret")


answers = st.one_of(json_values.map(lambda v: json.dumps(v).encode()), json_bombs, st.binary(max_size=300))


@FUZZ
@given(answers, st.sampled_from(["application/json", "application/jwt", "text/html"]), st.sampled_from([200, 401, 500]))
def test_hostile_introspection_and_userinfo(hostile_psc, hostile_client, body, content_type, status):
    hostile_psc.answer("/introspect", content_type, body, status=status)
    hostile_psc.answer("/userinfo", content_type, body, status=status)
    hostile_psc.answer("/jwks", "application/json", body, status=status)
    hostile_client._introspections.forget("opaque-token")
    assert isinstance(refused_only(lambda: hostile_client.introspect("opaque-token"), PscError),
                      (Introspection, PscError))
    assert isinstance(refused_only(lambda: hostile_client.userinfo("opaque-token"), PscError),
                      (Professional, PscError))


activity_lists = st.one_of(json_values, st.lists(st.one_of(json_values, st.dictionaries(
    st.sampled_from(["raisonSocialeSite", "codeSecteurDactivite", "ancienIdentifiantDeLaStructure"]), json_values)),
    max_size=3))
exercices = st.one_of(json_values, st.lists(st.one_of(json_values, st.fixed_dictionaries(
    {}, optional={"activities": activity_lists, "codeProfession": json_values, "nomDexercice": json_values})),
    max_size=3))
userinfo_documents = st.one_of(json_values, st.fixed_dictionaries(
    {"SubjectNameID": st.one_of(st.just(RADIOLOGIST), json_values)},
    optional={"SubjectRefPro": st.one_of(json_values, st.fixed_dictionaries({}, optional={"exercices": exercices})),
              "given_name": json_values, "family_name": json_values}))


@FUZZ
@given(userinfo_documents)
@example({"SubjectNameID": RADIOLOGIST, "SubjectRefPro": {"exercices": 5}})
@example({"SubjectNameID": RADIOLOGIST, "SubjectRefPro": {"exercices": [{"activities": 5}]}})
def test_userinfo_documents(document):
    professional = refused_only(lambda: parse_userinfo(document), PscError)
    if isinstance(professional, Professional):
        assert professional.id_nat and all(choice.key for choice in professional.activity_choices())


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@FUZZ
@given(json_values)
def test_nesting_depth_is_measured_without_recursion(value):
    text = json.dumps(value)
    assert nesting_depth(text) == _depth(value)
    assert json.dumps(loads_untrusted(text)) == text  # compared as text: NaN, even inside a list, is unequal to itself
    deep = "[" * 5000 + text + "]" * 5000
    with pytest.raises(ValueError):
        loads_untrusted(deep)
