"""MTOM/XOP packaging (multipart/related, type application/xop+xml) for SOAP 1.2, both ways.

Parts are written with CRLF line endings and their bytes untouched, so a binary attachment comes back
byte for byte. The parser tolerates bare LF header endings and quoted or unquoted parameters.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

CRLF = b"\r\n"


@dataclass(frozen=True)
class Attachment:
    content_id: str  # without angle brackets
    data: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class MtomMessage:
    content_type: str  # HTTP Content-Type header value
    body: bytes


@dataclass
class MtomParts:
    root: bytes
    root_content_type: str = ""
    attachments: dict[str, Attachment] = field(default_factory=dict)

    def by_href(self, href: str) -> bytes:
        """Bytes of the part an ``xop:Include/@href`` (``cid:...``) points to."""
        if not href.startswith("cid:"):
            raise ValueError(f"xop:Include href is not a cid: URL: {href!r}")
        content_id = unquote(href[4:])
        try:
            return self.attachments[content_id].data
        except KeyError:
            raise ValueError(f"MTOM message has no part with Content-ID <{content_id}>") from None


def new_content_id(domain: str = "drimbox") -> str:
    return f"{uuid.uuid4().hex}@{domain}"


def cid_href(content_id: str) -> str:
    """RFC 2392 URL of a Content-ID (``cid:`` + URL-encoded id, ``@`` kept)."""
    return "cid:" + quote(content_id, safe="@.-_~!$'()*+,;=:")


def build(soap_xml: bytes, action: str, attachments: Sequence[Attachment] = (), *, boundary: str | None = None,
          root_id: str | None = None) -> MtomMessage:
    """Package a SOAP 1.2 envelope (which references ``attachments`` through xop:Include) as MTOM."""
    boundary = boundary or f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = root_id or new_content_id()
    chunks: list[bytes] = []
    delimiter = b"--" + boundary.encode("ascii")
    root_headers = (
        f'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"; action="{action}"',
        "Content-Transfer-Encoding: binary",
        f"Content-ID: <{root_id}>",
    )
    chunks += [delimiter, CRLF, CRLF.join(h.encode("ascii") for h in root_headers), CRLF, CRLF, soap_xml, CRLF]
    for part in attachments:
        headers = (
            f"Content-Type: {part.content_type}",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: <{part.content_id}>",
        )
        chunks += [delimiter, CRLF, CRLF.join(h.encode("ascii") for h in headers), CRLF, CRLF, part.data, CRLF]
    chunks += [delimiter, b"--", CRLF]
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; start="<{root_id}>"; '
        f'start-info="application/soap+xml"; action="{action}"'
    )
    return MtomMessage(content_type=content_type, body=b"".join(chunks))


_PARAM = re.compile(r';\s*([A-Za-z0-9_\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def content_type_params(value: str) -> tuple[str, dict[str, str]]:
    """Media type (lower case) and parameters (names lower case, values unquoted) of a Content-Type."""
    media, _, rest = value.partition(";")
    params = {}
    for match in _PARAM.finditer(";" + rest):
        raw = match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = raw[1:-1].replace('\\"', '"')
        params[match.group(1).lower()] = raw
    return media.strip().lower(), params


def is_multipart(content_type: str) -> bool:
    return content_type_params(content_type)[0] == "multipart/related"


def parse(content_type: str, body: bytes) -> MtomParts:
    """Split an MTOM (or any multipart/related) message into its root part and attachments."""
    media, params = content_type_params(content_type)
    if media != "multipart/related":
        raise ValueError(f"not a multipart/related message: {content_type!r}")
    boundary = params.get("boundary")
    if not boundary:
        raise ValueError("multipart/related Content-Type without boundary")
    delimiter = b"--" + boundary.encode("ascii")
    start = params.get("start", "").strip("<>")
    position = body.find(delimiter)
    if position < 0:
        raise ValueError("multipart body does not contain its boundary")
    parts: list[tuple[dict[str, str], bytes]] = []
    position += len(delimiter)
    while True:
        if body[position:position + 2] == b"--":
            break
        # skip transport padding and the line break after the delimiter
        line_end = body.find(b"\n", position)
        if line_end < 0:
            raise ValueError("truncated multipart body")
        position = line_end + 1
        next_delimiter = body.find(CRLF + delimiter, position)
        separator_length = 2
        if next_delimiter < 0:
            next_delimiter = body.find(b"\n" + delimiter, position)
            separator_length = 1
        if next_delimiter < 0:
            raise ValueError("multipart body lacks its closing boundary")
        raw_part = body[position:next_delimiter]
        parts.append(_split_part(raw_part))
        position = next_delimiter + separator_length + len(delimiter)
    if not parts:
        raise ValueError("multipart body has no part")
    root_index = 0
    if start:
        for index, (headers, _) in enumerate(parts):
            if headers.get("content-id", "").strip().strip("<>") == start:
                root_index = index
                break
    result = MtomParts(root=parts[root_index][1], root_content_type=parts[root_index][0].get("content-type", ""))
    for index, (headers, data) in enumerate(parts):
        if index == root_index:
            continue
        content_id = headers.get("content-id", "").strip().strip("<>")
        result.attachments[content_id] = Attachment(
            content_id=content_id, data=data, content_type=headers.get("content-type", "application/octet-stream")
        )
    return result


def _split_part(raw: bytes) -> tuple[dict[str, str], bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        head_end = raw.find(separator)
        if head_end >= 0:
            head, data = raw[:head_end], raw[head_end + len(separator):]
            break
    else:
        if raw.startswith((b"\r\n", b"\n")):  # no headers at all
            return {}, raw.lstrip(b"\r\n")
        raise ValueError("multipart part without header/body separator")
    headers: dict[str, str] = {}
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip():
            headers[name.strip().lower()] = value.strip()
    encoding = headers.get("content-transfer-encoding", "binary").lower()
    if encoding == "base64":
        import base64

        data = base64.b64decode(data)
    return headers, data
