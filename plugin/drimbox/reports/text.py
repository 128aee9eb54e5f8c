"""Repairs for the text traps met in real reports."""

from __future__ import annotations

import re
import unicodedata

# Characters that a UTF-8 continuation byte (0x80-0xBF) becomes when wrongly decoded as cp1252 or latin-1.
_CONTINUATION_CHARS: dict[str, int] = {}
for _byte in range(0x80, 0xC0):
    _CONTINUATION_CHARS[bytes([_byte]).decode("latin-1")] = _byte
    try:
        _CONTINUATION_CHARS[bytes([_byte]).decode("cp1252")] = _byte
    except UnicodeDecodeError:
        pass
_LEAD_RANGE = "\u00c2-\u00f4"
_MOJIBAKE = re.compile(
    "[" + _LEAD_RANGE + "][" + re.escape("".join(sorted(_CONTINUATION_CHARS))) + "]{1,3}"
)


def _to_byte(ch: str) -> int:
    if ch in _CONTINUATION_CHARS:
        return _CONTINUATION_CHARS[ch]
    return ord(ch)


def repair_double_utf8(text: str) -> tuple[str, bool]:
    """Undo UTF-8 that was decoded as cp1252/latin-1 and encoded again ("RÃ©sultat" -> "Résultat").

    Only sequences that decode to valid UTF-8 are replaced, so correct text is left alone.
    """
    changed = False

    def fix(match: re.Match[str]) -> str:
        nonlocal changed
        chunk = match.group(0)
        lead = ord(chunk[0])
        needed = 1 if lead < 0xE0 else 2 if lead < 0xF0 else 3
        if len(chunk) < needed + 1:
            return chunk
        try:
            fixed = bytes(_to_byte(ch) for ch in chunk[: needed + 1]).decode("utf-8")
        except (UnicodeDecodeError, ValueError):
            return chunk
        changed = True
        return fixed + chunk[needed + 1:]

    repaired = _MOJIBAKE.sub(fix, text)
    return repaired, changed


# Local spellings seen in French RIS output, mapped to DICOM modality codes (PS3.3 C.7.3.1.1.1).
_MODALITY_ALIASES = {
    "RM": "MR",
    "IRM": "MR",
    "TDM": "CT",
    "SCANNER": "CT",
    "ECHO": "US",
    "ECHOGRAPHIE": "US",
    "MAMMO": "MG",
    "TEP": "PT",
    "PET": "PT",
    "SCINTI": "NM",
}


def normalise_modality(value: str) -> str:
    """Upper-case DICOM modality code for ``value`` ("RM" -> "MR")."""
    code = value.strip().upper()
    return _MODALITY_ALIASES.get(code, code)


def comparable_name(value: str) -> str:
    """A name reduced for comparison: no accents, upper case, letters only."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed.upper() if ch.isalpha())
