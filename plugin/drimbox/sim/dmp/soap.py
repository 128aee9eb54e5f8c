"""SOAP 1.2 envelope reading (with WS-Addressing checks) and answer building."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lxml import etree

from .constants import SOAP12, WSA, WSSE, response_action
from .errors import SoapFaultError

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False, huge_tree=True)


@dataclass
class SoapRequest:
    envelope: etree._Element
    action: str
    message_id: str
    to: str
    security: etree._Element | None
    body_payload: etree._Element


def parse_xml(data: bytes, what: str) -> etree._Element:
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SoapFaultError("soap:Sender", f"{what} is not well-formed XML: {exc}", http_status=400) from None


def read_envelope(data: bytes, allowed_actions: tuple[str, ...]) -> SoapRequest:
    root = parse_xml(data, "SOAP envelope")
    if root.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Envelope":
        raise SoapFaultError("soap:VersionMismatch", "SOAP 1.1 envelope received; the DMP requires SOAP 1.2",
                             code="soap:VersionMismatch", http_status=400)
    if root.tag != f"{{{SOAP12}}}Envelope":
        raise SoapFaultError("soap:Sender", f"root element is {root.tag}, expected a SOAP 1.2 Envelope",
                             http_status=400)
    header = root.find(f"{{{SOAP12}}}Header")
    body = root.find(f"{{{SOAP12}}}Body")
    if header is None:
        raise SoapFaultError("wsa:MessageAddressingHeaderRequired", "SOAP Header missing (WS-Addressing required)")
    if body is None or len(body) == 0:
        raise SoapFaultError("soap:Sender", "SOAP Body missing or empty", http_status=400)

    def header_text(name: str) -> str:
        found = header.findall(f"{{{WSA}}}{name}")
        if len(found) > 1:
            raise SoapFaultError("wsa:InvalidAddressingHeader", f"more than one wsa:{name} header")
        return (found[0].text or "").strip() if found else ""

    action = header_text("Action")
    message_id = header_text("MessageID")
    to = header_text("To")
    for name, value in (("Action", action), ("MessageID", message_id), ("To", to)):
        if not value:
            raise SoapFaultError("wsa:MessageAddressingHeaderRequired", f"WS-Addressing header wsa:{name} missing")
    if action not in allowed_actions:
        raise SoapFaultError("wsa:ActionNotSupported",
                             f"wsa:Action {action!r} is not an operation of this endpoint "
                             f"(expected one of: {', '.join(allowed_actions)})")
    securities = header.findall(f"{{{WSSE}}}Security")
    if len(securities) > 1:
        raise SoapFaultError("wsse:InvalidSecurity", "more than one wsse:Security header")
    return SoapRequest(root, action, message_id, to, securities[0] if securities else None, body[0])


def envelope_bytes(action: str, relates_to: str, payload: etree._Element | None) -> bytes:
    env = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"soap": SOAP12, "wsa": WSA})
    header = etree.SubElement(env, f"{{{SOAP12}}}Header")
    a = etree.SubElement(header, f"{{{WSA}}}Action", {f"{{{SOAP12}}}mustUnderstand": "true"})
    a.text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    if relates_to:
        etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = relates_to
    body = etree.SubElement(env, f"{{{SOAP12}}}Body")
    if payload is not None:
        body.append(payload)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def response_envelope(request_action: str, relates_to: str, payload: etree._Element) -> bytes:
    return envelope_bytes(response_action(request_action), relates_to, payload)


_FAULT_NAMESPACES = {
    "soap": SOAP12,
    "wsa": WSA,
    "wsse": WSSE,
}


def fault_envelope(fault: SoapFaultError, relates_to: str = "") -> bytes:
    nsmap = {"soap": SOAP12, "wsa": WSA, "wsse": WSSE}
    f = etree.Element(f"{{{SOAP12}}}Fault", nsmap=nsmap)
    code = etree.SubElement(f, f"{{{SOAP12}}}Code")
    main = fault.code if fault.code in ("soap:Sender", "soap:Receiver", "soap:VersionMismatch",
                                        "soap:MustUnderstand") else "soap:Sender"
    etree.SubElement(code, f"{{{SOAP12}}}Value").text = main
    if fault.subcode and fault.subcode != main:
        sub = etree.SubElement(code, f"{{{SOAP12}}}Subcode")
        etree.SubElement(sub, f"{{{SOAP12}}}Value").text = fault.subcode
    reason = etree.SubElement(f, f"{{{SOAP12}}}Reason")
    text = etree.SubElement(reason, f"{{{SOAP12}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = fault.reason
    if fault.detail:
        detail = etree.SubElement(f, f"{{{SOAP12}}}Detail")
        for k, v in fault.detail.items():
            etree.SubElement(detail, k).text = v
    return envelope_bytes("http://www.w3.org/2005/08/addressing/soap/fault", relates_to, f)
