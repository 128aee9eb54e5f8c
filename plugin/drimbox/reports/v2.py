"""Minimal HL7 v2 ER7 reader: segments, fields, repetitions, components, escapes.

Tolerant on purpose: segment separators may be CR, LF or CRLF, trailing empty fields may be missing, and a
message without a valid MSH still yields its segments (with default delimiters) so that errors can be reported.
Indices follow HL7 numbering: ``field(3)`` is PID-3; for MSH, ``field(1)`` is the field separator itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_ENCODING_CHARS = "^~\\&"
_SEGMENT_SPLIT = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def encoding_characters(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent

    def unescape(self, value: str) -> str:
        """Resolve \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ and hex \\Xhh\\ escapes; leaves formatting escapes out."""
        esc = self.escape
        if not esc or esc not in value:
            return value
        out: list[str] = []
        i = 0
        while i < len(value):
            ch = value[i]
            end = value.find(esc, i + 1) if ch == esc else -1
            if ch != esc or end < 0:
                out.append(ch)
                i += 1
                continue
            token = value[i + 1:end]
            replacement = {
                "F": self.field, "S": self.component, "T": self.subcomponent, "R": self.repetition, "E": esc,
            }.get(token)
            if replacement is not None:
                out.append(replacement)
            elif token.startswith("X") and len(token) > 1:
                try:
                    out.append(bytes.fromhex(token[1:]).decode("latin-1"))
                except ValueError:
                    out.append(value[i:end + 1])
            elif token.startswith(("H", "N", ".")) or token in ("", "Z"):
                pass  # highlighting/formatting escapes carry no text
            else:
                out.append(value[i:end + 1])
            i = end + 1
        return "".join(out)

    def escape_text(self, value: str) -> str:
        """Escape a text value so it can be placed in one component."""
        esc = self.escape
        table = {esc: f"{esc}E{esc}", self.field: f"{esc}F{esc}", self.component: f"{esc}S{esc}",
                 self.subcomponent: f"{esc}T{esc}", self.repetition: f"{esc}R{esc}"}
        text = "".join(table.get(ch, ch) for ch in value)
        return text.replace("\r", " ").replace("\n", " ")


@dataclass
class Segment:
    name: str
    fields: list[str]  # raw (still escaped); fields[0] is the segment name
    delimiters: Delimiters

    def field(self, index: int) -> str:
        """Raw field ``index`` (HL7 numbering), "" when absent."""
        if self.name == "MSH":
            if index == 1:
                return self.delimiters.field
            index -= 1
        return self.fields[index] if 0 < index < len(self.fields) else ""

    def repetitions(self, index: int) -> list[str]:
        raw = self.field(index)
        if self.name == "MSH" and index == 2:
            return [raw]
        return raw.split(self.delimiters.repetition) if raw else []

    def component(self, index: int, comp: int = 1, rep: int = 0, sub: int = 0) -> str:
        """Unescaped component ``comp`` (1-based) of repetition ``rep`` (0-based); ``sub`` > 0 picks a
        sub-component."""
        reps = self.repetitions(index)
        if rep >= len(reps):
            return ""
        return split_component(reps[rep], self.delimiters, comp, sub)


def split_component(raw_value: str, delimiters: Delimiters, comp: int = 1, sub: int = 0) -> str:
    components = raw_value.split(delimiters.component)
    if comp > len(components):
        return ""
    value = components[comp - 1]
    if sub:
        subs = value.split(delimiters.subcomponent)
        value = subs[sub - 1] if sub <= len(subs) else ""
    return delimiters.unescape(value).strip()


def components(raw_value: str, delimiters: Delimiters) -> list[str]:
    """All components of a raw field/repetition, unescaped (sub-components kept joined)."""
    return [delimiters.unescape(c).strip() for c in raw_value.split(delimiters.component)]


@dataclass
class Message:
    segments: list[Segment]
    delimiters: Delimiters
    has_msh: bool

    def first(self, name: str) -> Segment | None:
        for seg in self.segments:
            if seg.name == name:
                return seg
        return None

    def all(self, name: str) -> list[Segment]:
        return [seg for seg in self.segments if seg.name == name]


def parse_er7(text: str) -> Message:
    """Split ER7 text into segments. Never raises; lines that are not segments are skipped."""
    text = text.lstrip("\ufeff")
    lines = [line for line in _SEGMENT_SPLIT.split(text) if line.strip()]
    delimiters = Delimiters()
    has_msh = False
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("MSH")), None)
    if start is not None:
        msh = lines[start].lstrip()
        if len(msh) >= 8:
            enc = msh[4:8]
            sep = msh[3]
            if sep.strip() and sep.isascii() and not sep.isalnum() and len(set(sep + enc)) == 5:
                delimiters = Delimiters(sep, enc[0], enc[1], enc[2], enc[3])
                has_msh = True
    segments: list[Segment] = []
    for line in lines:
        line = line.strip("\x0b\x1c ")
        name = line[:3]
        # ASCII only: "ß".upper() is "SS", a 4-character segment name
        if (len(name) != 3 or not name.isascii() or not name.isalnum() or not name[0].isalpha()
                or (len(line) > 3 and line[3] != delimiters.field)):
            continue
        segments.append(Segment(name.upper(), line.split(delimiters.field), delimiters))
    return Message(segments, delimiters, has_msh)
