"""SOAP 1.2 envelopes with WS-Addressing and WS-Security (the VIHF), and the reading of answers."""

from __future__ import annotations

import uuid

from lxml import etree

from drimbox.dmp import xds_ids
from drimbox.dmp.errors import DmpRejected, DmpUnavailable, RegistryError

ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=False)


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def new_message_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def envelope(action: str, to: str, body: etree._Element, *, security: etree._Element | None = None,
             message_id: str | None = None) -> etree._Element:
    """``soap:Envelope`` with wsa:Action/MessageID/ReplyTo/To and, when given, a wsse:Security header."""
    root = etree.Element(_q(xds_ids.SOAP12, "Envelope"), nsmap={"soap": xds_ids.SOAP12, "wsa": xds_ids.WSA})
    header = etree.SubElement(root, _q(xds_ids.SOAP12, "Header"))
    must = _q(xds_ids.SOAP12, "mustUnderstand")
    etree.SubElement(header, _q(xds_ids.WSA, "Action"), {must: "true"}).text = action
    etree.SubElement(header, _q(xds_ids.WSA, "MessageID")).text = message_id or new_message_id()
    reply_to = etree.SubElement(header, _q(xds_ids.WSA, "ReplyTo"))
    etree.SubElement(reply_to, _q(xds_ids.WSA, "Address")).text = ANONYMOUS
    etree.SubElement(header, _q(xds_ids.WSA, "To"), {must: "true"}).text = to
    if security is not None:
        wsse = etree.SubElement(header, _q(xds_ids.WSSE, "Security"), {must: "true"}, nsmap={"wsse": xds_ids.WSSE})
        wsse.append(security)
    etree.SubElement(root, _q(xds_ids.SOAP12, "Body")).append(body)
    return root


def serialize(element: etree._Element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def parse_xml(data: bytes) -> etree._Element:
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as error:
        raise DmpUnavailable(f"answer is not well-formed XML ({error})") from None


def body_of(envelope_root: etree._Element) -> etree._Element:
    """First child of soap:Body; a soap:Fault raises DmpUnavailable."""
    if envelope_root.tag != _q(xds_ids.SOAP12, "Envelope"):
        raise DmpUnavailable(f"answer is not a SOAP 1.2 envelope (root {envelope_root.tag})")
    body = envelope_root.find(_q(xds_ids.SOAP12, "Body"))
    if body is None or len(body) == 0:
        raise DmpUnavailable("SOAP answer has an empty body")
    payload = body[0]
    if payload.tag == _q(xds_ids.SOAP12, "Fault"):
        raise DmpUnavailable(describe_fault(payload))
    return payload


def describe_fault(fault: etree._Element) -> str:
    ns = {"soap": xds_ids.SOAP12}
    codes = [value.text.strip() for value in fault.iterfind(".//soap:Value", ns) if value.text]
    reasons = [text.text.strip() for text in fault.iterfind("soap:Reason/soap:Text", ns) if text.text]
    detail = fault.find("soap:Detail", ns)
    detail_text = " ".join(t.strip() for t in detail.itertext() if t.strip()) if detail is not None else ""
    message = f"SOAP fault {'/'.join(codes) or '(no code)'}: {' '.join(reasons) or '(no reason)'}"
    return f"{message} [{detail_text}]" if detail_text else message


def registry_errors(element: etree._Element) -> list[RegistryError]:
    errors = []
    for error in element.iter(_q(xds_ids.RS, "RegistryError")):
        context = error.get("codeContext") or (error.text or "").strip()
        errors.append(
            RegistryError(
                code=error.get("errorCode", ""),
                context=context,
                location=error.get("location", ""),
                severity=error.get("severity", "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"),
            )
        )
    return errors


def check_registry_status(element: etree._Element) -> list[RegistryError]:
    """Raise DmpRejected for a Failure status; return the (warning) errors otherwise.

    ``element`` is a rs:RegistryResponse, a query:AdhocQueryResponse or any element carrying ``status``.
    """
    status = element.get("status", "")
    errors = registry_errors(element)
    if status == xds_ids.RESPONSE_FAILURE or status.endswith(":Failure"):
        raise DmpRejected(errors)
    if not status:
        raise DmpUnavailable(f"{etree.QName(element).localname} without status attribute")
    return errors
