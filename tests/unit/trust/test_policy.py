"""The peer access decision: every status the specification names, in the right order."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from drimbox.audit import AuditEvent
from drimbox.trust.accept import EXPLICIT_VR_LE, JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS
from drimbox.psc.model import Introspection
from drimbox.trust.policy import (
    PeerRequest,
    PublishedManifest,
    TokenInfo,
    decide_peer_request,
    instances_to_send,
    parse_resource,
    refuse_unverified_certificate,
)

NOW = 1_700_000_000.0
STUDY, SERIES, OTHER_SERIES = "1.2.250.1.1", "1.2.250.1.1.1", "1.2.250.1.1.2"
SOP_A, SOP_B, SOP_REJECTED = "1.2.250.1.1.1.1", "1.2.250.1.1.1.2", "1.2.250.1.1.1.3"
KOS, WITHDRAWN_KOS, OTHER_STUDY_KOS = "1.2.250.9.1", "1.2.250.9.2", "1.2.250.9.3"
CT = "1.2.840.10008.5.1.4.1.1.2"
PEER_DN = "CN=db.peer.example,OU=0002 123456789,O=Peer,C=FR"
ISSUER = "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet"
VALIDATOR_ACCEPT = "".join(
    f'multipart/related; type="application/dicom";transfer-syntax={ts};q={q};boundary=**,'
    for ts, q in [(JPEG_LOSSLESS_SV1, "1"), (JPEG_LS_LOSSLESS, "0.8"), (EXPLICIT_VR_LE, "0.1")]
)


@dataclass
class InMemoryFacts:
    """A plain in-memory PeerFacts; counts introspections to check they are not made needlessly."""

    client_certificate_required: bool = True
    token_issuer: str = ISSUER
    accepted_token_clients: frozenset = frozenset()
    tokens: dict = field(default_factory=lambda: {
        "good": TokenInfo(active=True, id_nat="810001234567", exp=NOW + 600, structure_id="1750000001",
                          client_id="drimbox-peer", authorized_party="drimbox-peer", issuer=ISSUER),
        "inactive": TokenInfo(active=False),
        "expired": TokenInfo(active=True, id_nat="810001234567", exp=NOW - 1, issuer=ISSUER),
        "no-expiry": TokenInfo(active=True, id_nat="810001234567", issuer=ISSUER),
        "other-issuer": TokenInfo(active=True, id_nat="810001234567", exp=NOW + 600,
                                  issuer="https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet"),
        "two-clients": TokenInfo(active=True, id_nat="810001234567", exp=NOW + 600, issuer=ISSUER,
                                 client_id="drimbox-peer", authorized_party="someone-else"),
        "azp-only": TokenInfo(active=True, id_nat="810001234567", exp=NOW + 600, issuer=ISSUER,
                              authorized_party="drimbox-peer"),
        "aud-only": TokenInfo(active=True, id_nat="810001234567", exp=NOW + 600, issuer=ISSUER,
                              audiences=("drimbox-peer",)),
        "other-client": TokenInfo(active=True, id_nat="810001234567", exp=NOW + 600, issuer=ISSUER,
                                  client_id="drimbox-elsewhere"),
    })
    stored_ts: str = JPEG_LS_LOSSLESS
    fail_introspection: bool = False
    introspections: int = 0

    def introspect(self, token):
        self.introspections += 1
        if self.fail_introspection:
            raise ConnectionError("PSC unreachable")
        return self.tokens.get(token)

    def manifest(self, kos_uid):
        series = {SERIES: {SOP_A: CT, SOP_B: CT, SOP_REJECTED: CT}}
        return {
            KOS: PublishedManifest(KOS, STUDY, series, rejected_instances=frozenset({SOP_REJECTED})),
            WITHDRAWN_KOS: PublishedManifest(WITHDRAWN_KOS, STUDY, series, withdrawn=True),
            OTHER_STUDY_KOS: PublishedManifest(OTHER_STUDY_KOS, "1.2.3", {}),
        }.get(kos_uid)

    def stored_transfer_syntax(self, study, series, instance):
        return self.stored_ts

    def is_whitelisted_operator_dn(self, dn):
        return dn == PEER_DN


def request(path=f"studies/{STUDY}/series/{SERIES}", *, method="GET", token="good", kos=KOS,
            accept=VALIDATOR_ACCEPT, dn=PEER_DN, verify="SUCCESS", **extra_headers):
    headers = {k.replace("_", "-"): v for k, v in extra_headers.items()}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if kos is not None:
        headers["kos-sopinstanceuid"] = kos
    if accept is not None:
        headers["accept"] = accept
    return PeerRequest(method=method, path=path, headers=headers, client_dn=dn, client_verify=verify,
                       request_id="r1")


def decide(req, facts=None):
    return decide_peer_request(req, facts or InMemoryFacts(), now=NOW)


def test_allowed_series_sends_stored_jpeg_ls_untouched():
    decision = decide(request())
    assert (decision.allow, decision.status, decision.reason) == (True, 200, "allowed")
    assert decision.transfer_syntax == JPEG_LS_LOSSLESS
    assert decision.orthanc_accept == 'multipart/related; type="application/dicom"; transfer-syntax=*'
    assert decision.headers["Strict-Transport-Security"] == "max-age=31536000"
    event = AuditEvent.from_row(decision.audit)
    assert (event.outcome_status, event.action, event.professional_id, event.structure_id) == (
        200, "retrieve-series", "810001234567", "1750000001")
    assert (event.kos_uid, event.study_uid, event.series_uid, event.caller_dn, event.request_id) == (
        KOS, STUDY, SERIES, PEER_DN, "r1")


def test_transcodes_when_stored_syntax_refused():
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_LOSSLESS_SV1}'
    decision = decide(request(accept=accept))
    assert decision.allow and decision.transfer_syntax == JPEG_LOSSLESS_SV1
    assert decision.orthanc_accept.endswith(f"transfer-syntax={JPEG_LOSSLESS_SV1}")


def test_repeated_accept_headers_and_missing_accept():
    accept = [f"transfer-syntax={JPEG_LOSSLESS_SV1};q=1", f"transfer-syntax={JPEG_LS_LOSSLESS};q=0.5"]
    assert decide(request(accept=accept)).transfer_syntax == JPEG_LS_LOSSLESS
    assert decide(request(accept=None)).transfer_syntax == JPEG_LS_LOSSLESS


@pytest.mark.parametrize("path, level", [
    (f"studies/{STUDY}", "retrieve-study"),
    (f"/studies/{STUDY}/metadata", "retrieve-study-metadata"),
    (f"studies/{STUDY}/series/{SERIES}/metadata", "retrieve-series-metadata"),
    (f"studies/{STUDY}/series/{SERIES}/instances/{SOP_A}", "retrieve-instance"),
    (f"studies/{STUDY}/series/{SERIES}/instances/{SOP_A}/metadata", "retrieve-instance-metadata"),
    (f"studies/{STUDY}/series/{SERIES}/instances/{SOP_A}/frames/1,2", "retrieve-frames"),
])
def test_every_retrieve_level_allowed(path, level):
    accept = "*/*"
    decision = decide(request(path, accept=accept))
    assert decision.allow, decision.reason
    assert decision.audit["action"] == level
    if "metadata" in path:
        assert decision.orthanc_accept == "application/dicom+json" and decision.transfer_syntax is None
    if "frames" in path:
        assert decision.orthanc_accept == 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


@pytest.mark.parametrize("req, status, reason", [
    (request(method="POST"), 405, "only GET"),
    (request("studies"), 404, "not a WADO-RS retrieve"),
    (request("studies?PatientID=1"), 404, "not a WADO-RS retrieve"),
    (request(f"studies/{STUDY}/series"), 404, "not a WADO-RS retrieve"),
    (request(f"studies/{STUDY}/rendered"), 404, "not a WADO-RS retrieve"),
    (request(f"studies/{STUDY}/series/{SERIES}/instances/{SOP_A}/frames/1/metadata"), 404, "not a WADO-RS"),
    (request(""), 404, "not a WADO-RS retrieve"),
    (request("studies/1.2.x"), 400, "malformed UID"),
    (request(f"studies/{STUDY}/series/{SERIES}/instances/{SOP_A}/frames/0"), 400, "malformed frame"),
    (request(token=None), 400, "missing Authorization"),
    (request(token=None, authorization="Basic dXNlcjpwYXNz"), 400, "Bearer"),
    (request(kos=None), 400, "missing KOS-SOPInstanceUID"),
    (request(kos="not-a-uid"), 400, "malformed KOS"),
    (request(accept="application/dicom+json"), 400, "Accept"),
    (request(f"studies/{STUDY}/metadata", accept='multipart/related; type="application/dicom"'), 400, "dicom+json"),
    (request(token="unknown"), 401, "not active"),
    (request(token="inactive"), 401, "not active"),
    (request(token="expired"), 401, "expired"),
    (request(kos="1.2.250.9.99"), 404, "unknown KOS"),
    (request(kos=WITHDRAWN_KOS), 404, "withdrawn"),
    (request(kos=OTHER_STUDY_KOS), 404, "study not covered"),
    (request(f"studies/{STUDY}/series/{OTHER_SERIES}"), 404, "series not covered"),
    (request(f"studies/{STUDY}/series/{SERIES}/instances/1.2.250.1.1.1.77"), 404, "instance not covered"),
    (request(f"studies/{STUDY}/series/{SERIES}/instances/{SOP_REJECTED}"), 410, "rejected"),
    (request(f"studies/{STUDY}/series/{SERIES}/instances/{SOP_REJECTED}/frames/1", accept="*/*"), 410, "rejected"),
    (request(token="no-expiry"), 401, "no expiry"),
    (request(token="other-issuer"), 401, "issuer"),
    (request(token="two-clients"), 401, "two different clients"),
    (request(dn=""), 403, "client certificate"),
    (request(verify="NONE"), 403, "client certificate"),
    (request(verify="FAILED:certificate has expired"), 403, "certificate has expired"),
    (request(dn="CN=db.intruder.example,O=Intruder,C=FR"), 403, "not an operator DN"),
    (request(accept="transfer-syntax=1.2.840.10008.1.2.1;q=2"), 400, "no well-formed item"),
    (request(accept="transfer-syntax=1.2.840.10008.1.2.1;q=nan, transfer-syntax=*;q=-1"), 400, "no well-formed"),
    (request(f"studies/{STUDY}/series/{SERIES}/instances/{SOP_A}/frames/1",
             accept=f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_LS_LOSSLESS}'), 400,
     "no usable media type"),
    (request(accept="transfer-syntax=1.2.840.10008.1.2.4.91"), 400, "no acceptable transfer syntax"),
])
def test_denials(req, status, reason):
    decision = decide(req)
    assert not decision.allow
    assert decision.status == status
    assert reason in decision.reason
    assert decision.transfer_syntax is None and decision.orthanc_accept is None
    assert decision.headers["Strict-Transport-Security"].startswith("max-age=")
    assert decision.headers["Content-Type"] == "application/json"
    assert decision.audit["outcome_status"] == status and decision.audit["reason"] == decision.reason
    assert f'"status": {status}' in decision.json_body()


def test_challenge_headers():
    assert decide(request(token="expired")).headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert decide(request(token=None)).headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'
    assert decide(request(method="DELETE")).headers["Allow"] == "GET"


def test_client_certificate_required_by_default_and_checked_first():
    facts = InMemoryFacts()
    assert decide(request(), facts).allow
    for req in (request(dn="CN=intruder"), request(verify="NONE"), request(verify="FAILED:expired", dn=PEER_DN),
                request("studies", dn="", verify="NONE"), request(kos=None, verify="NONE"),
                request(f"studies/{STUDY}/metadata", dn="CN=intruder")):
        decision = decide(req, facts)
        assert decision.status == 403, (req, decision.reason)
    assert facts.introspections == 1  # only the allowed request reached PSC


def test_client_certificate_off_is_not_checked():
    facts = InMemoryFacts(client_certificate_required=False)
    assert decide(request(dn="", verify="NONE"), facts).allow
    assert decide(request(dn="", verify="NONE", token="inactive"), facts).status == 401


def test_unverified_certificate_refusal_is_an_audited_403():
    decision = refuse_unverified_certificate(request(verify="FAILED:certificate revoked"), now=NOW)
    assert (decision.allow, decision.status) == (False, 403)
    assert "certificate revoked" in decision.reason
    assert decision.audit["outcome_status"] == 403 and decision.audit["caller_dn"] == PEER_DN


@pytest.mark.parametrize("token, accepted, allowed", [
    ("good", frozenset(), True),
    ("other-client", frozenset(), True),  # empty list: any client of the configured issuer
    ("good", frozenset({"drimbox-peer"}), True),
    ("azp-only", frozenset({"drimbox-peer"}), True),
    ("aud-only", frozenset({"drimbox-peer"}), True),
    ("other-client", frozenset({"drimbox-peer"}), False),
    ("good", frozenset({"drimbox-elsewhere"}), False),
])
def test_accepted_token_clients(token, accepted, allowed):
    decision = decide(request(token=token), InMemoryFacts(accepted_token_clients=accepted))
    assert decision.allow is allowed, decision.reason
    if not allowed:
        assert decision.status == 401 and "does not accept" in decision.reason
        assert decision.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_token_info_reads_client_audience_and_issuer_from_introspection():
    answer = Introspection(active=True, sub="f:1", exp=NOW + 60, client_id="drimbox-b", subject_name_id="81",
                           raw={"azp": "drimbox-b", "aud": ["account", "drimbox-b"], "iss": ISSUER})
    info = TokenInfo.from_introspection(answer)
    assert (info.client_id, info.authorized_party, info.audiences, info.issuer) == (
        "drimbox-b", "drimbox-b", ("account", "drimbox-b"), ISSUER)
    assert info.issued_to() == "drimbox-b"
    bare = TokenInfo.from_introspection(Introspection(active=True, raw={"aud": "drimbox-c"}))
    assert bare.issued_to() == "drimbox-c" and bare.issuer == ""


def test_frames_with_the_national_instances_accept_are_uncompressed_octet_stream():
    path = f"studies/{STUDY}/series/{SERIES}/instances/{SOP_A}/frames/1"
    decision = decide(request(path))  # stored JPEG-LS, validator list: SV1 1, JPEG-LS 0.8, Explicit VR LE 0.1
    assert decision.allow, decision.reason
    assert decision.transfer_syntax == EXPLICIT_VR_LE
    assert decision.orthanc_accept == (
        f'multipart/related; type="application/octet-stream"; transfer-syntax={EXPLICIT_VR_LE}')
    decision = decide(request(path), InMemoryFacts(stored_ts=EXPLICIT_VR_LE))
    assert decision.allow and decision.transfer_syntax == EXPLICIT_VR_LE
    assert decision.orthanc_accept == 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def test_failing_fact_denies_with_503():
    decision = decide(request(), InMemoryFacts(fail_introspection=True))
    assert (decision.allow, decision.status) == (False, 503)
    assert "PSC unreachable" in decision.reason and decision.headers["Retry-After"]


def test_hsts_max_age_is_configurable():
    decision = decide_peer_request(request(), InMemoryFacts(), hsts_max_age=600, now=NOW)
    assert decision.headers["Strict-Transport-Security"] == "max-age=600"


def test_parse_resource_ignores_query_and_slashes():
    resource = parse_resource(f"/studies/{STUDY}/series/{SERIES}/?x=1")
    assert (resource.level, resource.study, resource.series) == ("series", STUDY, SERIES)


@dataclass
class FactsListingStoredInstances(InMemoryFacts):
    stored: dict = field(default_factory=dict)

    def stored_instance_uids(self, study, series):
        if series is None:
            return {uid for uids in self.stored.values() for uid in uids}
        return self.stored.get(series, set())


def test_study_or_series_holding_exactly_what_the_kos_covers_goes_to_orthanc():
    exact = FactsListingStoredInstances(stored={SERIES: {SOP_A, SOP_B}})
    for path in (f"studies/{STUDY}/series/{SERIES}", f"studies/{STUDY}"):
        decision = decide(request(path, accept="*/*"), exact)
        assert decision.allow and not decision.curated
        assert decision.target == f"/dicom-web/{path}"
    fewer = FactsListingStoredInstances(stored={SERIES: {SOP_A}})  # nothing extra: Orthanc sends what it has
    assert decide(request(), fewer).target == f"/dicom-web/studies/{STUDY}/series/{SERIES}"


def test_study_or_series_holding_more_than_the_kos_goes_to_the_curated_retrieve():
    with_rejected = FactsListingStoredInstances(stored={SERIES: {SOP_A, SOP_B, SOP_REJECTED}})
    decision = decide(request(), with_rejected)
    assert decision.allow and decision.curated and decision.reason == "allowed: only the instances this KOS lists"
    assert decision.target == f"/drimbox/peer-retrieve/{KOS}/studies/{STUDY}/series/{SERIES}"
    assert decision.auth_request_headers()["X-Drimbox-Target"] == decision.target
    assert decision.transfer_syntax == JPEG_LS_LOSSLESS  # the Accept is still negotiated
    instance = decide(request(f"studies/{STUDY}/series/{SERIES}/instances/{SOP_A}"), with_rejected)
    assert not instance.curated and instance.target.startswith("/dicom-web/")
    late_series = FactsListingStoredInstances(stored={SERIES: {SOP_A}, OTHER_SERIES: {"1.2.250.1.1.2.1"}})
    assert not decide(request(), late_series).curated
    metadata = decide(request(f"studies/{STUDY}/metadata", accept="*/*"), late_series)
    assert metadata.curated and metadata.target == f"/drimbox/peer-retrieve/{KOS}/studies/{STUDY}/metadata"


def test_study_holding_nothing_the_kos_still_covers_is_404():
    only_rejected = FactsListingStoredInstances(stored={SERIES: {SOP_REJECTED}})
    decision = decide(request(), only_rejected)
    assert (decision.status, decision.target) == (404, "")
    assert "nothing" in decision.reason


def test_instances_to_send_keeps_the_kos_order_and_drops_rejected_and_unknown():
    series = {SERIES: {SOP_B: CT, SOP_A: CT, SOP_REJECTED: CT}, OTHER_SERIES: {"1.2.250.1.1.2.1": CT}}
    manifest = PublishedManifest(KOS, STUDY, series, rejected_instances=frozenset({SOP_REJECTED}))
    study = parse_resource(f"studies/{STUDY}")
    assert instances_to_send(manifest, {SOP_A, SOP_B, "1.2.250.1.1.2.1"}, study) is None
    assert instances_to_send(manifest, {SOP_A}, study) is None
    stored = {SOP_A, SOP_B, SOP_REJECTED, "orthanc:abc", "1.2.250.1.1.2.1"}
    assert instances_to_send(manifest, stored, study) == [(SERIES, SOP_B), (SERIES, SOP_A),
                                                          (OTHER_SERIES, "1.2.250.1.1.2.1")]
    one_series = parse_resource(f"studies/{STUDY}/series/{SERIES}")
    assert instances_to_send(manifest, {SOP_A, "orthanc:abc"}, one_series) == [(SERIES, SOP_A)]


def test_target_is_rebuilt_from_the_parsed_path():
    decision = decide(request(f"/studies/{STUDY}/series/{SERIES}/?x=1"))
    assert decision.target == f"/dicom-web/studies/{STUDY}/series/{SERIES}"
    frames = decide(request(f"studies/{STUDY}/series/{SERIES}/instances/{SOP_A}/frames/1,2", accept="*/*"))
    assert frames.target == f"/dicom-web/studies/{STUDY}/series/{SERIES}/instances/{SOP_A}/frames/1,2"


def test_auth_request_mapping_for_nginx():
    allowed = decide(request())
    assert allowed.auth_request_status == 200
    assert allowed.auth_request_headers()["X-Drimbox-Accept"] == allowed.orthanc_accept
    assert allowed.auth_request_headers()["X-Drimbox-Transfer-Syntax"] == JPEG_LS_LOSSLESS
    for req, status in ((request(token="expired"), 401), (request(kos="1.2.250.9.99"), 404),
                        (request(token=None), 400)):
        decision = decide(req)
        assert decision.auth_request_status == (401 if status == 401 else 403)
        assert decision.auth_request_headers()["X-Drimbox-Status"] == str(status)
        assert "X-Drimbox-Accept" not in decision.auth_request_headers()
