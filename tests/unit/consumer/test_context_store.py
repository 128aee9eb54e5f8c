"""Contexts and statistics lines in a real SQLite store."""

from __future__ import annotations

import datetime as dt

import pytest

from drimbox.consumer.appel import AppelContextuel
from drimbox.consumer.context import ConsumerContext, binding_digest, new_binding, new_context_id
from drimbox.consumer.history import ExamRow
from drimbox.consumer.reasons import ConsumerReason, parse_reason
from drimbox.consumer.statistics import ERROR, SUCCESS, day_bounds, to_csv
from drimbox.store import open_database
from drimbox.store.consumer import ConsumerStore

APPEL = AppelContextuel("279035121518989", "1.2.250.1.213.1.4.10", "PAT-TROIS", "DOMINIQUE", "female",
                        dt.date(1979, 3, 28), "63220", "true", "IPP0001", "1.2.250.1.999.1.1")


class Clock:
    now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    clock = Clock()
    return ConsumerStore(open_database(f"sqlite:///{tmp_path}/drimbox.db"), clock), clock


def test_a_context_is_bound_to_its_browser_and_expires(store):
    consumer, clock = store
    binding = new_binding()
    context = ConsumerContext(new_context_id(), binding_digest(binding), clock.now, clock.now + 60, APPEL)
    consumer.add_context(context)
    loaded = consumer.get_context(context.context_id)
    assert loaded == context and loaded.appel.given == "DOMINIQUE"
    assert loaded.is_bound_to(binding, clock.now)
    assert not loaded.is_bound_to(new_binding(), clock.now) and not loaded.is_bound_to("", clock.now)
    assert not loaded.is_bound_to(binding, clock.now + 60)
    chosen = loaded.with_activity("810002000015", "0.0", "334422928290001").with_reason(
        *parse_reason("other", " avis  demandé "))
    consumer.save_choices(chosen)
    again = consumer.get_context(context.context_id)
    assert again.structure_id == "334422928290001" and again.reason_text == "avis demandé"
    assert again.access_reason.purpose_of_use == "normal"
    assert consumer.history(context.context_id) is None
    row = ExamRow("1.2", "1.3", "2024-01-01", "", ("CT",), ("Crâne",), "Scanner", "Centre", ("1.2.3",))
    consumer.save_history(context.context_id, [row])
    assert consumer.history(context.context_id) == [row]
    assert consumer.purge_contexts(clock.now + 61) == 1 and consumer.get_context(context.context_id) is None


def test_context_ids_are_unguessable_and_distinct():
    ids = {new_context_id() for _ in range(200)}
    assert len(ids) == 200 and all(len(i) == 43 for i in ids)


def test_reasons_map_to_the_vihf_purpose_of_use():
    assert [ConsumerReason(r).purpose_of_use for r in ("consent", "emergency", "regulation")] == [
        "normal", "bris_de_glace", "centre_15"]
    assert parse_reason("other", "  second   avis ") == (ConsumerReason.OTHER, "second avis")
    assert parse_reason("consent", "ignored") == (ConsumerReason.CONSENT, "")
    for value, text in (("other", "  "), ("unknown", ""), ("other", "x" * 501)):
        with pytest.raises(ValueError):
            parse_reason(value, text)


def test_statistics_lines_by_day_as_csv(store):
    consumer, clock = store
    day = dt.date(2024, 5, 2)
    start, end = day_bounds(day)
    for offset, outcome in ((-1, SUCCESS), (10, SUCCESS), (3600, ERROR), (86400, SUCCESS)):
        clock.now = start + offset
        consumer.add_statistic(outcome)
    lines = consumer.statistics(start, end)
    assert [line.outcome for line in lines] == [SUCCESS, ERROR]
    assert to_csv(lines).splitlines() == ["Date;Heure;Nombre_Appel;Statut_Appel",
                                          "2024-05-02;00:00:10;1;succes", "2024-05-02;01:00:00;1;erreur"]
    with pytest.raises(ValueError):
        consumer.add_statistic("ok")
