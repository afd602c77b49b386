"""Time, injectable: reports cover local calendar days; timestamps are UTC."""

from __future__ import annotations

import datetime
import time
from typing import Protocol

__all__ = ["Clock", "FixedClock", "SystemClock"]


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


class FixedClock:
    """A clock that stands still until moved: for tests, simulations and the demo."""

    def __init__(self, now: datetime.datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._now = now
        self._monotonic = 1000.0

    def now(self) -> datetime.datetime:
        """The time the clock is set to."""
        return self._now

    def today(self) -> datetime.date:
        """The date of :meth:`now` in its own time zone."""
        return self._now.date()

    def monotonic(self) -> float:
        """Advances with :meth:`advance`."""
        return self._monotonic

    def advance(self, delta: datetime.timedelta) -> None:
        """Move the clock forward by ``delta``."""
        if delta < datetime.timedelta(0):
            raise ValueError("time does not go back")
        self._now += delta
        self._monotonic += delta.total_seconds()

    def set(self, now: datetime.datetime) -> None:
        """Move the clock to ``now`` (not earlier than the current time)."""
        self.advance(now - self._now)
