"""A browser's ``multipart/form-data`` upload, parsed with the standard library (Orthanc buffers the body)."""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP

# nginx renames the media type on its way to Orthanc, which would otherwise keep the body (see nginx.conf.j2)
FORM_TYPES = ("multipart/form-data", "application/x-drimbox-form-data")


def parse_form_data(body: bytes, content_type: str, *, max_bytes: int) -> dict[str, bytes]:
    """Field name -> value bytes (the first of a repeated name); ValueError for anything else than a form."""
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() not in FORM_TYPES or "boundary=" not in parameters.lower():
        raise ValueError("not a multipart/form-data body")
    content_type = "multipart/form-data;" + parameters
    if len(body) > max_bytes:
        raise ValueError(f"the form is larger than {max_bytes} bytes")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
                                                  + body)
    if not message.is_multipart():
        raise ValueError("unreadable multipart/form-data body")
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = _field_name(part)
        if name and name not in fields:
            payload = part.get_payload(decode=True)
            fields[name] = payload if isinstance(payload, bytes) else b""
    return fields


def _field_name(part: Message) -> str:
    if part.get_content_disposition() != "form-data":
        return ""
    return str(part.get_param("name", header="content-disposition") or "")
