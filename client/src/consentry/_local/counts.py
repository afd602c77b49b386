"""The per-application local store: counts per day, shared safely by every process of the application.

SQLite (from the standard library) gives what the store needs: counts from several processes add up exactly (each
merge is one transaction of ``n = n + delta`` upserts), a crash or ``kill -9`` in the middle of a merge rolls it back
and corrupts nothing, and a damaged file is detected (it is moved aside and a fresh store started).

Counts reach the store from the journal (:mod:`consentry._record.journal`): flushes write files, :meth:`Store.merge`
adds
them. Each day row carries

- a ``version``, raised by every merge that touches the day, and the ``reported_version`` its reports were built
  from: a merge that lands while reports are being built leaves the day unreported, so it is reported again, whole
  (never "built from 5, marked as 8");
- the ``epoch`` of the consent its counts were recorded under, or ``mixed`` once two epochs met in one day: only a
  day recorded wholly under the current answer may be sent without asking (see :mod:`consentry._consent.answers`).

Counters are keyed by ``(day, kind, key)``; the kinds are listed in :data:`consentry._record.journal.KINDS`. Structured
keys (commands, data categories, plugin events) are canonical JSON arrays.
"""

from __future__ import annotations

import contextlib
import datetime
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from consentry._local.bookkeeping import update_state
from consentry._local.files import make_private_dir, move_aside
from consentry._local.paths import AppPaths
from consentry._record.journal import KINDS, Batch, CounterKey, DamagedJournalError, DayMeta, Journal
from consentry.wire.schema import MAX_COUNT

__all__ = [
    "KINDS",
    "MIXED",
    "CounterKey",
    "DayMeta",
    "DayRecord",
    "MergeResult",
    "Store",
    "StoreError",
    "merge_journal",
]

#: The epoch of a day whose counts were recorded under more than one answer (or before epochs were kept).
MIXED = "mixed"
#: The store's schema, in ``PRAGMA user_version``: 1 had a ``reported`` flag per day; 2 versions and epochs.
SCHEMA_VERSION = 2
_TABLES = (
    (
        "CREATE TABLE IF NOT EXISTS days (day TEXT PRIMARY KEY, app_version TEXT NOT NULL, meta TEXT NOT NULL, "
        "version INTEGER NOT NULL DEFAULT 1, reported_version INTEGER NOT NULL DEFAULT 0, epoch TEXT)"
    ),
    (
        "CREATE TABLE IF NOT EXISTS counters (day TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, "
        "n INTEGER NOT NULL, PRIMARY KEY (day, kind, key)) WITHOUT ROWID"
    ),
    "CREATE TABLE IF NOT EXISTS merged (name TEXT PRIMARY KEY, at TEXT NOT NULL) WITHOUT ROWID",
)
#: How long the names of merged journal files are remembered (a file whose removal failed is recognised).
_REMEMBER = datetime.timedelta(days=7)
#: Journal files merged in one transaction at most (the rest go in the next merge).
MERGE_LIMIT = 500


class StoreError(Exception):
    """The store cannot be used in this process (read-only disk, disk full, locked for too long)."""


@dataclass(frozen=True)
class DayRecord:
    """Everything stored for one day, as of ``version``; ``epoch`` is the consent it was recorded under."""

    day: datetime.date
    meta: DayMeta
    counters: Mapping[tuple[str, str], int]
    version: int = 0
    epoch: str | None = None


