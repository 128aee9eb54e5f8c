"""The patient's imaging history: DMP KOS DocumentEntries as exam rows, newest first, and their filters."""

from __future__ import annotations

import base64

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from drimbox.dmp.queries import DocumentEntrySummary
from drimbox.kos.reader import ManifestSummary

# Event code systems seen for the modality and the anatomical region (spec-facts §5: both kinds occur).
MODALITY_SYSTEMS = frozenset({"1.2.250.1.213.1.1.5.618", "1.2.840.10008.2.16.4"})
REGION_SYSTEMS = frozenset({"1.2.250.1.213.1.1.5.695", "2.16.840.1.113883.6.96"})
REF_STUDY = "urn:ihe:iti:xds:2016:studyInstanceUID"
REF_ACCESSION = "urn:ihe:iti:xds:2013:accession"


@dataclass(frozen=True)
class ExamRow:
    """One exam of the history, as listed; ``unique_id`` and ``repository_id`` fetch its KOS (ITI-43)."""

    unique_id: str
    repository_id: str
    date: str  # YYYY-MM-DD, '' when the DMP gives none
    time: str  # HH:MM, '' when unknown
    modalities: tuple[str, ...]
    regions: tuple[str, ...]
    description: str
    structure: str  # the producing structure's name
    study_uids: tuple[str, ...] = ()
    accessions: tuple[str, ...] = ()
    manual_kos: str = ""  # base64 of a KOS file imported by hand (the DMP unreachable): no ITI-43 for this row

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ExamRow":
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
                                  if k in cls.__dataclass_fields__}
        return cls(**values)


def exam_row(entry: DocumentEntrySummary) -> ExamRow:
    moment = entry.service_start or entry.creation_time
    modalities = _unique(c.code.upper() for c in entry.event_codes if c.system in MODALITY_SYSTEMS and c.code)
    regions = _unique(c.display or c.code for c in entry.event_codes if c.system in REGION_SYSTEMS and c.code)
    return ExamRow(
        unique_id=entry.unique_id,
        repository_id=entry.repository_id,
        date=_date(moment),
        time=_time(moment),
        modalities=modalities,
        regions=regions,
        description=entry.title,
        structure=_structures(entry.author_institutions),
        study_uids=_references(entry.reference_ids, REF_STUDY),
        accessions=_references(entry.reference_ids, REF_ACCESSION),
    )


def history(entries: Iterable[DocumentEntrySummary]) -> list[ExamRow]:
    """Exam rows, newest first (undated last); one row per KOS."""
    rows = {}
    for entry in entries:
        if entry.unique_id and entry.unique_id not in rows:
            rows[entry.unique_id] = exam_row(entry)
    return sorted(rows.values(), key=lambda r: (r.date, r.time, r.unique_id), reverse=True)


@dataclass(frozen=True)
class HistoryFilter:
    modality: str = ""
    region: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @classmethod
    def from_query(cls, query: dict[str, str]) -> "HistoryFilter":
        return cls(modality=query.get("modality", "").strip().upper(), region=query.get("region", "").strip(),
                   date_from=_parse_day(query.get("from", "")), date_to=_parse_day(query.get("to", "")))

    def keeps(self, row: ExamRow) -> bool:
        if self.modality and self.modality not in row.modalities:
            return False
        if self.region and self.region not in row.regions:
            return False
        if (self.date_from or self.date_to) and not row.date:
            return False
        day = dt.date.fromisoformat(row.date) if row.date else None
        if self.date_from and day and day < self.date_from:
            return False
        if self.date_to and day and day > self.date_to:
            return False
        return True

    def apply(self, rows: Sequence[ExamRow]) -> list[ExamRow]:
        return [row for row in rows if self.keeps(row)]


def choices(rows: Sequence[ExamRow]) -> tuple[list[str], list[str]]:
    """The modalities and regions present, for the filter lists."""
    return (sorted({m for r in rows for m in r.modalities}), sorted({g for r in rows for g in r.regions}))


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _date(value: str) -> str:
    digits = value.strip()[:8]
    if len(digits) != 8 or not digits.isdigit():
        return ""
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])).isoformat()
    except ValueError:
        return ""


def _time(value: str) -> str:
    digits = value.strip()
    if len(digits) >= 12 and digits[:12].isdigit() and _date(digits):
        return f"{digits[8:10]}:{digits[10:12]}"
    return ""


def _parse_day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


def _structures(institutions: Iterable[str]) -> str:
    """Names of the XON author institutions (``<Name>^^^^^&<OID>&ISO^IDNST^^^<id>``), HL7 escapes undone."""
    names = _unique(_unescape(xon.split("^", 1)[0]) for xon in institutions)
    return ", ".join(names)


def _references(reference_ids: Iterable[str], kind: str) -> tuple[str, ...]:
    return _unique(ref.split("^", 1)[0] for ref in reference_ids if ref.endswith("^" + kind))


def _unescape(value: str) -> str:
    for escaped, plain in (("\\S\\", "^"), ("\\T\\", "&"), ("\\R\\", "~"), ("\\F\\", "|"), ("\\E\\", "\\")):
        value = value.replace(escaped, plain)
    return value


def manual_row(kos: bytes, summary: ManifestSummary, structure: str) -> ExamRow:
    """The history row of a KOS file given by hand: what the manifest itself says."""
    return ExamRow(unique_id=summary.sop_instance_uid, repository_id="", date="", time="", modalities=(),
                   regions=(), description=summary.description.splitlines()[0][:200] if summary.description else "",
                   structure=structure, study_uids=(summary.study_uid,), accessions=tuple(summary.accessions),
                   manual_kos=base64.b64encode(kos).decode("ascii"))


def with_manual_rows(fetched: list[ExamRow], previous: list[ExamRow] | None) -> list[ExamRow]:
    """A refreshed history keeps the KOS files given by hand (after the DMP's rows)."""
    known = {row.unique_id for row in fetched}
    return fetched + [row for row in previous or [] if row.manual_kos and row.unique_id not in known]
