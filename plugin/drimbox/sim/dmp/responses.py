"""Builders of the ebRS answers: RegistryResponse, AdhocQueryResponse, RetrieveDocumentSetResponse."""

from __future__ import annotations

from lxml import etree

from . import constants as c
from .errors import RegistryErrorItem

NSMAP = {"rs": c.RS, "rim": c.RIM, "query": c.QUERY, "xdsb": c.XDSB, "xop": c.XOP}


def registry_error_list(parent: etree._Element, errors: list[RegistryErrorItem]) -> None:
    if not errors:
        return
    error_list = etree.SubElement(parent, f"{{{c.RS}}}RegistryErrorList",
                                  {"highestSeverity": c.SEVERITY_ERROR})
    for err in errors:
        attrs = {"errorCode": err.code, "codeContext": err.context, "severity": c.SEVERITY_ERROR}
        if err.location:
            attrs["location"] = err.location
        etree.SubElement(error_list, f"{{{c.RS}}}RegistryError", attrs)


def registry_response(errors: list[RegistryErrorItem] | None = None, status: str | None = None) -> etree._Element:
    errors = errors or []
    if status is None:
        status = c.RESPONSE_FAILURE if errors else c.RESPONSE_SUCCESS
    el = etree.Element(f"{{{c.RS}}}RegistryResponse", {"status": status}, nsmap=NSMAP)
    registry_error_list(el, errors)
    return el


def adhoc_query_response(objects: list[etree._Element], errors: list[RegistryErrorItem] | None = None
                         ) -> etree._Element:
    errors = errors or []
    status = c.RESPONSE_FAILURE if errors else c.RESPONSE_SUCCESS
    el = etree.Element(f"{{{c.QUERY}}}AdhocQueryResponse", {"status": status}, nsmap=NSMAP)
    registry_error_list(el, errors)
    object_list = etree.SubElement(el, f"{{{c.RIM}}}RegistryObjectList")
    for obj in objects:
        object_list.append(obj)
    return el


def retrieve_response(found: list[tuple[str, str, str, str]], errors: list[RegistryErrorItem]) -> etree._Element:
    """found: (repository unique id, document unique id, mime type, content id)."""
    if errors and found:
        status = c.RESPONSE_PARTIAL
    elif errors:
        status = c.RESPONSE_FAILURE
    else:
        status = c.RESPONSE_SUCCESS
    el = etree.Element(f"{{{c.XDSB}}}RetrieveDocumentSetResponse", nsmap=NSMAP)
    rr = etree.SubElement(el, f"{{{c.RS}}}RegistryResponse", {"status": status})
    registry_error_list(rr, errors)
    for repository_id, unique_id, mime, content_id in found:
        dr = etree.SubElement(el, f"{{{c.XDSB}}}DocumentResponse")
        etree.SubElement(dr, f"{{{c.XDSB}}}RepositoryUniqueId").text = repository_id
        etree.SubElement(dr, f"{{{c.XDSB}}}DocumentUniqueId").text = unique_id
        etree.SubElement(dr, f"{{{c.XDSB}}}mimeType").text = mime
        doc = etree.SubElement(dr, f"{{{c.XDSB}}}Document")
        etree.SubElement(doc, f"{{{c.XOP}}}Include", {"href": f"cid:{content_id}"})
    return el
