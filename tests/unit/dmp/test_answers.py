from __future__ import annotations

import pytest

from drimbox.dmp import mtom, transactions
from drimbox.dmp.errors import DmpRejected, DmpUnavailable
from drimbox.dmp.soap import check_registry_status

ENV = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
       'xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header><a:Action>x</a:Action></s:Header>'
       '<s:Body>{}</s:Body></s:Envelope>')
RS = 'xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"'


def answer(body: str, content_type="application/soap+xml"):
    return transactions.read_answer(content_type, ENV.format(body).encode())


def test_failure_raises_rejected_with_every_error():
    payload = answer(
        f'<rs:RegistryResponse {RS} status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure">'
        '<rs:RegistryErrorList><rs:RegistryError errorCode="XDSPatientIdDoesNotMatch" codeContext="bad patient" '
        'location="DocumentKOS" severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"/>'
        '<rs:RegistryError errorCode="XDSRegistryMetadataError" severity="urn:oasis:names:tc:ebxml-regrep:'
        'ErrorSeverityType:Error">text context</rs:RegistryError></rs:RegistryErrorList></rs:RegistryResponse>'
    ).payload
    with pytest.raises(DmpRejected) as caught:
        check_registry_status(payload)
    errors = caught.value.errors
    assert [(e.code, e.context, e.location) for e in errors] == [
        ("XDSPatientIdDoesNotMatch", "bad patient", "DocumentKOS"),
        ("XDSRegistryMetadataError", "text context", ""),
    ]
    assert errors[0].severity.endswith(":Error")
    assert caught.value.retryable is False
    assert "XDSPatientIdDoesNotMatch" in str(caught.value)


def test_success_and_partial_success_return_warnings():
    ok = answer(f'<rs:RegistryResponse {RS} status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"/>')
    assert check_registry_status(ok.payload) == []
    partial = answer(
        f'<rs:RegistryResponse {RS} status="urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"><rs:RegistryErrorList>'
        '<rs:RegistryError errorCode="W1" severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"/>'
        '</rs:RegistryErrorList></rs:RegistryResponse>')
    assert [w.code for w in check_registry_status(partial.payload)] == ["W1"]


def test_soap_fault_is_unavailable():
    fault = ('<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>DMPVIHFInvalide</s:Value>'
             '</s:Subcode></s:Code><s:Reason><s:Text xml:lang="fr">VIHF invalide</s:Text></s:Reason></s:Fault>')
    with pytest.raises(DmpUnavailable) as caught:
        answer(fault)
    assert caught.value.retryable is True
    assert "s:Receiver/DMPVIHFInvalide" in caught.value.reason and "VIHF invalide" in caught.value.reason


@pytest.mark.parametrize("content_type, body", [
    ("application/soap+xml", b""),
    ("application/soap+xml", b"<html>proxy error</html>"),
    ("application/soap+xml", b"<not-closed"),
    ('multipart/related; boundary="x"', b"garbage"),
])
def test_unusable_answers_are_unavailable(content_type, body):
    with pytest.raises(DmpUnavailable):
        transactions.read_answer(content_type, body)


def test_mtom_answer_root_is_read():
    envelope = ENV.format(f'<rs:RegistryResponse {RS} '
                          'status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"/>')
    message = mtom.build(envelope.encode(), "a", [mtom.Attachment("p@x", b"\x00\x01")])
    parsed = transactions.read_answer(message.content_type, message.body)
    assert parsed.payload.get("status").endswith("Success")
    assert parsed.parts.attachments["p@x"].data == b"\x00\x01"
