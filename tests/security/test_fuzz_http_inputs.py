"""Fuzzing what the HTTP entries parse before anything reaches Orthanc: the Accept negotiation, the peer
access decision (paths, headers, tokens), the HTTP filter (gate and its grants), raw request heads and the
router. Property: only the documented statuses (400/401/403/404/405/410, 200 only for a request that is
allowed), a target rebuilt from parsed UIDs only, no exception, bounded time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial

from hypothesis import example, given
from hypothesis import strategies as st
from sec_limits import FUZZ, measured

from drimbox.trust.accept import (
    ORTHANC_LOSSLESS_TRANSCODABLE,
    AcceptedType,
    choose_transfer_syntax,
    orthanc_accept_header,
    parse_accept,
)
from drimbox.trust.gate import ENTRY_HEADER, GRANT_HEADER, OPERATOR_HEADER, Gate, GateRequest
from drimbox.trust.policy import PeerRequest, PublishedManifest, TokenInfo, decide_peer_request
from drimbox.web.http import Request, Response, Router
from drimbox.web.peer_api import parse_raw_headers

NOW = 1_700_000_000.0
STUDY, SERIES, SOP = "1.2.250.1.999.1", "1.2.250.1.999.1.1", "1.2.250.1.999.1.1.1"
KOS = "1.2.250.1.999.9"
JPEG_LS = "1.2.840.10008.1.2.4.80"
TARGET = re.compile(r"^/dicom-web/studies/[0-9.]+(/series/[0-9.]+(/instances/[0-9.]+(/frames/[0-9,]+)?)?)?"
                    r"(/metadata)?$")


def safe(call):
    outcome, elapsed, _ = measured(call, seconds=2)
    assert not isinstance(outcome, BaseException), f"raised {outcome!r}"
    assert elapsed < 2
    return outcome


# --- Accept -------------------------------------------------------------------------------------------------

ACCEPT_PIECES = ["multipart/related", "; ", ";", ",", '"', "type=", '"application/dicom"', "application/dicom",
                 "transfer-syntax=", JPEG_LS, "1.2.840.10008.1.2.1", "*", "q=", "0.5", "1", "-1", "nan", "1e999",
                 "boundary=**", "*/*", "application/octet-stream", "\\", " ", "\t", "image/jls"]
accept_values = st.one_of(st.text(max_size=300),
                          st.lists(st.sampled_from(ACCEPT_PIECES), max_size=40).map("".join))


@FUZZ
@given(st.lists(accept_values, max_size=4), st.sampled_from([JPEG_LS, "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.50"]),
       st.booleans())
def test_accept_negotiation(values, stored, frames):
    accepted = safe(partial(parse_accept, values))
    assert all(isinstance(a, AcceptedType) and 0.0 <= a.q <= 1.0 for a in accepted)
    chosen = safe(partial(choose_transfer_syntax, accepted, stored, transcodable=ORTHANC_LOSSLESS_TRANSCODABLE,
                          frames=frames))
    if chosen is not None:
        header = safe(partial(orthanc_accept_header, chosen, stored, frames=frames))
        assert "\r" not in header and "\n" not in header


def test_accept_huge_header_bounded():
    value = ",".join(["multipart/related; type=\"application/dicom\"; transfer-syntax=*; q=0.5"] * 20_000)
    assert len(safe(partial(parse_accept, [value, '"' * 100_000]))) == 20_000


# --- the peer decision --------------------------------------------------------------------------------------


@dataclass
class Facts:
    """The outside world of the decision (PSC, store, Orthanc) held in memory: one good token, one KOS."""

    client_certificate_required: bool = False
    token_issuer: str = ""
    accepted_token_clients: frozenset = frozenset()
    introspected: list = field(default_factory=list)

    def introspect(self, token: str) -> TokenInfo | None:
        self.introspected.append(token)
        return TokenInfo(active=True, id_nat="810001234567", exp=NOW + 600) if token == "good" else None

    def manifest(self, kos_uid: str) -> PublishedManifest | None:
        return PublishedManifest(KOS, STUDY, {SERIES: {SOP: "1.2.840.10008.5.1.4.1.1.2"}}) if kos_uid == KOS else None

    def stored_transfer_syntax(self, study: str, series: str, instance: str | None) -> str:
        return JPEG_LS

    def is_whitelisted_operator_dn(self, dn: str) -> bool:
        return dn == "CN=peer"


PATH_PIECES = ["studies", "series", "instances", "frames", "metadata", "rendered", "thumbnail", "bulkdata", STUDY,
               SERIES, SOP, "1", "1,2", "0", "..", ".", "%2e%2e", "%2f", "%2F", "", "//", "?", "&", "=", ";x=1",
               "\x00", " ", "\\", "1.2.3" * 20, "01.2", "1..2", "\u0661.\u0662"]
paths = st.lists(st.sampled_from(PATH_PIECES), max_size=12).map("/".join)
header_values = st.one_of(st.text(max_size=80), st.sampled_from(["Bearer good", "bearer good", "Bearer  good ",
                                                                 "Basic Z29vZA==", "Bearer", KOS, " " + KOS]))
headers = st.fixed_dictionaries({}, optional={
    "authorization": st.one_of(header_values, st.lists(header_values, max_size=3)),
    "kos-sopinstanceuid": st.one_of(header_values, st.lists(header_values, max_size=3)),
    "accept": st.one_of(accept_values, st.lists(accept_values, max_size=3)),
})


@FUZZ
@given(st.sampled_from(["GET", "get", "HEAD", "POST", "DELETE", "PROPFIND", "TRACE", ""]), paths, headers,
       st.sampled_from(["SUCCESS", "NONE", "FAILED:x"]), st.sampled_from(["", "CN=peer", "CN=other"]), st.booleans())
@example("GET", f"studies/{STUDY}/series/{SERIES}", {"authorization": "Bearer good", "kos-sopinstanceuid": KOS},
         "NONE", "", False)
def test_peer_decision(method, path, request_headers, verify, dn, require_certificate):
    facts = Facts(client_certificate_required=require_certificate)
    request = PeerRequest(method, path, request_headers, client_dn=dn, client_verify=verify)
    decision = safe(partial(decide_peer_request, request, facts, now=NOW))
    assert decision.status in (200, 400, 401, 403, 404, 405, 410)
    assert decision.auth_request_status in (200, 401, 403)
    assert all("\n" not in str(v) and "\r" not in str(v) for v in decision.auth_request_headers().values())
    if decision.status == 200:
        assert method.upper() == "GET" and facts.introspected == ["good"]
        assert TARGET.match(decision.target), decision.target
        assert STUDY in decision.target
    else:
        assert decision.target == ""
    if require_certificate and (verify != "SUCCESS" or dn != "CN=peer"):
        assert decision.status != 200 and not facts.introspected


# --- the HTTP filter ----------------------------------------------------------------------------------------

GATE = Gate(b"k" * 32, "internal-secret")
URI_PIECES = ["/", "dicom-web", "studies", STUDY, "series", SERIES, "..", "%2e%2e", "%2f", "tools", "patients",
              "instances", "drimbox", "peer", "authz", "health", "viewer", "peer-retrieve", "app", "explorer.html",
              "*", "?", "x=1"]
uris = st.lists(st.sampled_from(URI_PIECES), max_size=10).map(lambda p: "/" + "/".join(p))
granted = f"/dicom-web/studies/{STUDY}/series/{SERIES}"


@FUZZ
@given(uris, st.sampled_from(["GET", "POST", "PUT", "DELETE"]), st.sampled_from(["db", "vi", "admin", "", "DB"]),
       st.one_of(st.none(), st.text(max_size=60), st.sampled_from(["peer", "viewer"]).map(
           lambda scope: GATE.grant(granted, scope=scope))), st.booleans())
def test_gate_never_opens_orthanc_without_a_grant_for_that_uri(uri, method, entry, grant, operator):
    request_headers = {ENTRY_HEADER: entry}
    if grant is not None:
        request_headers[GRANT_HEADER] = grant
    if operator:
        request_headers[OPERATOR_HEADER] = "operator"
    allowed = safe(partial(GATE.allows, GateRequest(uri, method, request_headers)))
    if not allowed:
        return
    if entry == "admin":
        assert operator
    elif entry in ("db", "vi"):
        own = ("/drimbox/peer/", "/drimbox/health") if entry == "db" else \
            ("/drimbox/viewer/", "/drimbox/psc/", "/drimbox/open", "/drimbox/static/")
        assert uri.startswith(own) or (method == "GET" and uri == granted
                                       and grant == GATE.grant(granted, scope="peer" if entry == "db" else "viewer"))
    else:
        raise AssertionError(f"allowed without an entry: {entry!r} {uri}")


@FUZZ
@given(st.text(max_size=100))
def test_forged_grants(text):
    for scope in ("peer", "viewer"):
        assert not GATE.grant_allows(text, granted, scope=scope) or text == GATE.grant(granted, scope=scope)


# --- raw heads and the router -------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2000))
def test_raw_request_heads(raw):
    parsed = safe(partial(parse_raw_headers, raw))
    assert all(name == name.lower() and isinstance(values, list) for name, values in parsed.items())


@FUZZ
@given(st.sampled_from(["GET", "POST", "DELETE", "get", "TRACE"]),
       st.lists(st.sampled_from(["drimbox", "studies", "{x}", "..", "", "peer", "authz", "%2f", STUDY, "\x00"]),
                max_size=8).map(lambda p: "/" + "/".join(p)))
def test_router_answers_404_or_405_for_what_it_does_not_route(method, path):
    router = Router()
    router.add("GET", "/drimbox/studies/{study}", lambda r: Response.json({"study": r.params["study"]}))
    router.add("POST", "/drimbox/peer/authz", lambda r: Response.json({}))
    response = safe(partial(router.dispatch, Request(method, path)))
    assert response.status in (200, 404, 405)
    if response.status == 200:
        assert "/" not in response.body.decode().split('"study": ')[-1].strip("{} \n")
