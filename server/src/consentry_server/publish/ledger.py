"""The privacy ledger: what each publication released, at what privacy loss, added up per application.

One entry per publication, application and dataset (published table: ``installs``, ``counters``, ``values``)
that the publication released anew: its time, the reporter threshold ``k``, the mechanism, epsilon per number
and in all, delta, the contribution caps that bound each number's sensitivity, and how many numbers it
released. The ledger is kept in the database (it survives restarts and is shared by the hosts of one
PostgreSQL database) and published whole beside the data, with each application's cumulative epsilon.

The accounting, for an install as the unit of privacy:

- With noise, every published number is ``epsilon_per_number``-differentially private: its noise is calibrated
  to what one install can change it by (1 for a count of installs, the contribution cap per day times the days
  of the period for a total). Basic sequential composition bounds the loss of a release of a dataset by
  ``epsilon_per_number`` times its ``numbers``, and an application's cumulative epsilon by the sum over all
  its releases. Pure differential privacy (discrete Laplace): ``delta`` is ``None``.
- Without noise the numbers are exact: ``epsilon`` is ``None``, and once exact numbers of an application were
  published its cumulative epsilon is ``None`` too: no finite bound, whatever is published after.
- Which numbers are published at all depends on exact counts (``k`` and complementary suppression), which the
  epsilon does not account for.

A publication releases a dataset anew when it draws fresh noise for it, or when the dataset's published rows or
parameters differ from its last release. Publishing again without an aggregation in between, with the same
parameters, into a public store that holds the last release, publishes that release's numbers again, draws no
noise, and adds nothing to the ledger: the decision rests on the count of aggregation runs, never on the data,
so it reveals nothing about the reports.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
from collections.abc import Iterable, Sequence

from consentry_server.publish.privacy import MECHANISM
from consentry_server.storage.base import (
    CONTRIBUTION_CAP,
    AggregateTables,
    CounterRow,
    InstallRow,
    LedgerEntry,
    ValueRow,
)
from consentry_server.storage.public import LedgerRow

__all__ = ["DATASETS", "EXACT", "REPORTER_CAP", "count_numbers", "digest", "entries", "published", "reusable"]

DATASETS = ("installs", "counters", "values")
#: The mechanism of a release without noise.
EXACT = "none (exact numbers)"
#: How many times one install counts in one number of installs (reporters are counted distinct).
REPORTER_CAP = 1
_DIGITS = 9  # epsilons are rounded to this many decimals (0.1 * 3 is not 0.30000000000000004)


def _rows(tables: AggregateTables, app: str, dataset: str) -> list[tuple[object, ...]]:
    table: Sequence[InstallRow | CounterRow | ValueRow] = getattr(tables, dataset)
    return [dataclasses.astuple(row) for row in table if row.app == app]


def count_numbers(tables: AggregateTables, app: str, dataset: str) -> int:
    """How many numbers ``dataset`` of ``app`` publishes: each count and total (a hidden one is not a number)."""
    if dataset == "installs":
        return sum(1 + (row.new_installs is not None) for row in tables.installs if row.app == app)
    if dataset == "counters":
        return 2 * sum(row.app == app for row in tables.counters)  # the total and its reporters
    return sum(row.app == app for row in tables.values)


def digest(tables: AggregateTables, app: str, dataset: str) -> str:
    """A digest of the rows of ``dataset`` of ``app`` as published (to tell a repeat from a new release)."""
    rows = sorted(_rows(tables, app, dataset), key=repr)
    return hashlib.sha256(json.dumps(rows, separators=(",", ":"), default=str).encode()).hexdigest()


def _caps(dataset: str) -> tuple[int, int | None]:
    return REPORTER_CAP, CONTRIBUTION_CAP if dataset == "counters" else None


def _same_parameters(entry: LedgerEntry, k: int, epsilon: float | None) -> bool:
    mechanism = EXACT if epsilon is None else MECHANISM
    return (entry.k, entry.mechanism, entry.epsilon_per_number, entry.delta) == (k, mechanism, epsilon, None) and (
        entry.reporter_cap,
        entry.total_cap_per_day,
    ) == _caps(entry.dataset)


def reusable(previous: Sequence[LedgerEntry], held: int, *, k: int, epsilon: float | None, aggregation: int) -> bool:
    """Whether a noisy publication may publish the last release's numbers again instead of drawing new noise.

    Only when the public store holds that release (``held``: its ledger number), nothing was aggregated since,
    and the parameters are the same: then the same numbers are published, and nothing more is released.
    """
    if epsilon is None or not previous:
        return False
    number = max(entry.publication for entry in previous)
    last = [entry for entry in previous if entry.publication == number]
    return held == number and all(
        entry.aggregation == aggregation and _same_parameters(entry, k, epsilon) for entry in last
    )


def entries(
    previous: Sequence[LedgerEntry],
    tables: AggregateTables,
    apps: Iterable[str],
    *,
    publication: int,
    released_at: datetime.datetime,
    k: int,
    epsilon: float | None,
    fresh: bool,
    aggregation: int,
) -> list[LedgerEntry]:
    """The ledger entries of a publication of ``tables`` (as published), numbered ``publication``.

    ``fresh``: noise was drawn for every number of ``tables`` (not the numbers of an earlier release again).
    A dataset gets an entry when it is released anew: fresh noise, or rows or parameters that differ from its
    last entry. A dataset that never had an entry and publishes nothing gets none.
    """
    last = {(entry.app, entry.dataset): entry for entry in sorted(previous, key=lambda entry: entry.publication)}
    names = sorted({*apps, *(row.app for rows in (tables.installs, tables.counters, tables.values) for row in rows)})
    names += sorted({entry.app for entry in previous}.difference(names))
    made = []
    for app in names:
        for dataset in DATASETS:
            numbers = count_numbers(tables, app, dataset)
            rows = digest(tables, app, dataset)
            before = last.get((app, dataset))
            if before is None and numbers == 0:
                continue
            repeat = before is not None and before.digest == rows and _same_parameters(before, k, epsilon)
            if repeat and not (fresh and numbers):
                continue
            spent = None if epsilon is None else round(epsilon * numbers if fresh else 0.0, _DIGITS)
            made.append(
                LedgerEntry(
                    publication=publication,
                    released_at=released_at,
                    app=app,
                    dataset=dataset,
                    k=k,
                    mechanism=EXACT if epsilon is None else MECHANISM,
                    epsilon_per_number=epsilon,
                    numbers=numbers,
                    epsilon=spent,
                    delta=None,
                    reporter_cap=REPORTER_CAP,
                    total_cap_per_day=_caps(dataset)[1],
                    digest=rows,
                    aggregation=aggregation,
                )
            )
    return made


def published(ledger: Sequence[LedgerEntry]) -> list[LedgerRow]:
    """The ledger as published: without digests, with each application's cumulative epsilon after each entry."""
    spent: dict[str, list[float]] = {}
    unbounded: set[str] = set()
    rows = []
    for entry in sorted(ledger, key=lambda entry: (entry.publication, entry.app, entry.dataset)):
        if entry.epsilon is None:
            if entry.numbers:
                unbounded.add(entry.app)
        else:
            spent.setdefault(entry.app, []).append(entry.epsilon)
        cumulative = None if entry.app in unbounded else round(math.fsum(spent.get(entry.app, [])), _DIGITS)
        rows.append(
            LedgerRow(
                publication=entry.publication,
                released_at=entry.released_at,
                app=entry.app,
                dataset=entry.dataset,
                k=entry.k,
                mechanism=entry.mechanism,
                epsilon_per_number=entry.epsilon_per_number,
                numbers=entry.numbers,
                epsilon=entry.epsilon,
                delta=entry.delta,
                reporter_cap=entry.reporter_cap,
                total_cap_per_day=entry.total_cap_per_day,
                cumulative_epsilon=cumulative,
            )
        )
    return rows
