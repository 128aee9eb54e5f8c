"""Stored documents that came from outside (CDA reports, HL7 messages, the report's PDF), served to the operator.

They were written by whoever could reach the MLLP port, so the operator's browser must never render them on the
admin entry's origin: downloads only (``Content-Disposition: attachment``), no type sniffing, and a sandboxing
CSP in case a browser shows them anyway. The PDF is served from its decoded bytes and only when they are one.
"""

from __future__ import annotations

import base64
import binascii
import re

from lxml import etree

from drimbox.web.http import Response

PDF_MAGIC = b"%PDF-"
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "no-store",
}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def download(body: bytes, content_type: str, filename: str) -> Response:
    name = _UNSAFE_NAME.sub("_", filename)[:120] or "download"
    return Response(200, body, content_type,
                    {"Content-Disposition": f'attachment; filename="{name}"', **DOWNLOAD_HEADERS})


def report_pdf(cda: bytes) -> bytes | None:
    """The PDF body of a CR-IMG (``nonXMLBody/text`` with ``mediaType="application/pdf"``), or None."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(cda, parser)
    except etree.XMLSyntaxError:
        return None
    for element in root.iter():
        if not isinstance(element.tag, str) or etree.QName(element).localname != "text":
            continue
        parent = element.getparent()
        if parent is None or etree.QName(parent).localname != "nonXMLBody":
            continue
        if element.get("mediaType", "").lower() != "application/pdf" or element.get("representation") != "B64":
            continue
        try:
            data = base64.b64decode("".join((element.text or "").split()), validate=True)
        except (binascii.Error, ValueError):
            return None
        return data if data.startswith(PDF_MAGIC) else None
    return None
