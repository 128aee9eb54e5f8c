"""Distinguished-name comparison that survives the three ways DNs get written.

RFC 4514 (``CN=x,OU=y,O=z,C=FR``, what nginx's ``$ssl_client_s_dn`` gives), the reverse order people
write in documents (``C=FR, O=z, OU=y, CN=x``), and OpenSSL's legacy ``/C=FR/O=z/OU=y/CN=x``.
Attribute order, spacing around separators, case, escapes and OID-vs-name types do not matter.
"""

from __future__ import annotations

from cryptography import x509

_TYPE_ALIASES = {
    "2.5.4.3": "CN", "COMMONNAME": "CN",
    "2.5.4.11": "OU", "ORGANIZATIONALUNITNAME": "OU",
    "2.5.4.10": "O", "ORGANIZATIONNAME": "O",
    "2.5.4.6": "C", "COUNTRYNAME": "C",
    "2.5.4.7": "L", "LOCALITYNAME": "L",
    "2.5.4.8": "ST", "S": "ST", "STATEORPROVINCENAME": "ST",
    "2.5.4.5": "SERIALNUMBER",
    "1.2.840.113549.1.9.1": "EMAILADDRESS", "E": "EMAILADDRESS",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID", "USERID": "UID",
}


class DnError(ValueError):
    pass


def _split_unescaped(text: str, separators: str) -> list[str]:
    parts, current, index = [], [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index : index + 2])
            index += 2
            continue
        if char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    out = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            pair = value[index + 1 : index + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(int(pair, 16))
                index += 3
                continue
            out.extend(value[index + 1].encode())
            index += 2
            continue
        out.extend(char.encode())
        index += 1
    return out.decode("utf-8", errors="replace")


def normalize_dn(dn: str | x509.Name) -> tuple[tuple[str, str], ...]:
    """A canonical, order-insensitive form: sorted ``(TYPE, casefolded value)`` pairs."""
    if isinstance(dn, x509.Name):
        dn = dn.rfc4514_string()
    text = dn.strip()
    if not text:
        raise DnError("empty distinguished name")
    pieces = [p for p in text.split("/") if p] if text.startswith("/") else _split_unescaped(text, ",;+")
    pairs = []
    for piece in pieces:
        kind, separator, value = piece.partition("=")
        if not separator:
            raise DnError(f"not a distinguished name component: {piece.strip()!r} in {dn!r}")
        kind = kind.strip().upper()
        kind = _TYPE_ALIASES.get(kind.removeprefix("OID."), kind.removeprefix("OID."))
        pairs.append((kind, " ".join(_unescape(value).split()).casefold()))
    return tuple(sorted(pairs))


def same_dn(first: str | x509.Name, second: str | x509.Name) -> bool:
    try:
        return normalize_dn(first) == normalize_dn(second)
    except DnError:
        return False
