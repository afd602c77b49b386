"""Rate limits per source and per reporter: token buckets in memory, keyed by salted hashes.

A source's address is never a key: it is hashed with HMAC-SHA256 under a random salt that lives only in memory
and is replaced every day (when the buckets are forgotten too). Reporter ids are public to the server anyway and
are keyed as they are. A bucket holds ``burst`` tokens and refills at ``per_minute`` a minute; a request that
finds it empty is told, in seconds, when to come back. The number of buckets is bounded: past it, the oldest
are forgotten, which can only be lenient.
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

__all__ = ["Rate", "RateLimiter"]

MAX_BUCKETS = 200_000


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
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], datetime.date] = lambda: datetime.datetime.now(datetime.timezone.utc).date(),
    ) -> None:
        self._sources = _Buckets(per_source)
        self._reporters = _Buckets(per_reporter)
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
