"""Small per-application bookkeeping: the reporter secret and ``state.json``.

The secret is 32 random bytes created on first need (after consent), readable only by the user, used only as
the key of the reporter-id HMAC and never sent. ``state.json`` remembers the day of the first report,
whether anything was ever sent, when uploads were attempted (and why they wait, when the server refused one for
its own configuration), and how many reports were dropped and why.

Several processes write ``state.json`` (the application's flushes record drops, report building the first day,
uploads their outcome), so every change is a read-modify-write under one lock (:func:`update_state`): no
process overwrites what another recorded meanwhile.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from consentry._local.files import locked, move_aside, read_json, write_atomic, write_json
from consentry._local.paths import AppPaths

__all__ = ["UNKNOWN", "AppState", "load_secret", "load_state", "save_state", "update_state"]

SECRET_BYTES = 32
#: ``first_day`` when it cannot be known (damaged or lost bookkeeping): no report then claims to be the first.
UNKNOWN = "unknown"
#: The longest a change of ``state.json`` waits for another process's (each holds the lock for a millisecond).
LOCK_TIMEOUT = 2.0


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
    import secrets  # noqa: PLC0415 - once per install: not worth loading OpenSSL at every start

    secret = secrets.token_bytes(SECRET_BYTES)
    write_atomic(paths.secret, secret.hex().encode("ascii") + b"\n")
    return secret


@dataclass(frozen=True)
class AppState:
    """Bookkeeping kept in ``state.json``.

    ``first_day`` is the day of the install's first report: that day's reports, and only they, carry
    ``first_report``, even when a late flush makes the day be reported again. It is :data:`UNKNOWN` when the
    bookkeeping was damaged or lost after reports had been made: then no report claims to be the first, so the
    server never counts the install as new twice. ``idle_day`` is the last day an upload run found nothing it
    could send, so that no other run is started that day for nothing.
    """

    first_day: datetime.date | str | None = None
    sent_ever: bool = False
    last_attempt: datetime.datetime | None = None
    last_success: datetime.datetime | None = None
    retry_after: datetime.datetime | None = None
    failures: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    idle_day: datetime.date | None = None
    #: Why uploads wait, when the server refused the last one for its configuration (``unknown_app``...).
    waiting: str | None = None

    def with_drop(self, reason: str, n: int = 1) -> AppState:
        """A copy with ``n`` more drops for ``reason``."""
        drops = dict(self.drops)
        drops[reason] = drops.get(reason, 0) + n
        return replace(self, drops=drops)

    def with_drops(self, drops: dict[str, int]) -> AppState:
        """A copy with the counts of ``drops`` added."""
        state = self
        for reason, n in drops.items():
            state = state.with_drop(reason, n)
        return state


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
    """The stored bookkeeping; defaults for anything absent or damaged (moved aside, unless ``repair`` is off).

    When the file is damaged or absent although reports were made (the reporter secret, created with the first
    report, exists), the day of the first report is :data:`UNKNOWN`, never "none yet".
    """
    document = read_json(paths.state, repair=repair)
    if document is None:
        return AppState(first_day=UNKNOWN if paths.secret.exists() else None)
    drops = document.get("drops")
    failures = document.get("failures")
    first_day = document.get("first_day")
    return AppState(
        first_day=UNKNOWN if first_day == UNKNOWN else _day(first_day),
        sent_ever=document.get("sent_ever") is True,
        last_attempt=_time(document.get("last_attempt")),
        last_success=_time(document.get("last_success")),
        retry_after=_time(document.get("retry_after")),
        failures=failures if type(failures) is int and 0 <= failures < 1000 else 0,  # noqa: PLR2004
        drops={str(k): v for k, v in drops.items() if type(v) is int} if isinstance(drops, dict) else {},
        idle_day=_day(document.get("idle_day")),
        waiting=waiting[:500] if isinstance(waiting := document.get("waiting"), str) else None,
    )


def save_state(paths: AppPaths, state: AppState) -> None:
    """Store the bookkeeping atomically (callers that read it first use :func:`update_state`)."""

    def iso(value: datetime.date | datetime.datetime | str | None) -> str | None:
        return value.isoformat() if isinstance(value, (datetime.date, datetime.datetime)) else value

    write_json(
        paths.state,
        {
            "first_day": iso(state.first_day),
            "sent_ever": state.sent_ever,
            "last_attempt": iso(state.last_attempt),
            "last_success": iso(state.last_success),
            "retry_after": iso(state.retry_after),
            "failures": state.failures,
            "drops": state.drops,
            "idle_day": iso(state.idle_day),
            "waiting": state.waiting,
        },
    )


def update_state(paths: AppPaths, change: Callable[[AppState], AppState]) -> AppState:
    """Apply ``change`` to the stored bookkeeping under the state lock, store and return the result.

    Raises ``OSError`` (among them :class:`consentry._local.files.LockTimeoutError`) when it cannot be done.
    """
    with locked(paths.state_lock, LOCK_TIMEOUT):
        state = change(load_state(paths))
        save_state(paths, state)
    return state
