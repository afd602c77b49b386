"""What one OTLP export maps to before it becomes reports: accepted items grouped by source and day, the rest counted.

An *item* is what the OTLP response counts: a span, or a metric data point. Each accepted item lands in the
:class:`Group` of its source (a registered application and the resource's binned description) and its day;
each refused item is counted by reason, with the first detail of each reason kept for the answer's message.
"""

from __future__ import annotations

import collections
import datetime
from dataclasses import dataclass, field

from consentry.wire.schema import MAX_COUNT
from consentry_server.ingest.otlp.resource import Source
from consentry_server.ingest.validate import bounded_text

__all__ = ["DayWindow", "Group", "Refused", "Tally"]


class Refused(Exception):  # noqa: N818 - an outcome for one item, not an error of the server
    """One item is refused: a machine-readable ``reason`` and a ``detail`` for the answer's message."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DayWindow:
    """The days a report may cover: from ``oldest`` to ``latest``, inclusive (as native ingest checks them)."""

    oldest: datetime.date
    latest: datetime.date

    @classmethod
    def around(cls, today: datetime.date, *, retention_days: int, future_days: int) -> DayWindow:
        """The window native ingest applies on ``today``."""
        return cls(today - datetime.timedelta(days=retention_days), today + datetime.timedelta(days=future_days))

    def check(self, day: datetime.date, what: str) -> datetime.date:
        """``day``, if it is inside the window; else :class:`Refused` (``what`` says whose day it is)."""
        if day > self.latest:
            raise Refused("day_in_future", f"{what} is dated {day}, after {self.latest}")
        if day < self.oldest:
            raise Refused("day_too_old", f"{what} is dated {day}, before {self.oldest} (the retention window)")
        return day


@dataclass
class Group:
    """The accepted items of one source: command runs by stored key, and event counts, per day."""

    source: Source
    commands: dict[datetime.date, collections.Counter[str]] = field(default_factory=dict)
    events: dict[datetime.date, collections.Counter[str]] = field(default_factory=dict)
    items: collections.Counter[datetime.date] = field(default_factory=collections.Counter)

    def add_command(self, day: datetime.date, key: str) -> None:
        """Count one run of the command stored as ``key``."""
        self.commands.setdefault(day, collections.Counter())[key] += 1
        self.items[day] += 1

    def add_event(self, day: datetime.date, event: str, count: int) -> None:
        """Count ``count`` occurrences of ``event`` (a data point of zero is accepted and adds nothing)."""
        counts = self.events.setdefault(day, collections.Counter())
        if count:
            counts[event] = min(MAX_COUNT, counts[event] + count)
        self.items[day] += 1


@dataclass
class Tally:
    """Everything one export request maps to."""

    groups: dict[tuple[object, ...], Group] = field(default_factory=dict)
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    details: dict[str, str] = field(default_factory=dict)
    dropped_attributes: int = 0

    def group(self, source: Source) -> Group:
        """The group of ``source``, created on first use."""
        return self.groups.setdefault(source.key(), Group(source))

    def refuse(self, reason: str, items: int, detail: str) -> None:
        """Count ``items`` refused for ``reason``; ``detail`` says why (the first one per reason is kept)."""
        if items <= 0:
            return
        self.refused[reason] += items
        self.details.setdefault(reason, bounded_text(detail, 200))

    def refuse_day(self, group: Group, day: datetime.date, reason: str, detail: str) -> None:
        """Take back the items of ``group`` on ``day``, which could not be stored, and count them refused."""
        self.refuse(reason, group.items.pop(day, 0), detail)
        group.commands.pop(day, None)
        group.events.pop(day, None)

    @property
    def accepted(self) -> int:
        """Items accepted so far."""
        return sum(sum(group.items.values()) for group in self.groups.values())

    @property
    def rejected(self) -> int:
        """Items refused so far."""
        return sum(self.refused.values())

    def summary(self) -> str:
        """One bounded line: how many items were refused, why, with the first detail of each reason."""
        parts = [f"{count} {reason} ({self.details[reason]})" for reason, count in self.refused.most_common()]
        return bounded_text(f"{self.rejected} refused: " + "; ".join(parts), 1000) if parts else ""
