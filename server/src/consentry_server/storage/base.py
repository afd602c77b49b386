"""The storage interface shared by the SQLite and PostgreSQL backends, and the values that cross it."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from consentry.manifest import Manifest, PluginManifest
from consentry.wire import Report
from consentry_server.catalog import Catalog

__all__ = [
    "COUNTER_KINDS",
    "AggregateTables",
    "CounterRow",
    "InstallRow",
    "Progress",
    "Storage",
    "StoreOutcome",
    "ValueRow",
    "epoch_day",
    "from_epoch_day",
]

#: Counter kinds as stored (the integer) and as published (the name).
COUNTER_KINDS = {
    "event": 0,
    "plugin_event": 1,
    "exception": 2,
    "runs": 3,
    "active_minutes": 4,
    "command": 5,
    "data": 6,
}
Progress = Callable[[str, int, int], None]
_EPOCH = datetime.date(1970, 1, 1).toordinal()


def epoch_day(day: datetime.date) -> int:
    """Days since 1970-01-01: how days are stored."""
    return day.toordinal() - _EPOCH


def from_epoch_day(number: int) -> datetime.date:
    """The inverse of :func:`epoch_day`."""
    return datetime.date.fromordinal(number + _EPOCH)


@dataclass(frozen=True)
class StoreOutcome:
    """What storing a report did: ``stored`` (new), ``duplicate`` (identical, nothing changed) or ``replaced``."""

    status: Literal["stored", "duplicate", "replaced"]
    days: int


@dataclass(frozen=True)
class InstallRow:
    """Distinct reporters (installs) of an application at a level in a period, and how many were new.

    ``new_installs`` is ``None`` once published if fewer than k installs were new: it is a count of reporters too.
    """

    app: str
    period: str
    start: datetime.date
    level: str
    reporters: int
    new_installs: int | None


@dataclass(frozen=True)
class CounterRow:
    """The total of a counter and how many distinct reporters contributed, in a period."""

    app: str
    period: str
    start: datetime.date
    kind: str
    scope: str
    name: str
    total: int
    reporters: int


@dataclass(frozen=True)
class ValueRow:
    """How many distinct reporters had ``field`` equal to ``value`` in a period."""

    app: str
    period: str
    start: datetime.date
    field: str
    value: str
    reporters: int


@dataclass(frozen=True)
class AggregateTables:
    """Everything aggregation produced, before privacy protections are applied for publishing."""

    installs: Sequence[InstallRow]
    counters: Sequence[CounterRow]
    values: Sequence[ValueRow]


class Storage(Protocol):
    """Raw reports, registered manifests and aggregates. Only modules under ``storage/`` speak SQL."""

    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names of those applied now."""
        ...

    def register_manifest(self, manifest: Manifest | PluginManifest) -> bool:
        """Keep ``manifest`` (every version is kept); ``False`` if this exact version was already registered."""
        ...

    def apps(self) -> list[str]:
        """Names of the registered applications."""
        ...

    def catalog(self, app: str) -> Catalog | None:
        """The registered manifests of ``app``, or ``None``."""
        ...

    def store_report(self, report: Report, *, received: datetime.datetime) -> StoreOutcome:
        """Durably store a validated report; idempotent per (application, level, reporter, day)."""
        ...

    def delete_reporters(self, app: str, reporters: Sequence[str]) -> int:
        """Delete every stored report of ``app`` from ``reporters`` (hex ids); return how many rows went."""
        ...

    def report_count(self) -> int:
        """How many (report, day) rows are stored."""
        ...

    def aggregate(self, progress: Progress | None = None) -> AggregateTables:
        """Roll raw reports up per day and ISO week; return the tables."""
        ...

    def aggregates(self) -> AggregateTables:
        """The stored aggregates, as the last aggregation left them."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
