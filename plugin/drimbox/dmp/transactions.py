"""Outgoing DMP messages (endpoint, SOAP action, HTTP Content-Type, bytes) and the reading of answers."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from drimbox.dmp import mtom, soap, xds_ids
from drimbox.dmp.errors import DmpUnavailable
from drimbox.dmp.lot import PreparedLot

ENDPOINTS = {
    xds_ids.ACTION_ITI41: "repository",
    xds_ids.ACTION_ITI43: "repository",
    xds_ids.ACTION_ITI18: "registry",
    xds_ids.ACTION_ITI57: "registry",
    xds_ids.ACTION_PATIENT_QUERY: "patients",
}


@dataclass(frozen=True)
class OutgoingMessage:
    url: str
    action: str
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Answer:
    payload: etree._Element  # first child of soap:Body
    parts: mtom.MtomParts | None  # MTOM parts when the answer was multipart


def endpoint(base_url: str, action: str) -> str:
    return f"{base_url.rstrip('/')}/{ENDPOINTS[action]}"


def plain(base_url: str, action: str, body: etree._Element, security: etree._Element | None) -> OutgoingMessage:
    url = endpoint(base_url, action)
    data = soap.serialize(soap.envelope(action, url, body, security=security))
    return OutgoingMessage(url, action, f'application/soap+xml; charset=UTF-8; action="{action}"', data)


def packaged(base_url: str, action: str, body: etree._Element, security: etree._Element | None,
             attachments: list[mtom.Attachment]) -> OutgoingMessage:
    url = endpoint(base_url, action)
    envelope = soap.serialize(soap.envelope(action, url, body, security=security))
    message = mtom.build(envelope, action, attachments)
    return OutgoingMessage(url, action, message.content_type, message.body)


def provide_and_register(base_url: str, lot: PreparedLot, security: etree._Element | None) -> OutgoingMessage:
    body, attachments = lot.provide_and_register()
    return packaged(base_url, xds_ids.ACTION_ITI41, body, security, attachments)


def read_answer(content_type: str, body: bytes) -> Answer:
    """Parse an HTTP answer body (plain SOAP or MTOM); a SOAP fault raises DmpUnavailable."""
    parts = None
    if mtom.is_multipart(content_type or ""):
        try:
            parts = mtom.parse(content_type, body)
        except ValueError as error:
            raise DmpUnavailable(f"unreadable MTOM answer: {error}") from None
        body = parts.root
    if not body.strip():
        raise DmpUnavailable("empty answer")
    return Answer(payload=soap.body_of(soap.parse_xml(body)), parts=parts)
