"""The SQLite backend: the embedded default.

WAL journal with ``synchronous=FULL``: a committed batch survives a crash of the process and of the machine.
One connection does all the writing, under a lock; readers that may take long (exports) get their own.
Strings are interned in a ``names`` table so a counter row is four small integers.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from consentry.manifest import Manifest, PluginManifest
from consentry_server.ingest.catalog import Catalog
from consentry_server.storage.base import (
    CONTRIBUTION_CAP,
    PERIODS,
    AggregateTables,
    Arrival,
    InstallRow,
    LedgerEntry,
    Progress,
    RawRow,
    RequestLog,
    RetentionResult,
    StorageUnavailable,
    StoreOutcome,
    ValueRow,
    counter_aggregates,
    epoch_day,
    export_record,
    from_epoch_day,
    period_start,
    unknown_new_installs,
)
from consentry_server.storage.migrations import pending
from consentry_server.storage.migrations.sqlite import SQLITE
from consentry_server.storage.rows import COUNTER_KINDS, counter_rows, fact_rows, first_report_on, report_digest

__all__ = ["SQLiteStorage"]

_LEDGER_FIELDS = tuple(field.name for field in dataclasses.fields(LedgerEntry))
_LEDGER_COLUMNS = ", ".join(_LEDGER_FIELDS)

_AGGREGATES = ("agg_installs", "agg_counters", "agg_values")
# The week (its Monday, as an epoch day) of a stored day: 1970-01-01 was a Thursday.
_WEEK = "(r.day - ((r.day + 3) % 7))"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _period_end(period: str, start: datetime.date) -> datetime.date:
    if period == "day":
        return start + datetime.timedelta(days=1)
    if period == "week":
        return start + datetime.timedelta(days=7)
    return (start.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)


def _unusable(path: Path, error: sqlite3.Error) -> StorageUnavailable:
    """What is wrong with the database at ``path``, and what to do, from the error SQLite gave opening it."""
    code = getattr(error, "sqlite_errorname", None) or ""  # absent when Python, not SQLite, raised it
    if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return StorageUnavailable(
            f"{path} is not a SQLite database, or is damaged ({error}): restore it from a backup "
            "(consentry-server backup makes one), or move it aside to start with an empty database"
        )
    if code.startswith("SQLITE_FULL"):
        return StorageUnavailable(f"the disk holding {path} is full ({error}): free some space")
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StorageUnavailable(f"another process holds the database {path} locked ({error}): let it finish")
    if path.is_dir():
        return StorageUnavailable(f"{path} is a folder, not a database file: move it aside, or choose another --db")
    folder = path.parent
    unwritable = _unwritable(folder)
    if unwritable is not None:
        return StorageUnavailable(
            f"cannot write in {folder} ({unwritable}), the folder of the database {path} and of its -wal and -shm "
            "files: make it writable for the user running consentry-server, or choose another --db"
        )
    return StorageUnavailable(
        f"cannot open the database {path} ({error}): make it and its -wal and -shm files readable and writable "
        "for the user running consentry-server"
    )


def _unwritable(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder`` (as SQLite creates its -wal and -shm files), or ``None``."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


class SQLiteStorage:
    """Raw reports, manifests, request logs and aggregates in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        """Open (and create) the database; raise :class:`StorageUnavailable` saying why it cannot be used."""
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageUnavailable(
                f"cannot create the folder {self.path.parent} of the database ({error.strerror}: {error.filename}): "
                "make each part of that path a folder the user running consentry-server can write in, or choose "
                "another --db"
            ) from None
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        except sqlite3.Error as error:
            raise _unusable(self.path, error) from None
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as error:
            self._db.close()
            raise _unusable(self.path, error) from None
        self._names: dict[str, int] = {}
        self._apps: dict[str, int] = {}

    # ---- plumbing -----------------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                self._names.clear()  # ids handed out inside the rolled-back transaction are gone
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own, for reads that take a while without holding up the writer."""
        db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            yield db
        finally:
            db.close()

    def _name(self, text: str) -> int:
        cached = self._names.get(text)
        if cached is not None:
            return cached
        self._db.execute("INSERT OR IGNORE INTO names (name) VALUES (?)", (text,))
        (number,) = self._db.execute("SELECT id FROM names WHERE name = ?", (text,)).fetchone()
        self._names[text] = number
        return int(number)

    def migrate(self) -> list[str]:
        """Apply pending migrations; raise :class:`StorageUnavailable` if the file cannot be read or written."""
        try:
            return self._migrate()
        except sqlite3.Error as error:
            raise _unusable(self.path, error) from None

    def _migrate(self) -> list[str]:
        with self._lock:
            self._db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            applied = {name for (name,) in self._db.execute("SELECT name FROM migrations")}
            done = []
            for migration in pending(SQLITE, applied):
                with self._transaction() as db:
                    for statement in migration.sql.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (migration.name, _now()))
                done.append(migration.name)
            return done

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    # ---- manifests ----------------------------------------------------------------------------------------
    def register_manifest(self, manifest: Manifest | PluginManifest) -> bool:
        """Keep this version of ``manifest``; ``False`` if it was registered before."""
        app = manifest.name if isinstance(manifest, Manifest) else manifest.host
        plugin = "" if isinstance(manifest, Manifest) else manifest.name
        now = _now()
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO apps (name, created_at) VALUES (?, ?)", (app, now))
            (app_id,) = db.execute("SELECT id FROM apps WHERE name = ?", (app,)).fetchone()
            cursor = db.execute(
                "INSERT OR IGNORE INTO manifests (app_id, plugin, consent_version, document, registered_at) "
                "VALUES (?, ?, ?, ?, ?)",
                # Not key-sorted: the order of the levels is meaningful.
                (app_id, plugin, manifest.consent_version, json.dumps(manifest.to_document()), now),
            )
            return cursor.rowcount == 1

    def apps(self) -> list[str]:
        """Registered applications that have an application manifest."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT a.name FROM apps a JOIN manifests m ON m.app_id = a.id AND m.plugin = '' ORDER BY 1"
            ).fetchall()
        return [name for (name,) in rows]

    def catalog(self, app: str) -> Catalog | None:
        """Every registered manifest of ``app``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT m.plugin, m.document FROM manifests m JOIN apps a ON a.id = m.app_id "
                "WHERE a.name = ? ORDER BY m.id",
                (app,),
            ).fetchall()
        return Catalog.from_documents(app, rows)

    # ---- reports ------------------------------------------------------------------------------------------
    def store_batch(self, arrivals: Sequence[Arrival]) -> list[StoreOutcome | Exception]:
        """Store ``arrivals`` in one transaction; return once it is durably committed.

        Each arrival is stored whole or not at all. The batch is first written without savepoints (they cost two
        statements an arrival); if one arrival fails, that transaction is rolled back and the batch written again
        with a savepoint around each, so that the failure takes only its own arrival with it.
        """
        try:
            with self._transaction() as db:
                days: set[int] = set()
                outcomes: list[StoreOutcome | Exception] = [self._store(db, arrival, days) for arrival in arrivals]
                self._mark_dirty(db, days)
        except sqlite3.OperationalError:
            raise  # the database itself (locked, full, unwritable): writing again one by one would fail too
        except Exception:  # noqa: BLE001 - an arrival that cannot be stored, told apart below
            return self._store_each(arrivals)
        return outcomes

    def _store_each(self, arrivals: Sequence[Arrival]) -> list[StoreOutcome | Exception]:
        outcomes: list[StoreOutcome | Exception] = []
        days: set[int] = set()
        with self._transaction() as db:
            for arrival in arrivals:
                db.execute("SAVEPOINT arrival")
                mine: set[int] = set()
                try:
                    outcome: StoreOutcome | Exception = self._store(db, arrival, mine)
                    db.execute("RELEASE arrival")
                    days |= mine
                except Exception as error:  # noqa: BLE001 - one bad arrival must not take the batch with it
                    db.execute("ROLLBACK TO arrival")
                    db.execute("RELEASE arrival")
                    self._names.clear()  # names created since the savepoint are gone
                    outcome = error
                outcomes.append(outcome)
            self._mark_dirty(db, days)
        return outcomes

    @staticmethod
    def _mark_dirty(db: sqlite3.Connection, days: set[int]) -> None:
        db.executemany("INSERT OR REPLACE INTO dirty_days (day) VALUES (?)", [(day,) for day in sorted(days)])

    def _app_id(self, db: sqlite3.Connection, app: str) -> int:
        cached = self._apps.get(app)
        if cached is None:
            row = db.execute("SELECT id FROM apps WHERE name = ?", (app,)).fetchone()
            if row is None:
                raise LookupError(f"application {app!r} is not registered")
            cached = self._apps[app] = int(row[0])  # application rows are never deleted
        return cached

    def _store(self, db: sqlite3.Connection, arrival: Arrival, changed: set[int]) -> StoreOutcome:
        """Store one arrival; add the days whose rows changed to ``changed``."""
        report = arrival.report
        app_id = self._app_id(db, report.app)
        digest = report_digest(report)
        level_id, version_id = self._name(report.level), self._name(report.app_version)
        reporter = bytes.fromhex(report.reporter)
        known = arrival.first_report_known
        facts = [
            (self._name(key), self._name(value)) for key, value in fact_rows(report, first_report_known=known).items()
        ]
        received = int(arrival.received.timestamp())
        statuses = []
        for day in report.days:
            number = epoch_day(day)
            values = (digest, received, version_id, int(first_report_on(report, day)), arrival.country)
            cursor = db.execute(
                "INSERT OR IGNORE INTO reports (app_id, level_id, reporter, day, digest, received, app_version_id, "
                "first_report, country) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (app_id, level_id, reporter, number, *values),
            )
            if cursor.rowcount == 1:
                report_id = cursor.lastrowid
                statuses.append("stored")
            else:
                report_id, stored_digest = db.execute(
                    "SELECT id, digest FROM reports WHERE app_id = ? AND level_id = ? AND reporter = ? AND day = ?",
                    (app_id, level_id, reporter, number),
                ).fetchone()
                if stored_digest == digest:
                    statuses.append("duplicate")
                    continue
                db.execute("DELETE FROM facts WHERE report_id = ?", (report_id,))
                db.execute("DELETE FROM counters WHERE report_id = ?", (report_id,))
                db.execute(
                    "UPDATE reports SET digest = ?, received = ?, app_version_id = ?, first_report = ?, country = ? "
                    "WHERE id = ?",
                    (*values, report_id),
                )
                statuses.append("replaced")
            db.executemany("INSERT INTO facts VALUES (?, ?, ?)", [(report_id, k, v) for k, v in facts])
            db.executemany(
                "INSERT INTO counters VALUES (?, ?, ?, ?)",
                [
                    (report_id, COUNTER_KINDS[kind], self._name(name), n)
                    for (kind, name), n in counter_rows(report, day).items()
                ],
            )
            changed.add(number)
        status = statuses[0] if len(set(statuses)) == 1 else "replaced"
        return StoreOutcome(status, len(report.days))  # type: ignore[arg-type]

    def _delete_reports(self, db: sqlite3.Connection, condition: str, params: Sequence[object]) -> int:
        selection = f"SELECT id FROM reports WHERE {condition}"  # noqa: S608 - conditions are ours, values bound
        db.execute(f"DELETE FROM facts WHERE report_id IN ({selection})", params)  # noqa: S608
        db.execute(f"DELETE FROM counters WHERE report_id IN ({selection})", params)  # noqa: S608
        return db.execute(f"DELETE FROM reports WHERE {condition}", params).rowcount  # noqa: S608

    def delete_reporters(self, app: str, reporters: Sequence[str]) -> int:
        """Delete the reports of ``reporters``; the days they touched are aggregated again without them."""
        ids = [bytes.fromhex(reporter) for reporter in reporters]
        if not ids:
            return 0
        marks = ", ".join("?" * len(ids))  # placeholders only: the values are bound
        condition = f"app_id = (SELECT id FROM apps WHERE name = ?) AND reporter IN ({marks})"  # noqa: S608
        with self._transaction() as db:
            days = db.execute(f"SELECT DISTINCT day FROM reports WHERE {condition}", (app, *ids)).fetchall()  # noqa: S608
            deleted = self._delete_reports(db, condition, (app, *ids))
            db.executemany("INSERT OR REPLACE INTO dirty_days (day) VALUES (?)", days)
        return deleted

    def report_count(self) -> int:
        """Stored (report, day) rows."""
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM reports").fetchone()
        return int(count)

    # ---- logs, retention, export, statistics ---------------------------------------------------------------
    def log_requests(self, entries: Sequence[RequestLog]) -> None:
        """Append to the request log."""
        if not entries:
            return
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO request_log (time, route, status, code, size, app, dropped) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(int(e.time.timestamp()), e.route, e.status, e.code, e.size, e.app, e.dropped) for e in entries],
            )

    def apply_retention(self, *, raw_before: datetime.date, logs_before: datetime.datetime) -> RetentionResult:
        """Delete raw rows of days before ``raw_before`` and log lines before ``logs_before``; aggregates stay."""
        with self._transaction() as db:
            previous = self._horizon(db)
            horizon = epoch_day(raw_before) if previous is None else max(epoch_day(raw_before), previous)
            raw = self._delete_reports(db, "day < ?", (horizon,))
            logs = db.execute("DELETE FROM request_log WHERE time < ?", (int(logs_before.timestamp()),)).rowcount
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('raw_horizon', ?)", (str(horizon),))
        return RetentionResult(raw_rows=raw, log_rows=logs)

    @staticmethod
    def _horizon(db: sqlite3.Connection) -> int | None:
        """The first day (epoch day) whose raw reports are still kept, once retention has run."""
        row = db.execute("SELECT value FROM meta WHERE key = 'raw_horizon'").fetchone()
        return int(row[0]) if row else None

    def export(
        self, app: str, *, since: datetime.date | None = None, until: datetime.date | None = None
    ) -> Iterator[dict[str, object]]:
        """The raw rows of ``app``, day by day, as JSON-compatible dicts (read on a connection of their own)."""
        low = epoch_day(since) if since else -(10**9)
        high = epoch_day(until) if until else 10**9
        with self._reader() as db:
            names = dict(db.execute("SELECT id, name FROM names"))
            rows = db.execute(
                "SELECT r.id, l.name, r.reporter, r.day, r.received, v.name, r.first_report, r.country "
                "FROM reports r JOIN apps a ON a.id = r.app_id JOIN names l ON l.id = r.level_id "
                "JOIN names v ON v.id = r.app_version_id WHERE a.name = ? AND r.day BETWEEN ? AND ? "
                "ORDER BY r.day, r.id",
                (app, low, high),
            )
            for report_id, level, reporter, day, received, version, first, country in rows:
                facts = db.execute("SELECT key_id, value_id FROM facts WHERE report_id = ?", (report_id,))
                counters = db.execute("SELECT kind, name_id, n FROM counters WHERE report_id = ?", (report_id,))
                yield export_record(
                    RawRow(app, level, bytes(reporter), day, received, version, bool(first), country),
                    {names[key]: names[value] for key, value in facts},
                    [(kind, names[name], n) for kind, name, n in counters],
                )

    def statistics(self) -> dict[str, int]:
        """Row counts per table."""
        tables = ("apps", "manifests", "reports", "facts", "counters", "request_log", *_AGGREGATES)
        with self._lock:
            return {
                table: int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608 - ours
                for table in tables
            }

    def dropped(self) -> dict[str, dict[str, int]]:
        """What accepted uploads dropped, per application and reason, over the request log kept."""
        query = "SELECT app, code, SUM(dropped) FROM request_log WHERE app IS NOT NULL GROUP BY app, code"
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for app, code, n in self._db.execute(query).fetchall():
                out.setdefault(app, {})[code] = int(n)
        return out

    def backup(self, target: Path) -> int:
        """Copy the database into the new file ``target``; return how many (report, day) rows the copy holds.

        SQLite's online backup API, in one step: one read transaction, so the copy is the database as one commit
        left it, with what is still only in the write-ahead log, while the server goes on storing (a reader does
        not stop the writer in WAL mode). The copy is written beside ``target``, made a single file (rollback
        journal), checked (``PRAGMA integrity_check``), flushed to disk and only then renamed to ``target``.
        """
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        partial = Path(name)
        try:
            try:
                reports = self._copy_into(partial)
            except sqlite3.Error as error:
                code = getattr(error, "sqlite_errorname", None) or ""
                if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
                    raise _unusable(self.path, error) from None
                raise StorageUnavailable(
                    f"cannot write the backup {target} ({error}): check the free space and the permissions of "
                    f"{target.parent}"
                ) from None
            with partial.open("rb+") as written:
                os.fsync(written.fileno())
            partial.replace(target)
            folder = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return reports

    def _copy_into(self, partial: Path) -> int:
        copy = sqlite3.connect(partial, isolation_level=None)
        try:
            with self._lock:
                self._db.backup(copy)  # every page in one step: one snapshot
            copy.execute("PRAGMA journal_mode = DELETE")
            problems = [row for (row,) in copy.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise StorageUnavailable(f"the copy of {self.path} is damaged: {'; '.join(problems[:3])}")
            (reports,) = copy.execute("SELECT count(*) FROM reports").fetchone()
            return int(reports)
        finally:
            copy.close()

    # ---- aggregation --------------------------------------------------------------------------------------
    def aggregate(self, progress: Progress | None = None) -> AggregateTables:
        """Recompute the day, week and month buckets of the days changed since the last run.

        A bucket that starts before the retention horizon is left as it is: part of its raw reports are gone, so
        recomputing it would lose what they contributed (a late report for its later days then shows only in
        the buckets that are still complete).
        """
        with self._lock:
            rows = self._db.execute("SELECT seq, day FROM dirty_days ORDER BY day").fetchall()
            kept_from = self._horizon(self._db)
        days = {from_epoch_day(day) for _, day in rows}
        seen = max((seq for seq, _ in rows), default=0)
        buckets = sorted(
            (period, start)
            for period, start in {(period, period_start(period, day)) for period in PERIODS for day in days}
            if kept_from is None or epoch_day(start) >= kept_from
        )
        for done, (period, start) in enumerate(buckets, 1):
            with self._transaction() as db:
                # Read inside the bucket's write transaction: retention (another thread or process) cannot
                # delete raw rows between this check and the recomputation.
                kept_from = self._horizon(db)
                if kept_from is None or epoch_day(start) >= kept_from:
                    self._rollup(db, period, start)
            if progress is not None:
                progress(f"{period} {start.isoformat()}", done, len(buckets))
        with self._transaction() as db:
            # Days marked again while this ran have a larger seq and stay for the next run.
            db.execute("DELETE FROM dirty_days WHERE seq <= ?", (seen,))
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('aggregations', '1') "
                "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )
        return self.aggregates()

    @staticmethod
    def _rollup(db: sqlite3.Connection, period: str, start: datetime.date) -> None:
        """Recompute one bucket. A month's reporters are its largest weekly count (ids change every week)."""
        first, end = epoch_day(start), epoch_day(_period_end(period, start))
        for table in _AGGREGATES:
            db.execute(f"DELETE FROM {table} WHERE period = ? AND start = ?", (period, first))  # noqa: S608
        week = _WEEK if period == "month" else "'whole period'"
        window = "r.day >= :first AND r.day < :end"
        bind = {"period": period, "first": first, "end": end, "cap": CONTRIBUTION_CAP}
        db.execute(
            f"""INSERT INTO agg_installs
                SELECT app, :period, :first, level, MAX(reporters), SUM(new) FROM (
                    SELECT a.name AS app, l.name AS level, COUNT(DISTINCT r.reporter) AS reporters,
                           SUM(r.first_report) AS new
                    FROM reports r JOIN apps a ON a.id = r.app_id JOIN names l ON l.id = r.level_id
                    WHERE {window} GROUP BY r.app_id, r.level_id, {week}
                ) GROUP BY app, level""",  # noqa: S608 - fixed expressions, values bound
            bind,
        )
        db.execute(
            f"""INSERT INTO agg_counters
                SELECT app, :period, :first, kind, name, SUM(total), MAX(reporters) FROM (
                    SELECT a.name AS app, c.kind AS kind, n.name AS name, SUM(min(c.n, :cap)) AS total,
                           COUNT(DISTINCT r.reporter) AS reporters
                    FROM counters c JOIN reports r ON r.id = c.report_id JOIN apps a ON a.id = r.app_id
                    JOIN names n ON n.id = c.name_id
                    WHERE {window} GROUP BY r.app_id, c.kind, c.name_id, {week}
                ) GROUP BY app, kind, name""",  # noqa: S608
            bind,
        )
        db.execute(
            f"""INSERT INTO agg_values
                SELECT app, :period, :first, field, value, MAX(reporters) FROM (
                    SELECT a.name AS app, k.name AS field, v.name AS value, COUNT(DISTINCT r.reporter) AS reporters
                    FROM facts f JOIN reports r ON r.id = f.report_id JOIN apps a ON a.id = r.app_id
                    JOIN names k ON k.id = f.key_id JOIN names v ON v.id = f.value_id
                    WHERE {window} GROUP BY r.app_id, f.key_id, f.value_id, {week}
                    UNION ALL
                    SELECT a.name, 'app_version', v.name, COUNT(DISTINCT r.reporter)
                    FROM reports r JOIN apps a ON a.id = r.app_id JOIN names v ON v.id = r.app_version_id
                    WHERE {window} GROUP BY r.app_id, r.app_version_id, {week}
                    UNION ALL
                    SELECT a.name, 'country', r.country, COUNT(DISTINCT r.reporter)
                    FROM reports r JOIN apps a ON a.id = r.app_id
                    WHERE {window} AND r.country IS NOT NULL GROUP BY r.app_id, r.country, {week}
                ) GROUP BY app, field, value""",  # noqa: S608
            bind,
        )

    def aggregates(self) -> AggregateTables:
        """Every stored aggregate."""
        with self._lock:
            installs = [
                InstallRow(app, period, from_epoch_day(start), level, reporters, new)
                for app, period, start, level, reporters, new in self._db.execute(
                    "SELECT * FROM agg_installs ORDER BY app, period, start, level"
                )
            ]
            counters = list(counter_aggregates(self._db.execute("SELECT * FROM agg_counters ORDER BY 1, 2, 3, 4, 5")))
            values = [
                ValueRow(app, period, from_epoch_day(start), field, value, reporters)
                for app, period, start, field, value, reporters in self._db.execute(
                    "SELECT * FROM agg_values ORDER BY app, period, start, field, value"
                )
            ]
        return AggregateTables(unknown_new_installs(installs, values), counters, values)

    # ---- the privacy ledger -------------------------------------------------------------------------------
    def aggregation_runs(self) -> int:
        """How many aggregations have run to completion."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'aggregations'").fetchone()
        return int(row[0]) if row else 0

    def ledger(self) -> list[LedgerEntry]:
        """Every release recorded, in order."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_LEDGER_COLUMNS} FROM privacy_ledger ORDER BY publication, app, dataset"  # noqa: S608
            ).fetchall()
        return [
            LedgerEntry(number, datetime.datetime.fromisoformat(released), *rest) for number, released, *rest in rows
        ]

    def record_release(self, entries: Sequence[LedgerEntry]) -> None:
        """Add one publication's entries in one transaction; a publication number used before is refused."""
        if not entries:
            return
        marks = ", ".join("?" * len(_LEDGER_FIELDS))
        with self._transaction() as db:
            (last,) = db.execute("SELECT max(publication) FROM privacy_ledger").fetchone()
            if last is not None and last >= min(entry.publication for entry in entries):
                raise ValueError(f"publication {last} is in the privacy ledger already: another one ran meanwhile")
            db.executemany(
                f"INSERT INTO privacy_ledger ({_LEDGER_COLUMNS}) VALUES ({marks})",  # noqa: S608 - fixed names
                [
                    (entry.publication, entry.released_at.isoformat(), *dataclasses.astuple(entry)[2:])
                    for entry in entries
                ],
            )
