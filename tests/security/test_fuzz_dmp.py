"""A hostile or broken DMP: the box's DMP client (drimbox.dmp: SOAP, MTOM, query and retrieve readers) reads
mutated, truncated, oversized and garbage answers. Whatever comes back, the client returns a result or raises
DmpError (DmpUnavailable / DmpRejected), within bounded time: never another exception."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sec_limits import FUZZ, FUZZ_SMALL, ScriptedServer, billion_laughs, measured, mutate

from drimbox.config.sections import IdentitySettings
from drimbox.crypto.pki import issue_certificate, make_name, make_root_ca
from drimbox.dmp import mtom, xds_ids
from drimbox.dmp.client import Actor, DmpClient
from drimbox.dmp.errors import DmpError
from drimbox.dmp.settings import DmpSettings
from drimbox.dmp.signing import SigningMaterial
from drimbox.reports.cda import parse_cda
from drimbox.samples.reports import make_cda

ENVELOPE = (f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{xds_ids.SOAP12}" xmlns:a="{xds_ids.WSA}">'
            '<s:Header><a:Action>urn:x</a:Action></s:Header><s:Body>{}</s:Body></s:Envelope>')
QUERY_ANSWER = ENVELOPE.format(
    f'<query:AdhocQueryResponse xmlns:query="{xds_ids.QUERY}" xmlns:rim="{xds_ids.RIM}" '
    f'status="{xds_ids.RESPONSE_SUCCESS}"><rim:RegistryObjectList>'
    f'<rim:ExtrinsicObject id="urn:uuid:1" status="{xds_ids.STATUS_APPROVED}" mimeType="application/dicom">'
    '<rim:Slot name="size"><rim:ValueList><rim:Value>12</rim:Value></rim:ValueList></rim:Slot>'
    '<rim:Slot name="repositoryUniqueId"><rim:ValueList><rim:Value>1.2.3</rim:Value></rim:ValueList></rim:Slot>'
    f'<rim:Classification classificationScheme="{xds_ids.DE_TYPE_CODE}" nodeRepresentation="IMG-KOS">'
    '<rim:Slot name="codingScheme"><rim:ValueList><rim:Value>1.2.250.1.213.1.1.4.12</rim:Value>'
    '</rim:ValueList></rim:Slot>'
    '<rim:Name><rim:LocalizedString value="KOS"/></rim:Name></rim:Classification>'
    f'<rim:ExternalIdentifier identificationScheme="{xds_ids.DE_UNIQUE_ID}" value="1.2.3.4"/>'
    '</rim:ExtrinsicObject></rim:RegistryObjectList></query:AdhocQueryResponse>').encode()
RETRIEVE_SOAP = ENVELOPE.format(
    f'<xds:RetrieveDocumentSetResponse xmlns:xds="{xds_ids.XDS}" xmlns:xop="{xds_ids.XOP}">'
    f'<rs:RegistryResponse xmlns:rs="{xds_ids.RS}" status="{xds_ids.RESPONSE_SUCCESS}"/>'
    '<xds:DocumentResponse><xds:RepositoryUniqueId>1.2.3</xds:RepositoryUniqueId>'
    '<xds:DocumentUniqueId>1.2.3.4</xds:DocumentUniqueId><xds:mimeType>application/dicom</xds:mimeType>'
    '<xds:Document><xop:Include href="cid:kos@dmp"/></xds:Document></xds:DocumentResponse>'
    '</xds:RetrieveDocumentSetResponse>').encode()
RETRIEVE = mtom.build(RETRIEVE_SOAP, xds_ids.ACTION_ITI43,
                      [mtom.Attachment("kos@dmp", b"DICM" * 50, "application/dicom")], boundary="MIMEBoundary_x")
PATIENT_ANSWER = ENVELOPE.format(
    f'<PRPA_IN201308UV02 xmlns="{xds_ids.HL7V3}"><acknowledgement><typeCode code="AA"/></acknowledgement>'
    '<controlActProcess><subject><registrationEvent><subject1><patient><statusCode code="active"/></patient>'
    '</subject1></registrationEvent></subject><queryAck><queryResponseCode code="OK"/></queryAck>'
    '</controlActProcess></PRPA_IN201308UV02>').encode()
SOAP = "application/soap+xml; charset=UTF-8"
PIECES = [b"<", b">", b"</", b"/>", b"--", b"--MIMEBoundary_x", b"\r\n", b"\r\n\r\n", b"Content-ID: <kos@dmp>",
          b"Content-Transfer-Encoding: base64\r\n", b"status=\"\"", b"Failure", b"s:Fault", b"&#0;", b"\x00", b"\xff"]
CONTENT_TYPES = [SOAP, RETRIEVE.content_type, "multipart/related", "multipart/related; boundary=", 'multipart/related;'
                 ' boundary="\u00e9"', "multipart/related; boundary=zz; start=<nothing>", "text/html", ""]


@pytest.fixture(scope="module")
def hostile() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def client(hostile) -> Iterator[DmpClient]:
    issued = issue_certificate(make_root_ca(), make_name("SIGN box-a", ou="3123456789012345"), profile="signing")
    signing = SigningMaterial(key=issued.key, cert=issued.cert, chain=tuple(issued.chain))
    dmp = DmpClient(DmpSettings(base_url=hostile.base + "/dmp", timeout_seconds=3), IdentitySettings(), signing=signing)
    yield dmp
    dmp.close()


ACTOR = Actor.for_report(parse_cda(make_cda()))
PATIENT = "123456789012345^^^&1.2.250.1.213.1.4.10&ISO^NH"


def calls(client: DmpClient):
    return {
        "find": lambda: client.find_documents(PATIENT, actor=ACTOR),
        "entry": lambda: client.find_entry_uuid("1.2.3.4", actor=ACTOR, patient_cx=PATIENT),
        "retrieve": lambda: client.retrieve("1.2.3", "1.2.3.4", actor=ACTOR, patient_cx=PATIENT),
        "patient": lambda: client.check_patient("123456789012345", "1.2.250.1.213.1.4.10", actor=ACTOR),
    }


def run(client: DmpClient, name: str):
    outcome, elapsed, _ = measured(calls(client)[name], seconds=10)
    assert not isinstance(outcome, BaseException) or isinstance(outcome, DmpError), f"{name} raised {outcome!r}"
    assert elapsed < 10
    return outcome


def test_valid_answers_are_read(hostile, client):
    hostile.answer("/", SOAP, QUERY_ANSWER)
    assert [e.unique_id for e in run(client, "find")] == ["1.2.3.4"]
    hostile.answer("/", RETRIEVE.content_type, RETRIEVE.body)
    assert run(client, "retrieve") == b"DICM" * 50
    hostile.answer("/", SOAP, PATIENT_ANSWER)
    assert run(client, "patient").exists


answers = st.sampled_from([("find", SOAP, QUERY_ANSWER), ("entry", SOAP, QUERY_ANSWER),
                           ("retrieve", RETRIEVE.content_type, RETRIEVE.body), ("patient", SOAP, PATIENT_ANSWER)])
edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 40),
                           st.one_of(st.binary(max_size=20), st.sampled_from(PIECES))), min_size=1, max_size=5)


@FUZZ
@given(answers, edits, st.one_of(st.none(), st.sampled_from(CONTENT_TYPES)), st.sampled_from([200, 200, 400, 500]))
def test_mutated_answers(hostile, client, answer, changes, content_type, status):
    name, valid_type, body = answer
    hostile.answer("/", content_type if content_type is not None else valid_type, mutate(body, changes), status=status)
    run(client, name)


@FUZZ_SMALL
@given(st.sampled_from(["find", "retrieve", "patient"]), st.sampled_from(CONTENT_TYPES), st.binary(max_size=2000))
def test_garbage_answers(hostile, client, name, content_type, body):
    hostile.answer("/", content_type, body)
    assert isinstance(run(client, name), DmpError)


@pytest.mark.parametrize("name, content_type, body", [
    ("retrieve", RETRIEVE.content_type, RETRIEVE.body.replace(b"Content-ID: <kos@dmp>", b"Content-ID: <other>")),
    ("retrieve", RETRIEVE.content_type, RETRIEVE.body[:len(RETRIEVE.body) // 2]),
    ("retrieve", RETRIEVE.content_type.replace("MIMEBoundary_x", "nope"), RETRIEVE.body),
    ("retrieve", SOAP, RETRIEVE_SOAP),
    ("find", SOAP, b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     + QUERY_ANSWER.split(b"?>", 1)[1].replace(b"KOS", b"&x;")),
])
def test_broken_answers(hostile, client, name, content_type, body):
    hostile.answer("/", content_type, body)
    outcome = run(client, name)
    assert "root:" not in repr(outcome)


def test_entity_expansion_refused(hostile, client):
    bomb = billion_laughs(b"s:Envelope")
    hostile.answer("/", SOAP, bomb.split(b"]>")[0] + b"]>" + QUERY_ANSWER.split(b"?>", 1)[1].replace(b"KOS", b"&l9;"))
    assert isinstance(run(client, "find"), DmpError)


def test_deep_nesting(hostile, client):
    hostile.answer("/", SOAP, QUERY_ANSWER.replace(b"<rim:Slot", b"<a>" * 50_000 + b"</a>" * 50_000 + b"<rim:Slot", 1))
    run(client, "find")


def test_many_parts(hostile, client):
    part = b"--MIMEBoundary_x\r\nContent-ID: <p>\r\n\r\nx\r\n"
    body = RETRIEVE.body.replace(b"--MIMEBoundary_x--", part * 20_000 + b"--MIMEBoundary_x--")
    hostile.answer("/", RETRIEVE.content_type, body)
    run(client, "retrieve")


def test_lying_content_length(hostile, client):
    hostile.answer("/", SOAP, QUERY_ANSWER, declared_length=10 ** 12)
    assert isinstance(run(client, "find"), DmpError)
