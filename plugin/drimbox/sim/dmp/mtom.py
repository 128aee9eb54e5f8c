"""MTOM/XOP (multipart/related) parsing and building, byte-exact."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

from .errors import SoapFaultError


@dataclass
class MimePart:
    headers: dict[str, str]  # lower-cased names
    content: bytes

    @property
    def content_id(self) -> str:
        return self.headers.get("content-id", "").strip().strip("<>")


@dataclass
class SoapMessage:
    envelope: bytes
    attachments: dict[str, bytes]  # content-id (without <>) -> bytes
    is_mtom: bool


_PARAM = re.compile(r';\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    media, _, rest = value.partition(";")
    params = {}
    for m in _PARAM.finditer(";" + rest):
        v = m.group(2).strip()
        if v.startswith('"') and v.endswith('"'):
            v = v[1:-1]
        params[m.group(1).lower()] = v
    return media.strip().lower(), params


def _fault(reason: str) -> SoapFaultError:
    return SoapFaultError("soap:Sender", reason, code="soap:Sender", http_status=400)


def split_multipart(body: bytes, boundary: str) -> list[MimePart]:
    delimiter = b"--" + boundary.encode("ascii")
    start = body.find(delimiter)
    if start < 0:
        raise _fault(f"multipart boundary {boundary!r} not found in the body")
    parts: list[MimePart] = []
    pos = start + len(delimiter)
    while True:
        if body[pos:pos + 2] == b"--":
            return parts
        if body[pos:pos + 2] != b"\r\n":
            raise _fault("multipart delimiter not followed by CRLF (MTOM requires CRLF line endings)")
        pos += 2
        header_end = body.find(b"\r\n\r\n", pos)
        if header_end < 0:
            raise _fault("multipart part without the blank line ending its headers")
        headers: dict[str, str] = {}
        for line in body[pos:header_end].split(b"\r\n"):
            if not line:
                continue
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise _fault(f"malformed MIME header line {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        content_start = header_end + 4
        next_delim = body.find(b"\r\n" + delimiter, content_start)
        if next_delim < 0:
            raise _fault("multipart body not terminated by its closing boundary")
        parts.append(MimePart(headers, body[content_start:next_delim]))
        pos = next_delim + 2 + len(delimiter)


def parse_soap_request(content_type: str, body: bytes) -> SoapMessage:
    media, params = parse_content_type(content_type)
    if media == "application/soap+xml":
        return SoapMessage(body, {}, False)
    if media != "multipart/related":
        raise SoapFaultError("soap:Sender", f"unsupported Content-Type {media!r}: SOAP 1.2 expects "
                             "application/soap+xml or multipart/related (MTOM)", http_status=415)
    if params.get("type", "").lower() != "application/xop+xml":
        raise _fault('multipart/related without type="application/xop+xml" is not MTOM/XOP')
    boundary = params.get("boundary")
    if not boundary:
        raise _fault("multipart/related Content-Type without boundary")
    parts = split_multipart(body, boundary)
    if not parts:
        raise _fault("multipart/related body without any part")
    start = params.get("start", "").strip().strip("<>")
    root = parts[0]
    if start:
        matches = [p for p in parts if p.content_id == start]
        if not matches:
            raise _fault(f"start part <{start}> not found among the MIME parts")
        root = matches[0]
    root_type, _ = parse_content_type(root.headers.get("content-type", ""))
    if root_type != "application/xop+xml":
        raise _fault(f"root MIME part has Content-Type {root_type!r}, expected application/xop+xml")
    attachments = {p.content_id: p.content for p in parts if p is not root}
    return SoapMessage(root.content, attachments, True)


def cid_from_href(href: str) -> str:
    if not href.startswith("cid:"):
        raise _fault(f"xop:Include href {href!r} is not a cid: URL")
    return unquote(href[4:])


def build_mtom(envelope: bytes, attachments: list[tuple[str, str, bytes]], action: str) -> tuple[str, bytes]:
    """attachments: (content_id, mime_type, bytes). Returns (Content-Type header, body)."""
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = f"root.message@{uuid.uuid4().hex}.drimbox-dmp-sim"
    chunks = [
        f"--{boundary}\r\n"
        f"Content-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"; action=\"{action}\"\r\n"
        f"Content-Transfer-Encoding: binary\r\nContent-ID: <{root_id}>\r\n\r\n".encode("ascii"),
        envelope,
    ]
    for content_id, mime, data in attachments:
        chunks.append(f"\r\n--{boundary}\r\nContent-Type: {mime}\r\nContent-Transfer-Encoding: binary\r\n"
                      f"Content-ID: <{content_id}>\r\n\r\n".encode("ascii"))
        chunks.append(data)
    chunks.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    content_type = (f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
                    f'start="<{root_id}>"; start-info="application/soap+xml"; action="{action}"')
    return content_type, b"".join(chunks)
