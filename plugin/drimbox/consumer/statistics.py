"""National statistics ("ModelStat", spec-facts §8): one line per appel contextuel, its outcome, by day."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass

SUCCESS = "succes"
ERROR = "erreur"
COLUMNS = ("Date", "Heure", "Nombre_Appel", "Statut_Appel")


@dataclass(frozen=True)
class StatLine:
    at: float  # epoch seconds
    outcome: str  # succes | erreur

    def __post_init__(self) -> None:
        if self.outcome not in (SUCCESS, ERROR):
            raise ValueError(f"Statut_Appel must be {SUCCESS!r} or {ERROR!r}, got {self.outcome!r}")

    @property
    def moment(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.at, dt.timezone.utc)


def day_bounds(day: dt.date) -> tuple[float, float]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()
    return start, start + 86400


def to_csv(lines: Iterable[StatLine], *, delimiter: str = ";") -> str:
    """The statistics file: a header, then one line per call (UTC date and time, 1, the outcome)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for line in sorted(lines, key=lambda item: item.at):
        moment = line.moment
        writer.writerow((moment.date().isoformat(), moment.strftime("%H:%M:%S"), 1, line.outcome))
    return out.getvalue()
