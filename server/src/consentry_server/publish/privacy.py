"""The privacy protections applied before anything is published: pure functions over the aggregate tables.

1. **Primary suppression.** A number that rests on fewer than ``k`` distinct reporters is not published.
2. **Complementary suppression.** Some published numbers add up to others, and a hidden one could be recovered by
   subtraction. Within every such group, if anything is hidden, enough more is hidden (the smallest cells first)
   that at least two cells and at least ``k`` reporters are hidden together, so a difference reveals only an
   aggregate of ``k`` or more. The groups:

   - the values of one field in one period (its cells share the installs as their total);
   - the derived counters that partition a command's runs (durations; values of one parameter; exact kinds
     of run) and a data kind's records (size categories; exact categories), in one period;
   - a counter's, and new installs', days within each week and within each month, since the week's and the
     month's totals are the sums of their days'.

   A hidden count of new installs is published as ``None``.
3. **Noise** (optional, ``noise_epsilon``): discrete Laplace noise from OpenDP, calibrated to each published
   number's sensitivity: 1 for a count of reporters, the contribution cap times the days of the period for a
   total. The parameters are published beside the data (:func:`noise_parameters`), and what each publication
   spent in the privacy ledger (:mod:`consentry_server.publish.ledger`).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import functools
import json
from collections.abc import Callable, Hashable, Sequence

from consentry_server.storage.base import AggregateTables, CounterRow

__all__ = ["MECHANISM", "add_noise", "complementary_groups", "noise_parameters", "protect"]

_PARTITIONS = {"command_duration": 1, "command_param": 2, "command": 1, "data_size": 1, "data": 1}


def _prefix(row: CounterRow) -> str | None:
    """For counters that partition a whole, the key of that whole (command name, or command and parameter)."""
    keep = _PARTITIONS.get(row.kind)
    if keep is None:
        return None
    try:
        parts = json.loads(row.name)
    except ValueError:
        return None
    return json.dumps(parts[:keep]) if isinstance(parts, list) else None


def _month(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def _week(day: datetime.date) -> datetime.date:
    return day - datetime.timedelta(days=day.weekday())


def complementary_groups(tables: AggregateTables) -> list[tuple[str, list[int]]]:
    """The groups of cells that add up to a published whole: ("values"|"counters"|"new", [row indexes])."""
    groups: dict[tuple[Hashable, ...], list[int]] = collections.defaultdict(list)
    for index, value in enumerate(tables.values):
        groups[("values", value.app, value.period, value.start, value.field)].append(index)
    for index, counter in enumerate(tables.counters):
        whole = _prefix(counter)
        if whole is not None:
            kind = counter.kind.removeprefix("command_").removeprefix("data_")
            groups[("counters", counter.app, counter.period, counter.start, kind, whole)].append(index)
        if counter.period == "day":
            key = (counter.app, counter.kind, counter.scope, counter.name)
            groups[("counters", "week", *key, _week(counter.start))].append(index)
            groups[("counters", "month", *key, _month(counter.start))].append(index)
    for index, install in enumerate(tables.installs):
        if install.period == "day":
            groups[("new", "week", install.app, install.level, _week(install.start))].append(index)
            groups[("new", "month", install.app, install.level, _month(install.start))].append(index)
    return [(str(key[0]), members) for key, members in groups.items() if len(members) > 1]


def _hide_more(members: Sequence[int], hidden: set[int], weight: Callable[[int], int], k: int) -> bool:
    """Hide the smallest visible members until none, or at least two and ``k`` together, are hidden."""
    changed = False
    while True:
        shut = [member for member in members if member in hidden]
        if not shut or (len(shut) >= 2 and sum(map(weight, shut)) >= k):  # noqa: PLR2004 - a pair at least
            return changed
        visible = sorted((member for member in members if member not in hidden), key=weight)
        if not visible:
            return changed
        hidden.add(visible[0])
        changed = True


def protect(tables: AggregateTables, k: int) -> AggregateTables:
    """Primary and complementary suppression at threshold ``k`` (see the module's documentation)."""
    hidden = {
        "values": {i for i, row in enumerate(tables.values) if row.reporters < k},
        "counters": {i for i, row in enumerate(tables.counters) if row.reporters < k},
        "new": {i for i, row in enumerate(tables.installs) if 0 < (row.new_installs or 0) < k},
    }
    weights: dict[str, Callable[[int], int]] = {
        "values": lambda i: tables.values[i].reporters,
        "counters": lambda i: tables.counters[i].reporters,
        "new": lambda i: tables.installs[i].new_installs or 0,
    }
    groups = complementary_groups(tables)
    changed = True
    while changed:
        changed = False
        for name, members in groups:
            if name == "new":
                members = [i for i in members if tables.installs[i].reporters >= k]  # noqa: PLW2901 - the published ones
            changed |= _hide_more(members, hidden[name], weights[name], k)
    installs = [
        row if i not in hidden["new"] else dataclasses.replace(row, new_installs=None)
        for i, row in enumerate(tables.installs)
        if row.reporters >= k
    ]
    return AggregateTables(
        installs=installs,
        counters=[row for i, row in enumerate(tables.counters) if i not in hidden["counters"]],
        values=[row for i, row in enumerate(tables.values) if i not in hidden["values"]],
    )


# ---- noise -----------------------------------------------------------------------------------------------------
_PERIOD_DAYS = {"day": 1, "week": 7, "month": 31}
#: The noise mechanism, as the ledger and the publication's parameters name it.
MECHANISM = "discrete Laplace (OpenDP make_laplace on integers)"


def noise_parameters(epsilon: float, contribution_cap: int) -> dict[str, object]:
    """What is published beside noisy data, so anyone can judge it."""
    return {
        "mechanism": MECHANISM,
        "epsilon_per_number": epsilon,
        "sensitivity": {
            "reporter counts": 1,
            "totals": f"{contribution_cap} per reporter and day, times the days of the period (1, 7 or 31)",
        },
        "scale": {"reporter counts": 1 / epsilon, "day totals": contribution_cap / epsilon},
        "note": "each published number is protected on its own; the privacy loss of a release adds up over its "
        "numbers, and over releases: see the privacy ledger",
    }


def add_noise(tables: AggregateTables, epsilon: float, contribution_cap: int) -> AggregateTables:
    """Calibrated noise on every published number (needs the ``noise`` extra: opendp)."""
    import opendp.prelude as dp  # noqa: PLC0415 - an optional dependency

    dp.enable_features("contrib")  # OpenDP's Laplace mechanism on integers is in its "contrib" set

    @functools.cache
    def mechanism(sensitivity: int) -> Callable[[int], int]:
        measure = dp.m.make_laplace(
            dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=float(sensitivity) / epsilon
        )
        return lambda value: int(measure(int(value)))

    def noisy(value: int, sensitivity: int = 1) -> int:
        return max(0, mechanism(sensitivity)(value))

    return AggregateTables(
        installs=[
            dataclasses.replace(
                row,
                reporters=noisy(row.reporters),
                new_installs=None if row.new_installs is None else noisy(row.new_installs),
            )
            for row in tables.installs
        ],
        counters=[
            dataclasses.replace(
                row,
                reporters=noisy(row.reporters),
                total=noisy(row.total, contribution_cap * _PERIOD_DAYS.get(row.period, 31)),
            )
            for row in tables.counters
        ],
        values=[dataclasses.replace(row, reporters=noisy(row.reporters)) for row in tables.values],
    )
