"""The SQLite backend: the embedded default.

WAL journal with ``synchronous=FULL``: a committed report survives a crash of the process and of the machine.
One connection does all the writing, under a lock.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from consentry.manifest import Manifest, ManifestError, PluginManifest, parse_manifest, parse_plugin_manifest
from consentry.wire import Report, encode
from consentry_server.catalog import Catalog
from consentry_server.storage.base import (
    COUNTER_KINDS,
    AggregateTables,
    CounterRow,
    InstallRow,
    Progress,
    StoreOutcome,
    ValueRow,
    epoch_day,
    from_epoch_day,
)
from consentry_server.storage.migrations import SQLITE, pending

__all__ = ["CONTRIBUTION_CAP", "SQLiteStorage"]

#: Most one reporter may add to one counter in one day, so a runaway install cannot skew a total.
CONTRIBUTION_CAP = 10_000
_KIND_NAMES = {number: name for name, number in COUNTER_KINDS.items()}
# Period start of a stored day: itself, or the Monday of its ISO week (1970-01-01 was a Thursday).
_PERIODS = {"day": "r.day", "week": "r.day - ((r.day + 3) % 7)"}
_PERIOD_DAYS = {"day": 1, "week": 7}


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class SQLiteStorage:
    """Raw reports, manifests and aggregates in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._names: dict[str, int] = {}

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

    def _name(self, text: str) -> int:
        cached = self._names.get(text)
        if cached is not None:
            return cached
        self._db.execute("INSERT OR IGNORE INTO names (name) VALUES (?)", (text,))
        (number,) = self._db.execute("SELECT id FROM names WHERE name = ?", (text,)).fetchone()
        self._names[text] = number
        return int(number)

    def migrate(self) -> list[str]:
        """Apply pending migrations."""
        with self._lock:
            self._db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            applied = {name for (name,) in self._db.execute("SELECT name FROM migrations")}
            done = []
            for migration in pending(SQLITE, applied):
                with self._transaction() as db:
                    for statement in migration.sql.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(
                        "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                        (migration.name, datetime.datetime.now(datetime.timezone.utc).isoformat()),
                    )
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
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
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
        versions: dict[str, Manifest] = {}
        plugins: dict[str, PluginManifest] = {}
        latest = None
        for plugin, document in rows:
            try:
                if plugin:
                    plugins[plugin] = parse_plugin_manifest(json.loads(document), source=f"registered {plugin}")
                else:
                    latest = parse_manifest(json.loads(document), source=f"registered {app}")
                    versions[latest.consent_version] = latest
            except (ManifestError, ValueError):
                continue  # a manifest this version cannot read is skipped, not fatal
        if latest is None:
            return None
        return Catalog(latest, versions, plugins)

    # ---- reports ------------------------------------------------------------------------------------------
    def _facts(self, report: Report) -> list[tuple[int, int]]:
        pairs = [(f"system.{key}", value) for key, value in report.system.items()]
        pairs += [(f"dependency.{key}", value) for key, value in report.dependencies.items()]
        pairs += [(f"plugin.{plugin.name}", plugin.version) for plugin in report.plugins]
        return [(self._name(key), self._name(value)) for key, value in pairs]

    def _counters(self, report: Report, day: datetime.date) -> dict[tuple[int, int], int]:
        rows: dict[tuple[int, int], int] = {}

        def add(kind: str, name: str, n: int) -> None:
            key = (COUNTER_KINDS[kind], self._name(name))
            rows[key] = rows.get(key, 0) + n

        for event, n in report.counts.get(day, {}).items():
            add("event", event, n)
        for plugin in report.plugins:
            for event, n in plugin.counts.get(day, {}).items():
                add("plugin_event", _canonical([plugin.name, event]), n)
        for exception, n in report.exceptions.get(day, {}).items():
            add("exception", exception, n)
        activity = report.activity.get(day)
        if activity is not None:
            add("runs", "", activity.runs)
            add("active_minutes", "", activity.active_minutes)
        for command in report.commands:
            if command.day == day:
                key = [command.name, sorted(command.params.items()), command.duration, command.exit_code]
                add("command", _canonical([*key, command.exception]), command.count)
        for record in report.data:
            if record.day == day:
                key = [record.kind, record.class_name, record.dtype, record.ndim, record.size]
                add("data", _canonical(key), record.count)
        return rows

    def store_report(self, report: Report, *, received: datetime.datetime) -> StoreOutcome:
        """Store each day of ``report``; an identical report is a no-op, a different one replaces the old."""
        digest = hashlib.sha256(encode(report)).digest()
        statuses = []
        with self._transaction() as db:
            row = db.execute("SELECT id FROM apps WHERE name = ?", (report.app,)).fetchone()
            if row is None:
                raise LookupError(f"application {report.app!r} is not registered")
            app_id = row[0]
            level_id = self._name(report.level)
            version_id = self._name(report.app_version)
            reporter = bytes.fromhex(report.reporter)
            facts = self._facts(report)
            for day in report.days:
                number = epoch_day(day)
                existing = db.execute(
                    "SELECT id, digest FROM reports WHERE app_id = ? AND level_id = ? AND reporter = ? AND day = ?",
                    (app_id, level_id, reporter, number),
                ).fetchone()
                if existing is not None and existing[1] == digest:
                    statuses.append("duplicate")
                    continue
                values = (digest, int(received.timestamp()), version_id, int(report.first_report))
                if existing is not None:
                    report_id = existing[0]
                    db.execute("DELETE FROM facts WHERE report_id = ?", (report_id,))
                    db.execute("DELETE FROM counters WHERE report_id = ?", (report_id,))
                    db.execute(
                        "UPDATE reports SET digest = ?, received = ?, app_version_id = ?, first_report = ? "
                        "WHERE id = ?",
                        (*values, report_id),
                    )
                    statuses.append("replaced")
                else:
                    cursor = db.execute(
                        "INSERT INTO reports (app_id, level_id, reporter, day, digest, received, app_version_id, "
                        "first_report) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (app_id, level_id, reporter, number, *values),
                    )
                    report_id = cursor.lastrowid
                    statuses.append("stored")
                db.executemany("INSERT INTO facts VALUES (?, ?, ?)", [(report_id, k, v) for k, v in facts])
                db.executemany(
                    "INSERT INTO counters VALUES (?, ?, ?, ?)",
                    [(report_id, kind, name, n) for (kind, name), n in self._counters(report, day).items()],
                )
                db.execute("INSERT OR REPLACE INTO dirty_days (day) VALUES (?)", (number,))
        status = statuses[0] if len(set(statuses)) == 1 else "replaced"
        return StoreOutcome(status, len(report.days))  # type: ignore[arg-type]

    def delete_reporters(self, app: str, reporters: Sequence[str]) -> int:
        """Delete the reports of ``reporters``; the days they touched are aggregated again without them."""
        ids = [bytes.fromhex(reporter) for reporter in reporters]
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT r.id, r.day FROM reports r JOIN apps a ON a.id = r.app_id WHERE a.name = ? "  # noqa: S608
                f"AND r.reporter IN ({', '.join('?' * len(ids))})",
                (app, *ids),
            ).fetchall()
            for report_id, day in rows:
                db.execute("DELETE FROM facts WHERE report_id = ?", (report_id,))
                db.execute("DELETE FROM counters WHERE report_id = ?", (report_id,))
                db.execute("DELETE FROM reports WHERE id = ?", (report_id,))
                db.execute("INSERT OR REPLACE INTO dirty_days (day) VALUES (?)", (day,))
        return len(rows)

    def report_count(self) -> int:
        """Stored (report, day) rows."""
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM reports").fetchone()
        return int(count)

    # ---- aggregation --------------------------------------------------------------------------------------
    def aggregate(self, progress: Progress | None = None) -> AggregateTables:
        """Recompute the day and week buckets touched since the last run, then return all aggregates."""
        with self._lock:
            rows = self._db.execute("SELECT seq, day FROM dirty_days ORDER BY day").fetchall()
        dirty = [day for _, day in rows]
        seen = max((seq for seq, _ in rows), default=0)
        steps = len(_PERIODS)
        for step, (period, start_expr) in enumerate(_PERIODS.items()):
            starts = sorted({self._period_start(period, day) for day in dirty})
            with self._transaction() as db:
                for start in starts:
                    self._rollup(db, period, start_expr, start)
            if progress:
                progress(f"aggregated {len(starts)} {period} bucket(s)", step + 1, steps)
        with self._transaction() as db:
            # Days marked again while this ran have a larger seq and stay for the next run.
            db.execute("DELETE FROM dirty_days WHERE seq <= ?", (seen,))
        return self.aggregates()

    @staticmethod
    def _period_start(period: str, day: int) -> int:
        return day - ((day + 3) % 7) if period == "week" else day

    @staticmethod
    def _rollup(db: sqlite3.Connection, period: str, start_expr: str, start: int) -> None:
        end = start + _PERIOD_DAYS[period]
        window = "r.day >= ? AND r.day < ?"
        for table in ("agg_installs", "agg_counters", "agg_values"):
            db.execute(f"DELETE FROM {table} WHERE period = ? AND start = ?", (period, start))  # noqa: S608 - fixed names
        db.execute(
            f"""INSERT INTO agg_installs
                SELECT a.name, ?, {start_expr} AS s, l.name, COUNT(DISTINCT r.reporter), SUM(r.first_report)
                FROM reports r JOIN apps a ON a.id = r.app_id JOIN names l ON l.id = r.level_id
                WHERE {window} GROUP BY r.app_id, s, r.level_id""",  # noqa: S608 - fixed expressions, values bound
            (period, start, end),
        )
        db.execute(
            f"""INSERT INTO agg_counters
                SELECT a.name, ?, {start_expr} AS s, c.kind, n.name, SUM(min(c.n, ?)), COUNT(DISTINCT r.reporter)
                FROM counters c JOIN reports r ON r.id = c.report_id JOIN apps a ON a.id = r.app_id
                JOIN names n ON n.id = c.name_id
                WHERE {window} GROUP BY r.app_id, s, c.kind, c.name_id""",  # noqa: S608
            (period, CONTRIBUTION_CAP, start, end),
        )
        db.execute(
            f"""INSERT INTO agg_values
                SELECT a.name, ?, {start_expr} AS s, k.name, v.name, COUNT(DISTINCT r.reporter)
                FROM facts f JOIN reports r ON r.id = f.report_id JOIN apps a ON a.id = r.app_id
                JOIN names k ON k.id = f.key_id JOIN names v ON v.id = f.value_id
                WHERE {window} GROUP BY r.app_id, s, f.key_id, f.value_id
                UNION ALL
                SELECT a.name, ?, {start_expr} AS s, 'app_version', v.name, COUNT(DISTINCT r.reporter)
                FROM reports r JOIN apps a ON a.id = r.app_id JOIN names v ON v.id = r.app_version_id
                WHERE {window} GROUP BY r.app_id, s, r.app_version_id""",  # noqa: S608
            (period, start, end, period, start, end),
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
            counters = list(_counter_rows(self._db.execute("SELECT * FROM agg_counters ORDER BY 1, 2, 3, 4, 5")))
            values = [
                ValueRow(app, period, from_epoch_day(start), field, value, reporters)
                for app, period, start, field, value, reporters in self._db.execute(
                    "SELECT * FROM agg_values ORDER BY app, period, start, field, value"
                )
            ]
        return AggregateTables(installs, counters, values)


def _counter_rows(rows: Iterable[tuple[str, str, int, int, str, int, int]]) -> Iterator[CounterRow]:
    for app, period, start, kind, name, total, reporters in rows:
        kind_name = _KIND_NAMES.get(kind, "unknown")
        scope = ""
        if kind_name == "plugin_event":
            scope, name = json.loads(name)  # noqa: PLW2901 - split the stored [plugin, event] pair
        yield CounterRow(app, period, from_epoch_day(start), kind_name, scope, name, total, reporters)
