"""The report as Python values.

A :class:`Report` is what one install sends for one application, one level and the day(s) it covers. The
types mirror :data:`consentry.wire.schema.REPORT` field for field (a test keeps them equal). Instances are
frozen; treat the dictionaries inside them as read-only.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from consentry.wire.schema import SCHEMA_VERSION

__all__ = ["Activity", "Command", "DataCategory", "Day", "Plugin", "Report"]

Day = datetime.date
_EventCounts = dict[str, int]


@dataclass(frozen=True, slots=True)
class Activity:
    """Runs that lived longer than a minute, and active time in 10-minute steps, for one day."""

    runs: int = 0
    active_minutes: int = 0


@dataclass(frozen=True, slots=True)
class Plugin:
    """An installed plugin with its version and the counts of its own events."""

    name: str
    version: str
    counts: dict[Day, _EventCounts] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Command:
    """Identical runs of one command on one day."""

    day: Day
    name: str
    duration: str
    exit_code: int
    count: int
    params: dict[str, str | bool] = field(default_factory=dict)
    exception: str | None = None

    def key(self) -> tuple[object, ...]:
        """Everything but the count: two records with the same key must be merged."""
        return (self.day, self.name, tuple(sorted(self.params.items())), self.duration, self.exit_code, self.exception)


@dataclass(frozen=True, slots=True)
class DataCategory:
    """How often data of one kind, class, dtype, dimensionality and size category was seen on one day."""

    day: Day
    kind: str
    class_name: str
    dtype: str
    ndim: int
    size: str
    count: int

    def key(self) -> tuple[object, ...]:
        """Everything but the count."""
        return (self.day, self.kind, self.class_name, self.dtype, self.ndim, self.size)


@dataclass(frozen=True, slots=True)
class Report:
    """One report: one install, one application, one level, the days it covers."""

    app: str
    app_version: str
    level: str
    consent_version: str
    reporter: str
    first_report: bool
    days: tuple[Day, ...]
    system: dict[str, str] = field(default_factory=dict)
    dependencies: dict[str, str] = field(default_factory=dict)
    counts: dict[Day, _EventCounts] = field(default_factory=dict)
    activity: dict[Day, Activity] = field(default_factory=dict)
    exceptions: dict[Day, _EventCounts] = field(default_factory=dict)
    plugins: tuple[Plugin, ...] = ()
    commands: tuple[Command, ...] = ()
    data: tuple[DataCategory, ...] = ()
    schema: int = SCHEMA_VERSION

    def total(self, event: str) -> int:
        """The sum of ``event``'s counts over the days covered."""
        return sum(day.get(event, 0) for day in self.counts.values())
