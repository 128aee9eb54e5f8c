"""HL7 v2 acknowledgements (original mode): MSH + MSA (+ ERR).

Works on any input: when the inbound message has no usable MSH, the ACK still comes out with default header
values and an empty MSA-2.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from drimbox.reports.model import ReportMessage
from drimbox.reports.v2 import DEFAULT_ENCODING_CHARS, Delimiters, parse_er7

ACCEPT_CODES = ("AA", "AE", "AR", "CA", "CE", "CR")
SEVERITIES = ("E", "W", "I", "F")
# HL7 table 0357 (message error condition codes) values used by the box.
ERR_SEGMENT_SEQUENCE = "100"
ERR_REQUIRED_FIELD_MISSING = "101"
ERR_DATA_TYPE = "102"
ERR_TABLE_VALUE = "103"
ERR_UNSUPPORTED_MESSAGE_TYPE = "200"
ERR_UNSUPPORTED_EVENT = "201"
ERR_UNKNOWN_KEY = "204"
ERR_DUPLICATE_KEY = "205"
ERR_INTERNAL = "207"
_ERR_TEXT = {
    "0": "Message accepted", "100": "Segment sequence error", "101": "Required field missing",
    "102": "Data type error", "103": "Table value not found", "200": "Unsupported message type",
    "201": "Unsupported event code", "202": "Unsupported processing id", "203": "Unsupported version id",
    "204": "Unknown key identifier", "205": "Duplicate key identifier", "206": "Application record locked",
    "207": "Application internal error",
}
DEFAULT_APPLICATION = "DRIMBOX"
_DELIMITERS = Delimiters()
_MAX_TEXT = 2000


def build_ack(raw: bytes, code: str, text: str = "", *, error_code: str = "", severity: str = "E") -> bytes:
    """An ACK answering ``raw``.

    ``code``: MSA-1 (AA accepted, AE application error, AR rejected). ``text`` goes to MSA-3 and ERR-8.
    An ERR segment is added when ``code`` is not AA or when ``error_code`` is given; ERR-3 is ``error_code``
    (HL7 table 0357, default 207 for errors) and ERR-4 the severity (E, W, I).
    """
    code = code.upper()
    if code not in ACCEPT_CODES:
        raise ValueError(f"MSA-1 must be one of {', '.join(ACCEPT_CODES)}, not {code!r}")
    severity = severity.upper()
    if severity not in SEVERITIES:
        raise ValueError(f"ERR-4 severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    try:
        decoded = (raw or b"").decode("utf-8", errors="replace")
    except Exception:  # noqa: BLE001 - raw could be anything
        decoded = ""
    inbound = parse_er7(decoded)
    msh = inbound.first("MSH") if inbound.has_msh else None

    def header(index: int) -> str:
        if msh is None:
            return ""
        if inbound.delimiters == _DELIMITERS:
            return msh.field(index)
        return _escape(msh.component(index, 1))

    trigger = msh.component(9, 2) if msh else ""
    control_id = msh.component(10, 1) if msh else ""
    text = " ".join((text or "").split())[:_MAX_TEXT]
    now = datetime.now().strftime("%Y%m%d%H%M%S")
    segments = [
        "|".join([
            "MSH", DEFAULT_ENCODING_CHARS,
            header(5) or DEFAULT_APPLICATION, header(6),  # we answer as the receiver
            header(3), header(4),
            now, "",
            f"ACK^{_escape(trigger)}^ACK" if trigger else "ACK",
            "ACK" + uuid.uuid4().hex[:17],
            header(11) or "P",
            header(12) or "2.5",
            "", "", "", "",
            header(17),
            header(18) or "UNICODE UTF-8",
        ]).rstrip("|"),
        "|".join(["MSA", code, _escape(control_id), _escape(text)]).rstrip("|"),
    ]
    if code != "AA" or error_code:
        err_code = error_code or (ERR_INTERNAL if code != "AA" else "0")
        err_text = _ERR_TEXT.get(err_code, "")
        segments.append("|".join([
            "ERR", "", "",
            f"{_escape(err_code)}^{_escape(err_text)}^HL70357",
            severity, "", "", "",
            _escape(text),
        ]).rstrip("|"))
    return ("\r".join(segments) + "\r").encode("utf-8")


def _escape(value: str) -> str:
    return _DELIMITERS.escape_text(value)


def read_ack(raw: bytes) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 control id, text) of an ACK; text is MSA-3, else ERR-8, else ERR-3.2."""
    message = parse_er7(raw.decode("utf-8", errors="replace"))
    msa = message.first("MSA")
    if msa is None:
        return "", "", "no MSA segment in the answer"
    text = msa.component(3, 1)
    err = message.first("ERR")
    if not text and err is not None:
        text = err.component(8, 1) or err.component(3, 2)
    return msa.component(1, 1).upper(), msa.component(2, 1), text


def ack_for(raw: bytes, message: ReportMessage) -> bytes:
    """The ACK the box gives a parsed message before any further processing.

    AR (100) when there is no MSH, AR (200) for a message type the box does not handle, AE (207) for any other
    error, AA otherwise; warnings ride along in an ERR of severity W.
    """
    if message.errors:
        text = "; ".join(message.errors)
        if not message.message_type:
            return build_ack(raw, "AR", text, error_code=ERR_SEGMENT_SEQUENCE)
        if message.errors[0].startswith("unsupported message type"):
            return build_ack(raw, "AR", text, error_code=ERR_UNSUPPORTED_MESSAGE_TYPE)
        return build_ack(raw, "AE", text, error_code=ERR_INTERNAL)
    if message.warnings:
        return build_ack(raw, "AA", "; ".join(message.warnings), error_code="0", severity="W")
    return build_ack(raw, "AA")