@dataclass(frozen=True)
class MergeResult:
    """What a merge did: journal files added, and damaged files set aside."""

    merged: int = 0
    damaged: int = 0


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION` (inside the caller's write transaction)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(days)")}
    if columns and "version" not in columns:  # schema 1: a reported flag per day
        db.execute("ALTER TABLE days ADD COLUMN version INTEGER NOT NULL DEFAULT 1")
        db.execute("ALTER TABLE days ADD COLUMN reported_version INTEGER NOT NULL DEFAULT 0")
        db.execute("ALTER TABLE days ADD COLUMN epoch TEXT")  # unknown: such days are never sent without asking
        db.execute("UPDATE days SET reported_version = 1 WHERE reported = 1")
    for statement in _TABLES:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


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
            if create:
                make_private_dir(self.path.parent)
            connection = sqlite3.connect(self.path, timeout=wait, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open {self.path}: {error}") from error
        try:
            try:
                self._prepare(connection)
            except sqlite3.DatabaseError as error:
                if isinstance(error, sqlite3.OperationalError):
                    raise
                # "file is not a database" and friends: keep the damaged file aside and start afresh.
                connection.close()
                move_aside(self.path)
                connection = sqlite3.connect(self.path, timeout=wait, isolation_level=None)
                self._prepare(connection)
            yield connection
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: {error}") from error
        finally:
            connection.close()

    @staticmethod
    def _prepare(db: sqlite3.Connection) -> None:
        """Create or upgrade the schema, unless it is current (then nothing is written: a read-only home works)."""
        if db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                _migrate(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # ---- writing --------------------------------------------------------------------------------------------------
    @staticmethod
    def _apply(db: sqlite3.Connection, batch: Batch) -> None:
        """Add ``batch`` inside the caller's transaction: every day it touches gets a new version."""
        for day in batch.days:
            meta = batch.metas.get(day)
            app_version, document = (meta.app_version, meta.to_json()) if meta is not None else ("unknown", "{}")
            db.execute(
                "INSERT INTO days (day, app_version, meta, version, reported_version, epoch) VALUES (?, ?, ?, 1, 0, ?) "
                "ON CONFLICT (day) DO UPDATE SET version = days.version + 1, "
                "app_version = CASE WHEN ? THEN excluded.app_version ELSE days.app_version END, "
                "meta = CASE WHEN ? THEN excluded.meta ELSE days.meta END, "
                "epoch = CASE WHEN days.epoch IS excluded.epoch THEN days.epoch ELSE ? END",
                (day.isoformat(), app_version, document, batch.epoch, meta is not None, meta is not None, MIXED),
            )
        db.executemany(
            "INSERT INTO counters (day, kind, key, n) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (day, kind, key) DO UPDATE SET n = min(n + excluded.n, ?)",
            [
                (day.isoformat(), kind, key, min(n, MAX_COUNT), MAX_COUNT)
                for (day, kind, key), n in batch.counters.items()
            ],
        )

    def add(self, batch: Batch, *, timeout: float | None = None) -> None:
        """Add ``batch`` in one transaction (flushes go through the journal; this is the direct way, for tools).

        ``timeout`` overrides how long to wait for another process that holds the store.
        """
        if not batch:
            return
        with self._connect(timeout=timeout) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                self._apply(db, batch)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def merge(self, journal: Journal, *, timeout: float | None = None) -> MergeResult:
        """Add the journal's files to the store in one transaction, then remove them; damaged files are set aside.

        Each file's name is recorded in the same transaction as its counts, so a file that outlives its merge (a
        crash before its removal) is recognised and removed, never added again.
        """
        files = journal.files()[:MERGE_LIMIT]
        if not files:
            return MergeResult()
        done: list[Path] = []
        damaged: list[Path] = []
        merged = 0
        now = datetime.datetime.now(datetime.timezone.utc)
        with self._connect(timeout=timeout) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for path in files:
                    if db.execute("SELECT 1 FROM merged WHERE name = ?", (path.name,)).fetchone() is not None:
                        done.append(path)
                        continue
                    try:
                        batch = journal.read(path)
                    except FileNotFoundError:
                        continue  # merged and removed by another process since the listing
                    except (OSError, DamagedJournalError):
                        damaged.append(path)
                        continue
                    self._apply(db, batch)
                    db.execute("INSERT INTO merged (name, at) VALUES (?, ?)", (path.name, now.isoformat()))
                    done.append(path)
                    merged += 1
                db.execute("DELETE FROM merged WHERE at < ?", ((now - _REMEMBER).isoformat(),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        for path in done:
            journal.discard(path)
        for path in damaged:
            journal.set_aside(path)
        return MergeResult(merged, len(damaged))

    def mark_reported(self, records: Iterable[DayRecord]) -> None:
        """Record that reports were built from ``records``; a day merged into since stays unreported."""
        with self._connect() as db:
            db.executemany(
                "UPDATE days SET reported_version = ? WHERE day = ? AND reported_version < ?",
                [(record.version, record.day.isoformat(), record.version) for record in records],
            )

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

    # ---- reading --------------------------------------------------------------------------------------------------
    def unreported_days(self, before: datetime.date) -> list[datetime.date]:
        """Days earlier than ``before`` with counts not yet turned into reports."""
        try:
            with self._connect(create=False) as db:
                rows = db.execute(
                    "SELECT day FROM days WHERE version > reported_version AND day < ? ORDER BY day",
                    (before.isoformat(),),
                ).fetchall()
        except FileNotFoundError:
            return []
        return [datetime.date.fromisoformat(day) for (day,) in rows]

    def read_day(self, day: datetime.date) -> DayRecord | None:
        """Everything stored for ``day`` (read in one transaction, so the version matches the counts), or ``None``."""
        try:
            with self._connect(create=False) as db:
                db.execute("BEGIN")
                try:
                    row = db.execute(
                        "SELECT app_version, meta, version, epoch FROM days WHERE day = ?", (day.isoformat(),)
                    ).fetchone()
                    rows = db.execute("SELECT kind, key, n FROM counters WHERE day = ?", (day.isoformat(),)).fetchall()
                finally:
                    db.execute("COMMIT")
        except FileNotFoundError:
            return None
        if row is None:
            return None
        app_version, meta, version, epoch = row
        counters = {(kind, key): n for kind, key, n in rows}
        return DayRecord(day, DayMeta.from_row(app_version, meta), counters, version, epoch)


def merge_journal(paths: AppPaths, *, timeout: float | None = None) -> int:
    """Merge an application's journal into its store; return how many files were added.

    Damaged journal files are set aside and counted as dropped. Raises :class:`StoreError` (the store cannot be
    used now: the files stay for a later merge).
    """
    store, journal = Store(paths.store), Journal(paths.journal)
    merged = damaged = 0
    while True:  # a transaction at most MERGE_LIMIT files long, until none is left
        result = store.merge(journal, timeout=timeout)
        merged, damaged = merged + result.merged, damaged + result.damaged
        if result.merged + result.damaged < MERGE_LIMIT:
            break
    if damaged:
        with contextlib.suppress(OSError):
            update_state(paths, lambda state: state.with_drop("damaged journal file", damaged))
    return merged
