"""Small per-application bookkeeping: the reporter secret and ``state.json``.

The secret is 32 random bytes created on first need (after consent), readable only by the user, used only as
the key of the reporter-id HMAC and never sent. ``state.json`` remembers the day of the first report,
whether anything was ever sent, when uploads were attempted, and how many reports were dropped and why.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass, field, replace

from consentry._files import move_aside, read_json, write_atomic, write_json
from consentry.paths import AppPaths

__all__ = ["AppState", "load_secret", "load_state", "save_state"]

SECRET_BYTES = 32


def load_secret(paths: AppPaths) -> bytes:
    """The application's reporter secret, created if missing or damaged."""
    try:
        text = paths.secret.read_text("ascii").strip()
        secret = bytes.fromhex(text)
        if len(secret) == SECRET_BYTES:
            return secret
        move_aside(paths.secret)
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        move_aside(paths.secret)
    secret = secrets.token_bytes(SECRET_BYTES)
    write_atomic(paths.secret, secret.hex().encode("ascii") + b"\n")
    return secret


@dataclass(frozen=True)
class AppState:
    """Bookkeeping kept in ``state.json``.

    ``first_day`` is the day of the install's first report: that day's reports, and only they, carry
    ``first_report``, even when a late flush makes the day be reported again.
    """

    first_day: datetime.date | None = None
    sent_ever: bool = False
    last_attempt: datetime.datetime | None = None
    last_success: datetime.datetime | None = None
    retry_after: datetime.datetime | None = None
    failures: int = 0
    drops: dict[str, int] = field(default_factory=dict)

    def with_drop(self, reason: str, n: int = 1) -> AppState:
        """A copy with ``n`` more drops for ``reason``."""
        drops = dict(self.drops)
        drops[reason] = drops.get(reason, 0) + n
        return replace(self, drops=drops)


def _time(value: object) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _day(value: object) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def load_state(paths: AppPaths, *, repair: bool = True) -> AppState:
    """The stored bookkeeping; defaults for anything absent or damaged (moved aside, unless ``repair`` is off)."""
    document = read_json(paths.state, repair=repair) or {}
    drops = document.get("drops")
    failures = document.get("failures")
    return AppState(
        first_day=_day(document.get("first_day")),
        sent_ever=document.get("sent_ever") is True,
        last_attempt=_time(document.get("last_attempt")),
        last_success=_time(document.get("last_success")),
        retry_after=_time(document.get("retry_after")),
        failures=failures if type(failures) is int and 0 <= failures < 1000 else 0,  # noqa: PLR2004
        drops={str(k): v for k, v in drops.items() if type(v) is int} if isinstance(drops, dict) else {},
    )


def save_state(paths: AppPaths, state: AppState) -> None:
    """Store the bookkeeping atomically."""

    def iso(value: datetime.datetime | None) -> str | None:
        return value.isoformat() if value else None

    write_json(
        paths.state,
        {
            "first_day": state.first_day.isoformat() if state.first_day else None,
            "sent_ever": state.sent_ever,
            "last_attempt": iso(state.last_attempt),
            "last_success": iso(state.last_success),
            "retry_after": iso(state.retry_after),
            "failures": state.failures,
            "drops": state.drops,
        },
    )
