"""The privacy protections of publication, as properties over random aggregate tables.

No published cell rests on fewer than k reporters, and no difference of published cells reveals one: within
every group of cells that add up to a published whole, what is hidden is either nothing, or at least two cells
of at least k reporters together, or everything.
"""

from __future__ import annotations

import datetime
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry_server.publish.privacy import add_noise, complementary_groups, noise_parameters, protect
from consentry_server.storage.base import AggregateTables, CounterRow, InstallRow, ValueRow

MON = datetime.date(2026, 11, 16)
DAYS = [MON + datetime.timedelta(days=n) for n in range(10)]
REPORTERS = st.integers(0, 30)


def day_counters(name: str, kind: str = "event") -> st.SearchStrategy[list[CounterRow]]:
    """A counter's day cells and its week and month totals, consistent with each other."""

    @st.composite
    def build(draw: st.DrawFn) -> list[CounterRow]:
        days = draw(st.lists(st.sampled_from(DAYS), unique=True, min_size=1, max_size=7))
        cells = [
            CounterRow("a", "day", day, kind, "", name, draw(st.integers(1, 500)), draw(REPORTERS)) for day in days
        ]
        rows = list(cells)
        for period, start in (("week", MON), ("week", MON + datetime.timedelta(days=7)), ("month", MON.replace(day=1))):
            inside = [
                c for c in cells if start <= c.start < start + datetime.timedelta(days=7 if period == "week" else 31)
            ]
            if inside:
                total = sum(c.total for c in inside)
                rows.append(CounterRow("a", period, start, kind, "", name, total, max(c.reporters for c in inside)))
        return rows

    return build()


@st.composite
def tables(draw: st.DrawFn) -> AggregateTables:
    values = []
    for field in ("system.os", "app_version", "country"):
        chosen = draw(st.lists(st.sampled_from(["x", "y", "z", "w", "v"]), unique=True, max_size=5))
        values.extend(ValueRow("a", "week", MON, field, value, draw(REPORTERS)) for value in chosen)
    counters: list[CounterRow] = []
    for name in draw(st.lists(st.sampled_from(["open", "save", "close"]), unique=True, max_size=3)):
        counters += draw(day_counters(name))
    durations = draw(st.lists(st.sampled_from(["<1s", "1-10s", "10-60s"]), unique=True, max_size=3))
    counters.extend(
        CounterRow("a", "week", MON, "command_duration", "", json.dumps(["call", duration]), 9, draw(REPORTERS))
        for duration in durations
    )
    installs = []
    for day in draw(st.lists(st.sampled_from(DAYS[:7]), unique=True, max_size=7)):
        reporters = draw(REPORTERS)
        installs.append(InstallRow("a", "day", day, "basic", reporters, draw(st.integers(0, reporters))))
    return AggregateTables(installs, counters, values)


def rows_of(table: AggregateTables, name: str) -> list[object]:
    return {"values": table.values, "counters": table.counters, "new": table.installs}[name]  # type: ignore[return-value]


def weight(row: object, name: str) -> int:
    return int(row.new_installs or 0) if name == "new" else int(row.reporters)  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(original=tables(), k=st.integers(1, 12))
def test_nothing_below_k_is_published_nor_recoverable_by_difference(original, k):
    published = protect(original, k)
    assert all(row.reporters >= k for row in [*published.installs, *published.counters, *published.values])
    kept = {"values": set(published.values), "counters": set(published.counters)}
    new_shown = {(row.start, row.level) for row in published.installs if row.new_installs is not None}
    for name, members in complementary_groups(original):
        rows = [rows_of(original, name)[i] for i in members]
        if name == "new":
            rows = [row for row in rows if row.reporters >= k]  # type: ignore[attr-defined]
            hidden = [row for row in rows if (row.start, row.level) not in new_shown]  # type: ignore[attr-defined]
        else:
            hidden = [row for row in rows if row not in kept[name]]
        if hidden and len(hidden) < len(rows):
            assert len(hidden) >= 2
            assert sum(weight(row, name) for row in hidden) >= k


@settings(max_examples=200, deadline=None)
@given(original=tables(), k=st.integers(1, 12))
def test_nothing_is_hidden_without_a_reason(original, k):
    published = protect(original, k)
    kept = set(published.counters) | set(published.values)
    groups = complementary_groups(original)
    for row in [*original.counters, *original.values]:
        if row.reporters >= k and row not in kept:
            name = "counters" if isinstance(row, CounterRow) else "values"
            partners = [
                [rows_of(original, name)[i] for i in members]
                for group, members in groups
                if group == name and row in [rows_of(original, name)[i] for i in members]
            ]
            assert any(other is not row and other not in kept for cells in partners for other in cells)


def test_a_single_hidden_day_is_not_recoverable_from_the_week():
    week = [
        CounterRow("a", "day", MON, "event", "", "open", 100, 20),
        CounterRow("a", "day", DAYS[1], "event", "", "open", 5, 1),  # one reporter: hidden
        CounterRow("a", "day", DAYS[2], "event", "", "open", 80, 15),
        CounterRow("a", "week", MON, "event", "", "open", 185, 30),
    ]
    published = protect(AggregateTables([], week, []), 10)
    days = [row for row in published.counters if row.period == "day"]
    assert [row.start for row in days] == [MON]  # the smallest other day is hidden with the rare one
    week_row = next(row for row in published.counters if row.period == "week")
    assert week_row.total - sum(row.total for row in days) == 85  # what a difference reveals: 16 reporters


def test_a_rare_operating_system_is_not_recoverable_from_the_others():
    values = [
        ValueRow("a", "week", MON, "system.os", os, n) for os, n in (("linux", 40), ("macos", 3), ("windows", 12))
    ]
    published = protect(AggregateTables([], [], values), 10)
    assert [row.value for row in published.values] == ["linux"]


def test_hidden_new_installs_are_published_as_none():
    installs = [InstallRow("a", "day", MON, "basic", 30, 2), InstallRow("a", "day", DAYS[1], "basic", 30, 12)]
    published = protect(AggregateTables(installs, [], []), 10)
    assert [row.new_installs for row in published.installs] == [None, None]  # 2 is hidden, and so 12 with it


def test_noise_is_calibrated_and_its_parameters_are_published():
    pytest.importorskip("opendp")
    rows = AggregateTables(
        [InstallRow("a", "week", MON, "basic", 1000, 100)],
        [CounterRow("a", "day", MON, "event", "", "open", 50_000, 1000)],
        [ValueRow("a", "week", MON, "system.os", "linux", 1000)],
    )
    noisy = [add_noise(rows, epsilon=1.0, contribution_cap=10) for _ in range(40)]
    reporters = [table.installs[0].reporters for table in noisy]
    assert len(set(reporters)) > 1  # noise was added ...
    assert all(abs(value - 1000) < 60 for value in reporters)  # ... at the scale of 1/epsilon
    assert all(table.counters[0].total >= 0 for table in noisy)
    parameters = noise_parameters(1.0, 10)
    assert parameters["epsilon_per_number"] == 1.0
    assert "10 per reporter" in json.dumps(parameters)
