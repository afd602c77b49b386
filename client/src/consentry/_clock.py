"""Time, injectable: reports cover local calendar days; timestamps are UTC.

A clock that stands still for tests is :class:`consentry.testing.FixedClock`.
"""

from __future__ import annotations

import datetime
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Where the client gets the time from."""

    def now(self) -> datetime.datetime:
        """The current time, timezone-aware."""
        ...

    def today(self) -> datetime.date:
        """The user's current calendar day: the unit reports are made of."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back; for durations."""
        ...


class SystemClock:
    """The real clock: local calendar days, UTC timestamps."""

    def now(self) -> datetime.datetime:
        """The current time in UTC."""
        return datetime.datetime.now(datetime.timezone.utc)

    def today(self) -> datetime.date:
        """Today in the local time zone."""
        return datetime.date.today()  # noqa: DTZ011 - the user's local day is the unit of a report

    def monotonic(self) -> float:
        """:func:`time.monotonic`."""
        return time.monotonic()
