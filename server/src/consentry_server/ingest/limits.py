"""Rate limits per source and per reporter, and a limit on the new reporters of a source: in memory, by salted hashes.

A source's address is never a key: it is hashed with HMAC-SHA256 under a random salt that lives only in memory
and is replaced every day (when the buckets are forgotten too). Reporter ids are public to the server anyway and
are keyed as they are. A bucket holds ``burst`` tokens and refills at ``per_minute`` a minute; a request that
finds it empty is told, in seconds, when to come back. The number of buckets is bounded: past it, the oldest
are forgotten, which can only be lenient.

Rotating reporter ids escapes the per-reporter limit, and Slicer and OTLP uploads get a fresh reporter id each:
one source could make hundreds of installs a minute, enough to cross the reporter threshold k of any bucket.
So each source (by its salted key) may also send reports of at most ``new_reporters_per_day`` reporter ids of an
application in a UTC day; a reporter it already sent that day is not new again. The reporters are remembered
by a hash of their id, at most :data:`MAX_REMEMBERED_REPORTERS` in all (past it, the sources seen longest ago are
forgotten, which again can only be lenient), and forgotten at the end of the day.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MAX_BUCKETS", "MAX_REMEMBERED_REPORTERS", "Rate", "RateLimiter"]

MAX_BUCKETS = 200_000
MAX_REMEMBERED_REPORTERS = 1_000_000


@dataclass(frozen=True)
class Rate:
    """``per_minute`` requests a minute on average, ``burst`` at once."""

    per_minute: float
    burst: int


class _Buckets:
    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.levels: dict[str, tuple[float, float]] = {}  # key -> (tokens, as of)

    def take(self, key: str, now: float) -> float | None:
        """Take a token; ``None`` if there was one, else the seconds until there will be."""
        tokens, since = self.levels.pop(key, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + (now - since) * self.rate.per_minute / 60.0)
        if len(self.levels) >= MAX_BUCKETS:
            del self.levels[next(iter(self.levels))]
        if tokens >= 1.0:
            self.levels[key] = (tokens - 1.0, now)
            return None
        self.levels[key] = (tokens, now)
        return (1.0 - tokens) * 60.0 / self.rate.per_minute


class RateLimiter:
    """The per-source and per-reporter limits of one server process."""

    def __init__(
        self,
        per_source: Rate,
        per_reporter: Rate,
        *,
        new_reporters_per_day: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], datetime.date] = lambda: datetime.datetime.now(datetime.timezone.utc).date(),
    ) -> None:
        self._sources = _Buckets(per_source)
        self._reporters = _Buckets(per_reporter)
        self._new_per_day = new_reporters_per_day
        self._known: dict[str, set[int]] = {}  # source key and app -> hashes of the reporter ids sent today
        self._remembered = 0
        self._clock = clock
        self._today = today
        self._lock = threading.Lock()
        self._day = today()
        self._salt = secrets.token_bytes(32)

    def _rotate(self) -> None:
        day = self._today()
        if day != self._day:
            self._day = day
            self._salt = secrets.token_bytes(32)
            self._sources.levels.clear()
            self._reporters.levels.clear()
            self._known.clear()
            self._remembered = 0

    def source_key(self, address: str) -> str:
        """The key an address is known by today: a salted hash, meaningless tomorrow."""
        with self._lock:
            self._rotate()
            return hmac.new(self._salt, address.encode(), hashlib.sha256).hexdigest()[:32]

    def check_source(self, address: str | None) -> int | None:
        """``None`` if a request from ``address`` may proceed, else the seconds to wait."""
        if address is None:
            return None
        key = self.source_key(address)
        with self._lock:
            wait = self._sources.take(key, self._clock())
        return None if wait is None else max(1, math.ceil(wait))

    def check_reporter(self, app: str, reporter: str) -> int | None:
        """``None`` if a report from ``reporter`` may proceed, else the seconds to wait."""
        with self._lock:
            self._rotate()
            wait = self._reporters.take(f"{app}/{reporter}", self._clock())
        return None if wait is None else max(1, math.ceil(wait))

    def check_new_reporter(self, source: str | None, app: str, reporter: str) -> int | None:
        """``None`` if the source keyed ``source`` may send a report of ``reporter``, else the seconds to wait.

        A reporter the source already sent today passes; a new one passes while the source has sent fewer than
        ``new_reporters_per_day`` of ``app`` today, and is then remembered.
        """
        if source is None or self._new_per_day is None:
            return None
        key, mark = f"{source}/{app}", hash(reporter)
        with self._lock:
            self._rotate()
            known = self._known.pop(key, set())
            self._known[key] = known  # the most recently seen last: forgotten last
            if mark in known:
                return None
            if len(known) >= self._new_per_day:
                return _seconds_to_midnight()
            while self._remembered >= MAX_REMEMBERED_REPORTERS and len(self._known) > 1:
                self._remembered -= len(self._known.pop(next(iter(self._known))))
            known.add(mark)
            self._remembered += 1
        return None


def _seconds_to_midnight() -> int:
    """Seconds until the next UTC day, when every source may send new reporters again."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return max(1, 86400 - (now.hour * 3600 + now.minute * 60 + now.second))
