"""The per-application local store: counts per day, shared safely by every process of the application.

SQLite (from the standard library) gives what the store needs: several processes adding to the same
counters get exact totals (each flush is one transaction of ``n = n + delta`` upserts), a crash or ``kill -9``
in the middle of a flush rolls that flush back and corrupts nothing, and a damaged file is detected. A store
that cannot be opened as a database is moved aside and a fresh one started.

Counters are keyed by ``(day, kind, key)``; the kinds are listed in :data:`KINDS`. Structured keys (commands,
data categories, plugin events) are canonical JSON arrays.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from consentry._files import make_private_dir, move_aside
from consentry.wire.schema import MAX_COUNT

__all__ = ["KINDS", "CounterKey", "DayMeta", "DayRecord", "Store", "StoreError"]

#: event: an event name; plugin: [plugin, event]; exception: a class name; command: [name, params, duration,
#: exit code, exception]; data: [kind, class, dtype, ndim, size]; runs and active_minutes: "".
KINDS = ("event", "plugin", "exception", "command", "data", "runs", "active_minutes")
CounterKey = tuple[datetime.date, str, str]
SCHEMA = """
CREATE TABLE IF NOT EXISTS days (
    day TEXT PRIMARY KEY,
    app_version TEXT NOT NULL,
    meta TEXT NOT NULL,
    reported INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS counters (
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (day, kind, key)
) WITHOUT ROWID;
"""


class StoreError(Exception):
    """The store cannot be used in this process (read-only disk, disk full, locked for too long)."""


@dataclass(frozen=True)
class DayMeta:
    """What was true of the install on a day: the application version and the binned system snapshot."""

    app_version: str
    system: Mapping[str, str] = field(default_factory=dict)
    dependencies: Mapping[str, str] = field(default_factory=dict)
    plugins: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """Canonical JSON of everything but the version."""
        document = {"system": self.system, "dependencies": self.dependencies, "plugins": self.plugins}
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_row(cls, app_version: str, meta: str) -> DayMeta:
        """Inverse of :meth:`to_json`; tolerant of damage (a damaged snapshot reads as empty)."""
        try:
            document = json.loads(meta)
            return cls(
                app_version,
                _str_map(document.get("system")),
                _str_map(document.get("dependencies")),
                _str_map(document.get("plugins")),
            )
        except (ValueError, AttributeError):
            return cls(app_version)


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


@dataclass(frozen=True)
class DayRecord:
    """Everything stored for one day."""

    day: datetime.date
    meta: DayMeta
    counters: Mapping[tuple[str, str], int]


class Store:
    """The SQLite file of one application. Connections are opened per operation and closed after it."""

    def __init__(self, path: Path, *, timeout: float = 2.0) -> None:
        self.path = path
        self.timeout = timeout

    @contextlib.contextmanager
    def _connect(self, *, create: bool = True, timeout: float | None = None) -> Iterator[sqlite3.Connection]:
        if not create and not self.path.exists():
            raise FileNotFoundError(self.path)
        wait = self.timeout if timeout is None else timeout
        try:
            make_private_dir(self.path.parent)
            connection = sqlite3.connect(self.path, timeout=wait, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open {self.path}: {error}") from error
        try:
            try:
                connection.executescript(SCHEMA)
            except sqlite3.DatabaseError as error:
                if isinstance(error, sqlite3.OperationalError):
                    raise
                # "file is not a database" and friends: keep the damaged file aside and start afresh.
                connection.close()
                move_aside(self.path)
                connection = sqlite3.connect(self.path, timeout=wait, isolation_level=None)
                connection.executescript(SCHEMA)
            yield connection
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: {error}") from error
        finally:
            connection.close()

    def add(
        self,
        metas: Mapping[datetime.date, DayMeta],
        counters: Mapping[CounterKey, int],
        *,
        timeout: float | None = None,
    ) -> None:
        """Add ``counters`` and record ``metas`` in one transaction; days touched are marked as not reported.

        ``timeout`` overrides how long to wait for another process that holds the store.
        """
        if not metas and not counters:
            return
        days = set(metas) | {day for day, _, _ in counters}
        with self._connect(timeout=timeout) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for day in sorted(days):
                    meta = metas.get(day)
                    if meta is not None:
                        db.execute(
                            "INSERT INTO days (day, app_version, meta, reported) VALUES (?, ?, ?, 0) "
                            "ON CONFLICT (day) DO UPDATE SET app_version = excluded.app_version, "
                            "meta = excluded.meta, reported = 0",
                            (day.isoformat(), meta.app_version, meta.to_json()),
                        )
                    else:
                        db.execute(
                            "INSERT INTO days (day, app_version, meta, reported) VALUES (?, 'unknown', '{}', 0) "
                            "ON CONFLICT (day) DO UPDATE SET reported = 0",
                            (day.isoformat(),),
                        )
                db.executemany(
                    "INSERT INTO counters (day, kind, key, n) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (day, kind, key) DO UPDATE SET n = min(n + excluded.n, ?)",
                    [
                        (day.isoformat(), kind, key, min(n, MAX_COUNT), MAX_COUNT)
                        for (day, kind, key), n in counters.items()
                    ],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def unreported_days(self, before: datetime.date) -> list[datetime.date]:
        """Days earlier than ``before`` with data not yet turned into reports."""
        try:
            with self._connect(create=False) as db:
                rows = db.execute(
                    "SELECT day FROM days WHERE reported = 0 AND day < ? ORDER BY day", (before.isoformat(),)
                ).fetchall()
        except FileNotFoundError:
            return []
        return [datetime.date.fromisoformat(day) for (day,) in rows]

    def read_day(self, day: datetime.date) -> DayRecord | None:
        """Everything stored for ``day``, or ``None``."""
        try:
            with self._connect(create=False) as db:
                meta_row = db.execute("SELECT app_version, meta FROM days WHERE day = ?", (day.isoformat(),)).fetchone()
                rows = db.execute("SELECT kind, key, n FROM counters WHERE day = ?", (day.isoformat(),)).fetchall()
        except FileNotFoundError:
            return None
        if meta_row is None:
            return None
        return DayRecord(day, DayMeta.from_row(*meta_row), {(kind, key): n for kind, key, n in rows})

    def mark_reported(self, days: Iterable[datetime.date]) -> None:
        """Record that reports were written for ``days``."""
        with self._connect() as db:
            db.executemany("UPDATE days SET reported = 1 WHERE day = ?", [(day.isoformat(),) for day in days])

    def forget_before(self, day: datetime.date) -> None:
        """Delete everything about days before ``day`` (counts are kept only while they may be re-reported)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM counters WHERE day < ?", (day.isoformat(),))
            db.execute("DELETE FROM days WHERE day < ?", (day.isoformat(),))
            db.execute("COMMIT")

    def delete(self) -> None:
        """Remove the store file and its journal."""
        for suffix in ("", "-journal", "-wal", "-shm", ".corrupt"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()
