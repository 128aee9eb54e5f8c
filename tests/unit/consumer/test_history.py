"""DMP KOS entries as exam rows: order, fields, filters."""

from __future__ import annotations

from drimbox.consumer.history import HistoryFilter, choices, history
from drimbox.dmp.queries import DocumentEntrySummary
from drimbox.reports.model import Code

MOD = "1.2.250.1.213.1.1.5.618"
SNOMED = "2.16.840.1.113883.6.96"


def entry(uid: str, start: str, modality: str, region: str, org: str = "Centre A", study: str = "1.2.3"):
    return DocumentEntrySummary(
        entry_uuid="urn:uuid:" + uid, unique_id=uid, repository_id="1.2.250.1.213.1.1.1.1", title=f"Exam {uid}",
        service_start=start, creation_time="20240101000000",
        event_codes=(Code(modality, MOD, modality), Code("12738006", SNOMED, region)),
        author_institutions=(f"{org}^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1012355550",),
        reference_ids=(f"{study}^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
                       "ACC1^^^&1.2.250.1.999.1.2&ISO^urn:ihe:iti:xds:2013:accession"))


def test_rows_are_newest_first_with_their_fields():
    rows = history([entry("1.1", "20230105101500", "CT", "Crâne"), entry("1.2", "20240301", "MR", "Genou"),
                    entry("1.3", "", "US", "Abdomen"), entry("1.2", "20240301", "MR", "Genou")])
    # 1.3 has no service time: its creation time (2024-01-01) dates it
    assert [r.unique_id for r in rows] == ["1.2", "1.3", "1.1"]
    first = rows[2]
    assert (first.date, first.time, first.modalities, first.regions) == ("2023-01-05", "10:15", ("CT",), ("Crâne",))
    assert first.structure == "Centre A" and first.study_uids == ("1.2.3",) and first.accessions == ("ACC1",)
    assert rows[1].date == "2024-01-01"


def test_filters_by_modality_region_and_dates():
    rows = history([entry("1.1", "20230105", "CT", "Crâne"), entry("1.2", "20240301", "MR", "Genou"),
                    entry("1.3", "20220101", "CT", "Genou")])
    keep = lambda **q: [r.unique_id for r in HistoryFilter.from_query(q).apply(rows)]  # noqa: E731
    assert keep(modality="ct") == ["1.1", "1.3"]
    assert keep(region="Genou") == ["1.2", "1.3"]
    assert keep(**{"from": "2023-01-01"}) == ["1.2", "1.1"]
    assert keep(**{"from": "2023-01-01", "to": "2023-12-31", "modality": "CT"}) == ["1.1"]
    assert keep(**{"from": "not a date"}) == ["1.2", "1.1", "1.3"]
    assert choices(rows) == (["CT", "MR"], ["Crâne", "Genou"])
