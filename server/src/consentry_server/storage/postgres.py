"""The PostgreSQL backend: for many ingest workers on one or several hosts.

psycopg 3 with a connection pool; every statement is set-based (arrays bound as parameters, ``INSERT ... SELECT``),
never a loop of single-row statements. The schema and why it is so: :mod:`.pg_migrations`.

- :meth:`PostgreSQLStorage.store_batch` runs one transaction with a savepoint per arrival and commits with
  ``synchronous_commit = on`` before returning. Partitions for new days and new interned names are created
  before it, each in a short transaction of its own; a partition is created empty and then attached, which locks
  out neither ingest nor long reads of the partitioned table.
- Retention detaches (``CONCURRENTLY``) and drops the partitions of whole days.
- Aggregation gives the same numbers as SQLite's for the same reports (the tests compare them); one aggregation
  runs at a time (an advisory lock), and the days it takes are kept until their buckets are written.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

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
from consentry_server.storage.migrations.postgres import PARTITIONED, POSTGRESQL
from consentry_server.storage.rows import COUNTER_KINDS, counter_rows, fact_rows, first_report_on, report_digest

__all__ = ["CONNECTION_WAIT", "UNREACHABLE_FOR", "PostgreSQLStorage"]

_Connection = psycopg.Connection[tuple[Any, ...]]
_LEDGER_FIELDS = tuple(field.name for field in dataclasses.fields(LedgerEntry))

# Advisory lock keys: migrations, partition creation and aggregation each run one at a time across processes.
_MIGRATE_LOCK, _PARTITION_LOCK, _AGGREGATE_LOCK = 0x636F6E01, 0x636F6E02, 0x636F6E03
_REPORTER_LOCK = 0x636F6E04  # the class of the two-key reporter locks (a key space apart from the others)
_PARTITION_NAME = re.compile(r"^(?P<table>[a-z_]+)_(?P<date>\d{8})$")
_EXPORT_CHUNK = 1000
_STATISTICS = ("apps", "manifests", "reports", "facts", "counters", "request_log")
_AGGREGATES = ("agg_installs", "agg_counters", "agg_values")
# The ISO week (its Monday, as an epoch day) of a stored day: 1970-01-01 was a Thursday.
_WEEK = sql.SQL("(r.day - ((r.day + 3) %% 7))")

_INSERT_CONTENTS = sql.SQL("""
    new_facts AS (
        INSERT INTO facts (day, report_id, key_id, value_id)
        SELECT %(day)s, report.id, f.key_id, f.value_id
        FROM report, unnest(%(keys)s::integer[], %(values)s::integer[]) AS f (key_id, value_id)
    ),
    new_counters AS (
        INSERT INTO counters (day, report_id, kind, name_id, n)
        SELECT %(day)s, report.id, c.kind, c.name_id, c.n
        FROM report, unnest(%(kinds)s::smallint[], %(names)s::integer[], %(counts)s::bigint[]) AS c (kind, name_id, n)
    )
    SELECT id FROM report
""")
_INSERT_REPORT = sql.SQL("""
    WITH report AS (
        INSERT INTO reports
            (day, app_id, level_id, reporter, digest, received, app_version_id, first_report, country_id)
        VALUES
            (%(day)s, %(app)s, %(level)s, %(reporter)s, %(digest)s, %(received)s, %(version)s, %(first)s, %(country)s)
        ON CONFLICT (reporter, app_id, level_id, day) DO NOTHING
        RETURNING id
    ), {contents}""").format(contents=_INSERT_CONTENTS)
_EXISTING_REPORT = """
    SELECT id, digest FROM reports
    WHERE reporter = %(reporter)s AND app_id = %(app)s AND level_id = %(level)s AND day = %(day)s
    FOR UPDATE
"""
_DELETE_CONTENTS = """
    WITH old_facts AS (DELETE FROM facts WHERE day = %(day)s AND report_id = %(id)s)
    DELETE FROM counters WHERE day = %(day)s AND report_id = %(id)s
"""
_REPLACE_REPORT = sql.SQL("""
    WITH report AS (
        UPDATE reports SET digest = %(digest)s, received = %(received)s, app_version_id = %(version)s,
            first_report = %(first)s, country_id = %(country)s
        WHERE day = %(day)s AND reporter = %(reporter)s AND app_id = %(app)s AND level_id = %(level)s
        RETURNING id
    ), {contents}""").format(contents=_INSERT_CONTENTS)
# A batch first takes a transaction-scoped advisory lock per reporter it holds, in ascending order, the same in
# every process: two batches with reports of one reporter then queue up instead of taking that reporter's row
# locks in opposite orders (reports can cover several days). Keys: (_REPORTER_LOCK, first 4 bytes of the id).
_LOCK_REPORTERS = (
    "SELECT count(pg_advisory_xact_lock(%s, k)) FROM (SELECT k FROM unnest(%s::integer[]) AS k ORDER BY k) AS o"
)
_MARK_DAYS = "INSERT INTO dirty_days (day) SELECT unnest(%s::integer[]) ORDER BY 1 ON CONFLICT DO NOTHING"

# One bucket of each aggregate. Counts of distinct reporters are computed in two steps (distinct rows, then a
# count), which PostgreSQL does with hash aggregation instead of a sort per group. {week} is the ISO week for a
# month (whose reporters are its largest weekly count) and a constant for a day or a week.
_WINDOW = sql.SQL("r.day >= %(first)s AND r.day < %(end)s")
_ROLLUP_INSTALLS = """
    INSERT INTO agg_installs (app_id, period, start, level_id, reporters, new_installs)
    SELECT app_id, %(period)s, %(first)s, level_id, max(reporters), sum(new)::bigint
    FROM (
        SELECT r.app_id, r.level_id, {week} AS week, count(DISTINCT r.reporter) AS reporters,
               count(*) FILTER (WHERE r.first_report) AS new
        FROM reports r WHERE {window} GROUP BY 1, 2, 3
    ) AS weekly
    GROUP BY app_id, level_id
"""
_ROLLUP_COUNTERS = """
    INSERT INTO agg_counters (app_id, period, start, kind, name_id, total, reporters)
    SELECT app_id, %(period)s, %(first)s, kind, name_id, sum(total)::bigint, max(reporters)
    FROM (
        SELECT app_id, kind, name_id, week, sum(total) AS total, count(*) AS reporters
        FROM (
            SELECT r.app_id, c.kind, c.name_id, {week} AS week, r.reporter,
                   sum(least(c.n, %(cap)s)::integer) AS total
            FROM counters c JOIN reports r ON r.day = c.day AND r.id = c.report_id
            WHERE {window} AND c.day >= %(first)s AND c.day < %(end)s
            GROUP BY 1, 2, 3, 4, 5
        ) AS per_reporter
        GROUP BY 1, 2, 3, 4
    ) AS weekly
    GROUP BY app_id, kind, name_id
"""
_ROLLUP_VALUES = """
    INSERT INTO agg_values (app_id, period, start, field_id, value_id, reporters)
    SELECT app_id, %(period)s, %(first)s, field_id, value_id, max(reporters)
    FROM (
        SELECT app_id, field_id, value_id, week, count(*) AS reporters
        FROM (
            SELECT DISTINCT r.app_id, f.key_id AS field_id, f.value_id, {week} AS week, r.reporter
            FROM facts f JOIN reports r ON r.day = f.day AND r.id = f.report_id
            WHERE {window} AND f.day >= %(first)s AND f.day < %(end)s
        ) AS fact_reporters
        GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT app_id, %(app_version)s, value_id, week, count(*)
        FROM (
            SELECT DISTINCT r.app_id, r.app_version_id AS value_id, {week} AS week, r.reporter
            FROM reports r WHERE {window}
        ) AS version_reporters
        GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT app_id, %(country)s, value_id, week, count(*)
        FROM (
            SELECT DISTINCT r.app_id, r.country_id AS value_id, {week} AS week, r.reporter
            FROM reports r WHERE {window} AND r.country_id IS NOT NULL
        ) AS country_reporters
        GROUP BY 1, 2, 3, 4
    ) AS weekly
    GROUP BY app_id, field_id, value_id
"""
_ROLLUPS = tuple(sql.SQL(text) for text in (_ROLLUP_INSTALLS, _ROLLUP_COUNTERS, _ROLLUP_VALUES))


def _period_end(period: str, start: datetime.date) -> datetime.date:
    if period == "day":
        return start + datetime.timedelta(days=1)
    if period == "week":
        return start + datetime.timedelta(days=7)
    return (start.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)


def _partition(table: str, day: int) -> str:
    return f"{table}_{from_epoch_day(day):%Y%m%d}"


def _safe(url: str) -> str:
    """``url`` without a password, for messages."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)


def _one_line(error: Exception) -> str:
    """``error``'s message on one line (libpq's run over several)."""
    return " ".join(str(error).split())


@dataclass(frozen=True)
class _Prepared:
    """An arrival turned into its rows (see :mod:`.rows`), before anything is sent to the database."""

    arrival: Arrival
    digest: bytes
    reporter: bytes
    facts: dict[str, str]
    counters: dict[int, dict[tuple[str, str], int]]  # by day

    @classmethod
    def of(cls, arrival: Arrival) -> _Prepared:
        report = arrival.report
        return cls(
            arrival,
            report_digest(report),
            bytes.fromhex(report.reporter),
            fact_rows(report, first_report_known=arrival.first_report_known),
            {epoch_day(day): counter_rows(report, day) for day in report.days},
        )

    @property
    def key(self) -> tuple[str, str, bytes]:
        """The order in which reports are stored: application, level, reporter."""
        return (self.arrival.report.app, self.arrival.report.level, self.reporter)

    def texts(self) -> Iterator[str]:
        report = self.arrival.report
        yield report.level
        yield report.app_version
        if self.arrival.country is not None:
            yield self.arrival.country
        for key, value in self.facts.items():
            yield key
            yield value
        for counters in self.counters.values():
            for _, name in counters:
                yield name


def _storing_order(items: list[tuple[int, _Prepared]]) -> list[tuple[int, _Prepared]]:
    """``items`` in the order their rows are best written.

    Rows are locked as they are written; written in the order of their keys, the same in every process, two
    batches holding the same reports do not wait for each other in a circle (PostgreSQL would end one). Reports
    of one reporter that share a day keep their order, which decides the one stored.
    """
    groups: dict[tuple[str, str, bytes], list[tuple[int, _Prepared]]] = {}
    for index, item in items:
        groups.setdefault(item.key, []).append((index, item))
    ordered = []
    for key in sorted(groups):
        pending = groups[key]
        while pending:
            free = [
                n
                for n, (_, item) in enumerate(pending)
                if not any(item.counters.keys() & earlier.counters.keys() for _, earlier in pending[:n])
            ]
            ordered.append(pending.pop(min(free, key=lambda n: sorted(pending[n][1].counters))))
    return ordered


#: Seconds a caller waits for a connection of the pool before PostgreSQL counts as unreachable: a report's batch
#: may wait this long, and the batch before it too, well within the 10 s a client waits for its answer (503).
CONNECTION_WAIT = 2.0
#: Seconds during which callers are refused at once after PostgreSQL was found unreachable.
UNREACHABLE_FOR = 1.0


class PostgreSQLStorage:
    """Raw reports, manifests, request logs and aggregates in a PostgreSQL database.

    ``url``: a ``postgresql://`` (or ``postgres://``) connection URL; ``max_connections``: the size of the pool;
    ``connect_timeout``: seconds to wait for the first connection before giving up.
    """

    def __init__(self, url: str, *, max_connections: int = 8, connect_timeout: float = 10.0) -> None:
        self.url = url
        try:  # once by hand, for the server's own words when it cannot be reached or refuses us
            psycopg.connect(url, connect_timeout=max(1, round(connect_timeout))).close()
        except psycopg.OperationalError as error:
            raise StorageUnavailable(
                f"cannot connect to PostgreSQL at {_safe(url)} ({_one_line(error)}): check that it runs and that "
                "the URL, user and password are right"
            ) from None
        self._pool: ConnectionPool[_Connection] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "application_name": "consentry-server"},
            check=ConnectionPool.check_connection,
            name="consentry",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout:
            self._pool.close()
            raise StorageUnavailable(f"cannot connect to PostgreSQL at {_safe(url)}: check that it runs") from None
        # Caches of what never changes once created: interned names, application ids, days with partitions.
        self._names: dict[str, int] = {}
        self._apps: dict[str, int] = {}
        self._partitions: set[int] = set()
        # Until when callers are refused at once, and why: PostgreSQL was just found unreachable.
        self._unreachable_until = 0.0
        self._unreachable = ""

    # ---- plumbing -----------------------------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[_Connection]:
        """A connection of the pool, or :class:`StorageUnavailable` soon when PostgreSQL cannot be reached.

        A caller waits at most :data:`CONNECTION_WAIT` for a connection (the pool's own default, 30 s, is longer
        than a client waits for its answer); once one caller found PostgreSQL unreachable, or lost its
        connection in the middle of its work, every caller is refused at once for :data:`UNREACHABLE_FOR`
        seconds, so that the reports queued behind a failed batch do not wait in turn.
        """
        if time.monotonic() < self._unreachable_until:
            raise StorageUnavailable(self._unreachable)
        conn = None
        try:
            with self._pool.connection(timeout=CONNECTION_WAIT) as conn:
                yield conn
        except PoolTimeout:
            raise self._found_unreachable(f"no connection within {CONNECTION_WAIT:g} s") from None
        except psycopg.OperationalError as error:
            if conn is None or not conn.broken:
                raise
            raise self._found_unreachable(_one_line(error)) from None

    def _found_unreachable(self, reason: str) -> StorageUnavailable:
        self._unreachable = f"PostgreSQL at {_safe(self.url)} cannot be reached ({reason}): check that it runs"
        self._unreachable_until = time.monotonic() + UNREACHABLE_FOR
        return StorageUnavailable(self._unreachable)

    def migrate(self) -> list[str]:
        """Apply pending migrations, each in a transaction with its record; one process at a time."""
        with self._connection() as conn, self._exclusive(conn, _MIGRATE_LOCK):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL)"
            )
            applied = {name for (name,) in conn.execute("SELECT name FROM migrations")}
            done = []
            for migration in pending(POSTGRESQL, applied):
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute("INSERT INTO migrations (name, applied_at) VALUES (%s, now())", (migration.name,))
                done.append(migration.name)
            return done

    def close(self) -> None:
        """Close every connection of the pool."""
        self._pool.close()

    def _intern(self, conn: _Connection, texts: Iterable[str]) -> dict[str, int]:
        """Ids of ``texts``, created (in a transaction of their own) when new."""
        wanted = set(texts)
        missing = sorted(wanted.difference(self._names))
        if missing:
            # In digest order, so that two processes adding names at once wait for each other, never deadlock.
            conn.execute(
                "INSERT INTO names (name) SELECT x FROM unnest(%s::text[]) AS x ORDER BY md5(x) "
                "ON CONFLICT ((md5(name))) DO NOTHING",
                (missing,),
            )
            rows = conn.execute(
                "SELECT id, name FROM names WHERE md5(name) IN (SELECT md5(x) FROM unnest(%s::text[]) AS x)",
                (missing,),
            ).fetchall()
            self._names.update((name, number) for number, name in rows)
            if not wanted.issubset(self._names):
                raise RuntimeError("two names share an MD5 digest")  # not for names of this world
        return {text: self._names[text] for text in wanted}

    def _intern_each(
        self, conn: _Connection, ready: list[tuple[int, _Prepared]], outcomes: dict[int, StoreOutcome | Exception]
    ) -> tuple[dict[str, int], list[tuple[int, _Prepared]]]:
        """Intern the texts of each arrival on its own; those that fail get their error as their outcome."""
        names: dict[str, int] = {}
        kept = []
        for index, item in ready:
            try:
                names.update(self._intern(conn, item.texts()))
            except psycopg.DataError as error:
                outcomes[index] = error
            else:
                kept.append((index, item))
        return names, kept

    def _app_ids(self, conn: _Connection, apps: Iterable[str]) -> dict[str, int]:
        """Ids of the registered ``apps`` (unregistered ones are left out)."""
        missing = sorted(set(apps).difference(self._apps))
        if missing:
            rows = conn.execute("SELECT name, id FROM apps WHERE name = ANY(%s)", (missing,)).fetchall()
            self._apps.update(rows)
        return self._apps

    def _partition_days(self, conn: _Connection) -> dict[str, dict[int, tuple[str, bool]]]:
        """For each partitioned table: its partitions by day, as (name, detach pending)."""
        found: dict[str, dict[int, tuple[str, bool]]] = {table: {} for table in PARTITIONED}
        rows = conn.execute(
            "SELECT parent.relname, child.relname, i.inhdetachpending FROM pg_inherits i "
            "JOIN pg_class parent ON parent.oid = i.inhparent JOIN pg_class child ON child.oid = i.inhrelid "
            "WHERE parent.oid = ANY(%s::regclass[])",
            (list(PARTITIONED),),
        ).fetchall()
        for parent, child, detaching in rows:
            match = _PARTITION_NAME.match(child)
            if match and match["table"] == parent:
                day = epoch_day(datetime.datetime.strptime(match["date"], "%Y%m%d").date())  # noqa: DTZ007 - a date
                found[parent][day] = (child, detaching)
        return found

    def _ensure_partitions(self, conn: _Connection, days: Iterable[int]) -> None:
        """Create the partitions of ``days`` that do not exist yet: empty tables, then attached."""
        missing = sorted(set(days).difference(self._partitions))
        if not missing:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
            present = self._partition_days(conn)
            for day in missing:
                for table in reversed(PARTITIONED):
                    if day in present[table]:
                        continue
                    name = sql.Identifier(_partition(table, day))
                    conn.execute(
                        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(name, sql.Identifier(table))
                    )
                    conn.execute(
                        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                            sql.Identifier(table), name, sql.Literal(day), sql.Literal(day + 1)
                        )
                    )
        self._partitions.update(missing)

    # ---- manifests ----------------------------------------------------------------------------------------
    def register_manifest(self, manifest: Manifest | PluginManifest) -> bool:
        """Keep this version of ``manifest``; ``False`` if it was registered before."""
        app = manifest.name if isinstance(manifest, Manifest) else manifest.host
        plugin = "" if isinstance(manifest, Manifest) else manifest.name
        with self._connection() as conn, conn.transaction():
            conn.execute("INSERT INTO apps (name, created_at) VALUES (%s, now()) ON CONFLICT (name) DO NOTHING", (app,))
            cursor = conn.execute(
                "INSERT INTO manifests (app_id, plugin, consent_version, document, registered_at) "
                "SELECT id, %s, %s, %s, now() FROM apps WHERE name = %s ON CONFLICT DO NOTHING",
                # Not key-sorted: the order of the levels is meaningful.
                (plugin, manifest.consent_version, json.dumps(manifest.to_document()), app),
            )
            return cursor.rowcount == 1

    def apps(self) -> list[str]:
        """Registered applications that have an application manifest."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT a.name FROM apps a JOIN manifests m ON m.app_id = a.id AND m.plugin = '' ORDER BY 1"
            ).fetchall()
        return [name for (name,) in rows]

    def catalog(self, app: str) -> Catalog | None:
        """Every registered manifest of ``app``."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT m.plugin, m.document FROM manifests m JOIN apps a ON a.id = m.app_id "
                "WHERE a.name = %s ORDER BY m.id",
                (app,),
            ).fetchall()
        return Catalog.from_documents(app, rows)

    # ---- reports ------------------------------------------------------------------------------------------
    def store_batch(self, arrivals: Sequence[Arrival]) -> list[StoreOutcome | Exception]:
        """Store ``arrivals`` in one transaction (a savepoint each); return once it is durably committed."""
        outcomes: dict[int, StoreOutcome | Exception] = {}
        ready: list[tuple[int, _Prepared]] = []
        for index, arrival in enumerate(arrivals):
            try:
                ready.append((index, _Prepared.of(arrival)))
            except Exception as error:  # noqa: BLE001 - one bad arrival must not take the batch with it
                outcomes[index] = error
        ready = _storing_order(ready)
        with self._connection() as conn:
            self._ensure_partitions(conn, (day for _, item in ready for day in item.counters))
            try:
                names = self._intern(conn, (text for _, item in ready for text in item.texts()))
            except psycopg.DataError:  # a text PostgreSQL cannot hold: find whose, alone
                names, ready = self._intern_each(conn, ready, outcomes)
            apps = self._app_ids(conn, (item.arrival.report.app for _, item in ready))
            changed: set[int] = set()
            with conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = on")  # a 2xx means durable, whatever the server says
                reporters = sorted({int.from_bytes(item.reporter[:4], "big", signed=True) for _, item in ready})
                conn.execute(_LOCK_REPORTERS, (_REPORTER_LOCK, reporters))
                for index, item in ready:
                    try:
                        with conn.transaction():
                            outcome, days = self._store(conn, item, names, apps)
                    except psycopg.errors.CheckViolation as error:
                        self._partitions.clear()  # a day's partition was dropped by another process
                        outcomes[index] = error
                    except Exception as error:  # noqa: BLE001 - one bad arrival must not take the batch with it
                        outcomes[index] = error
                    else:
                        changed.update(days)
                        outcomes[index] = outcome
                if changed:
                    conn.execute(_MARK_DAYS, (sorted(changed),))
        return [outcomes[index] for index in range(len(arrivals))]

    @staticmethod
    def _store(
        conn: _Connection, item: _Prepared, names: dict[str, int], apps: dict[str, int]
    ) -> tuple[StoreOutcome, list[int]]:
        report = item.arrival.report
        app_id = apps.get(report.app)
        if app_id is None:
            raise LookupError(f"application {report.app!r} is not registered")
        country = item.arrival.country
        common: dict[str, Any] = {
            "app": app_id,
            "level": names[report.level],
            "reporter": item.reporter,
            "digest": item.digest,
            "received": int(item.arrival.received.timestamp()),
            "version": names[report.app_version],
            "country": None if country is None else names[country],
            "keys": [names[key] for key in item.facts],
            "values": [names[value] for value in item.facts.values()],
        }
        statuses: list[str] = []
        changed: list[int] = []
        for day, counters in item.counters.items():
            params = {
                **common,
                "day": day,
                "first": first_report_on(report, from_epoch_day(day)),
                "kinds": [COUNTER_KINDS[kind] for kind, _ in counters],
                "names": [names[name] for _, name in counters],
                "counts": list(counters.values()),
            }
            if conn.execute(_INSERT_REPORT, params).fetchone() is not None:
                statuses.append("stored")
            else:
                existing = conn.execute(_EXISTING_REPORT, params).fetchone()
                if existing is None:
                    raise RuntimeError("the report was deleted while it was being replaced")
                if bytes(existing[1]) == item.digest:
                    statuses.append("duplicate")
                    continue
                conn.execute(_DELETE_CONTENTS, {"day": day, "id": existing[0]})
                conn.execute(_REPLACE_REPORT, params)
                statuses.append("replaced")
            changed.append(day)
        status = statuses[0] if len(set(statuses)) == 1 else "replaced"
        return StoreOutcome(status, len(report.days)), changed  # type: ignore[arg-type]

    def delete_reporters(self, app: str, reporters: Sequence[str]) -> int:
        """Delete the reports of ``reporters``; the days they touched are aggregated again without them."""
        ids = [bytes.fromhex(reporter) for reporter in reporters]
        if not ids:
            return 0
        with self._connection() as conn, conn.transaction():
            gone = conn.execute(
                "DELETE FROM reports WHERE reporter = ANY(%s) AND app_id = (SELECT id FROM apps WHERE name = %s) "
                "RETURNING day, id",
                (ids, app),
            ).fetchall()
            if gone:
                keys = ([day for day, _ in gone], [number for _, number in gone])
                for table in ("facts", "counters"):
                    conn.execute(
                        sql.SQL(
                            "DELETE FROM {} AS t USING unnest(%s::integer[], %s::bigint[]) AS g (day, id) "
                            "WHERE t.day = g.day AND t.report_id = g.id"
                        ).format(sql.Identifier(table)),
                        keys,
                    )
                conn.execute(_MARK_DAYS, (sorted(set(keys[0])),))
        return len(gone)

    def report_count(self) -> int:
        """Stored (report, day) rows."""
        with self._connection() as conn:
            row = conn.execute("SELECT count(*) FROM reports").fetchone()
        return int(row[0]) if row else 0

    # ---- logs, retention, export, statistics ---------------------------------------------------------------
    def log_requests(self, entries: Sequence[RequestLog]) -> None:
        """Append to the request log."""
        if not entries:
            return
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO request_log (time, route, status, code, size, app, dropped) "
                "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::integer[], %s::text[], %s::bigint[], "
                "%s::text[], %s::bigint[])",
                (
                    [int(entry.time.timestamp()) for entry in entries],
                    [entry.route for entry in entries],
                    [entry.status for entry in entries],
                    [entry.code for entry in entries],
                    [entry.size for entry in entries],
                    [entry.app for entry in entries],
                    [entry.dropped for entry in entries],
                ),
            )

    def apply_retention(self, *, raw_before: datetime.date, logs_before: datetime.datetime) -> RetentionResult:
        """Drop the partitions of days before ``raw_before``, delete log lines before ``logs_before``.

        ``partitions`` counts the days dropped (each day is a partition of reports, facts and counters). The
        first day kept is recorded first, so that aggregation never recomputes a bucket that lost raw reports;
        retention and aggregation never run at the same time.
        """
        raw = dropped = 0
        with self._connection() as conn, self._exclusive(conn, _AGGREGATE_LOCK):
            with conn.transaction():
                previous = self._horizon(conn)
                horizon = epoch_day(raw_before) if previous is None else max(epoch_day(raw_before), previous)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('raw_horizon', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(horizon),),
                )
            partitions = self._partition_days(conn)
            for day in sorted({day for table in PARTITIONED for day in partitions[table] if day < horizon}):
                for table in PARTITIONED:
                    if day not in partitions[table]:
                        continue
                    name, detaching = partitions[table][day]
                    if table == "reports":
                        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()
                        raw += int(row[0]) if row else 0
                    # CONCURRENTLY: no lock that would stop ingest; FINALIZE completes one that was interrupted.
                    how = sql.SQL("FINALIZE" if detaching else "CONCURRENTLY")
                    conn.execute(
                        sql.SQL("ALTER TABLE {} DETACH PARTITION {} {}").format(
                            sql.Identifier(table), sql.Identifier(name), how
                        )
                    )
                    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                self._partitions.discard(day)
                dropped += 1
            logs = conn.execute("DELETE FROM request_log WHERE time < %s", (int(logs_before.timestamp()),)).rowcount
        return RetentionResult(raw_rows=raw, log_rows=logs, partitions=dropped)

    @staticmethod
    def _horizon(conn: _Connection) -> int | None:
        """The first day (epoch day) whose raw reports are still kept, once retention has run."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'raw_horizon'").fetchone()
        return int(row[0]) if row else None

    @staticmethod
    @contextmanager
    def _exclusive(conn: _Connection, key: int) -> Iterator[None]:
        """Hold the advisory lock ``key`` (one holder across every process) on ``conn``."""
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def export(
        self, app: str, *, since: datetime.date | None = None, until: datetime.date | None = None
    ) -> Iterator[dict[str, object]]:
        """The raw rows of ``app``, day by day, as JSON-compatible dicts, read a thousand reports at a time."""
        low = epoch_day(since) if since else -(10**9)
        high = epoch_day(until) if until else 10**9
        with self._connection() as conn:
            after = (low - 1, -1)
            while True:
                rows = conn.execute(
                    "SELECT r.day, r.id, l.name, r.reporter, r.received, v.name, r.first_report, c.name "
                    "FROM reports r JOIN apps a ON a.id = r.app_id JOIN names l ON l.id = r.level_id "
                    "JOIN names v ON v.id = r.app_version_id LEFT JOIN names c ON c.id = r.country_id "
                    "WHERE a.name = %s AND r.day BETWEEN %s AND %s AND (r.day, r.id) > (%s, %s) "
                    "ORDER BY r.day, r.id LIMIT %s",
                    (app, low, high, *after, _EXPORT_CHUNK),
                ).fetchall()
                if not rows:
                    return
                yield from self._export_rows(conn, app, rows)
                after = (rows[-1][0], rows[-1][1])

    @staticmethod
    def _export_rows(conn: _Connection, app: str, rows: list[tuple[Any, ...]]) -> Iterator[dict[str, object]]:
        keys = ([row[0] for row in rows], [row[1] for row in rows])
        facts: dict[int, dict[str, str]] = {}
        for report_id, key, value in conn.execute(
            "SELECT f.report_id, k.name, v.name FROM facts f "
            "JOIN unnest(%s::integer[], %s::bigint[]) AS g (day, id) ON f.day = g.day AND f.report_id = g.id "
            "JOIN names k ON k.id = f.key_id JOIN names v ON v.id = f.value_id",
            keys,
        ):
            facts.setdefault(report_id, {})[key] = value
        counters: dict[int, list[tuple[int, str, int]]] = {}
        for report_id, kind, name, n in conn.execute(
            "SELECT c.report_id, c.kind, n.name, c.n FROM counters c "
            "JOIN unnest(%s::integer[], %s::bigint[]) AS g (day, id) ON c.day = g.day AND c.report_id = g.id "
            "JOIN names n ON n.id = c.name_id",
            keys,
        ):
            counters.setdefault(report_id, []).append((kind, name, n))
        for day, report_id, level, reporter, received, version, first, country in rows:
            yield export_record(
                RawRow(app, level, bytes(reporter), day, received, version, first, country),
                facts.get(report_id, {}),
                counters.get(report_id, []),
            )

    def statistics(self) -> dict[str, int]:
        """Row counts per table, and ``partitions``: the days of raw reports stored."""
        with self._connection() as conn:
            counts = {}
            for table in (*_STATISTICS, *_AGGREGATES):
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
                counts[table] = int(row[0]) if row else 0
            counts["partitions"] = len(self._partition_days(conn)["reports"])
        return counts

    def dropped(self) -> dict[str, dict[str, int]]:
        """What accepted uploads dropped, per application and reason, over the request log kept."""
        query = "SELECT app, code, sum(dropped) FROM request_log WHERE app IS NOT NULL GROUP BY app, code"
        out: dict[str, dict[str, int]] = {}
        with self._connection() as conn:
            for app, code, n in conn.execute(query).fetchall():
                out.setdefault(app, {})[code] = int(n)
        return out

    # ---- aggregation --------------------------------------------------------------------------------------
    def aggregate(self, progress: Progress | None = None) -> AggregateTables:
        """Recompute the day, week and month buckets of the days changed since the last run."""
        with self._connection() as conn, self._exclusive(conn, _AGGREGATE_LOCK):
            self._aggregate(conn, progress)
        return self.aggregates()

    def _aggregate(self, conn: _Connection, progress: Progress | None) -> None:
        with conn.transaction():
            # Waits for the batches that marked days to commit, so every report of a taken day is visible below;
            # a batch that marks a day afterwards marks it anew for the next run.
            conn.execute("LOCK TABLE dirty_days IN EXCLUSIVE MODE")
            conn.execute(
                "WITH taken AS (DELETE FROM dirty_days RETURNING day) "
                "INSERT INTO aggregating_days (day) SELECT day FROM taken ON CONFLICT DO NOTHING"
            )
        numbers = [day for (day,) in conn.execute("SELECT day FROM aggregating_days")]
        fields = self._intern(conn, ("app_version", "country"))
        # Fresh statistics of the changed days' partitions (a new one has none), so the plans below fit the data.
        present = self._partition_days(conn)
        changed = [
            sql.Identifier(present[table][day][0]) for day in numbers for table in PARTITIONED if day in present[table]
        ]
        if changed:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(changed)))
        kept_from = self._horizon(conn)
        horizon = from_epoch_day(kept_from) if kept_from is not None else None
        days = {from_epoch_day(number) for number in numbers}
        # A bucket that starts before the retention horizon lost raw reports: recomputing it would shrink it.
        buckets = sorted(
            (period, start)
            for period, start in {(period, period_start(period, day)) for period in PERIODS for day in days}
            if horizon is None or start >= horizon
        )
        for done, (period, start) in enumerate(buckets, 1):
            with conn.transaction():
                self._rollup(conn, period, start, fields)
            if progress is not None:
                progress(f"{period} {start.isoformat()}", done, len(buckets))
        conn.execute("DELETE FROM aggregating_days WHERE day = ANY(%s)", (numbers,))
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('aggregations', '1') "
            "ON CONFLICT (key) DO UPDATE SET value = (meta.value::bigint + 1)::text"
        )

    @staticmethod
    def _rollup(conn: _Connection, period: str, start: datetime.date, fields: dict[str, int]) -> None:
        """Recompute one bucket. A month's reporters are its largest weekly count (ids change every week)."""
        first, end = epoch_day(start), epoch_day(_period_end(period, start))
        conn.execute("SET LOCAL work_mem = '64MB'")
        for table in _AGGREGATES:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE period = %s AND start = %s").format(sql.Identifier(table)),
                (period, first),
            )
        week = _WEEK if period == "month" else sql.SQL("0")
        bind = {
            "period": period,
            "first": first,
            "end": end,
            "cap": CONTRIBUTION_CAP,
            "app_version": fields["app_version"],
            "country": fields["country"],
        }
        for rollup in _ROLLUPS:
            conn.execute(rollup.format(week=week, window=_WINDOW), bind)

    def aggregates(self) -> AggregateTables:
        """Every stored aggregate, in the order SQLite gives them (byte order of the names)."""
        with self._connection() as conn:
            installs = [
                InstallRow(app, period, from_epoch_day(start), level, reporters, new)
                for app, period, start, level, reporters, new in conn.execute(
                    "SELECT a.name, i.period, i.start, l.name, i.reporters, i.new_installs FROM agg_installs i "
                    "JOIN apps a ON a.id = i.app_id JOIN names l ON l.id = i.level_id ORDER BY 1, 2, 3, 4"
                )
            ]
            counters = list(
                counter_aggregates(
                    conn.execute(
                        "SELECT a.name, c.period, c.start, c.kind, n.name, c.total, c.reporters FROM agg_counters c "
                        "JOIN apps a ON a.id = c.app_id JOIN names n ON n.id = c.name_id ORDER BY 1, 2, 3, 4, 5"
                    )
                )
            )
            values = [
                ValueRow(app, period, from_epoch_day(start), key, value, reporters)
                for app, period, start, key, value, reporters in conn.execute(
                    "SELECT a.name, v.period, v.start, k.name, n.name, v.reporters FROM agg_values v "
                    "JOIN apps a ON a.id = v.app_id JOIN names k ON k.id = v.field_id "
                    "JOIN names n ON n.id = v.value_id ORDER BY 1, 2, 3, 4, 5"
                )
            ]
        return AggregateTables(unknown_new_installs(installs, values), counters, values)

    # ---- the privacy ledger -------------------------------------------------------------------------------
    def aggregation_runs(self) -> int:
        """How many aggregations have run to completion."""
        with self._connection() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'aggregations'").fetchone()
        return int(row[0]) if row else 0

    def ledger(self) -> list[LedgerEntry]:
        """Every release recorded, in order (the same order as SQLite's: byte order of the names)."""
        columns = sql.SQL(", ").join(map(sql.Identifier, _LEDGER_FIELDS))
        with self._connection() as conn:
            rows = conn.execute(
                sql.SQL("SELECT {} FROM privacy_ledger ORDER BY publication, app, dataset").format(columns)
            ).fetchall()
        return [LedgerEntry(*row) for row in rows]

    def record_release(self, entries: Sequence[LedgerEntry]) -> None:
        """Add one publication's entries in one transaction; a publication number used before is refused."""
        if not entries:
            return
        columns = sql.SQL(", ").join(map(sql.Identifier, _LEDGER_FIELDS))
        marks = sql.SQL(", ").join([sql.Placeholder()] * len(_LEDGER_FIELDS))
        with self._connection() as conn, conn.transaction():
            conn.execute("LOCK TABLE privacy_ledger IN EXCLUSIVE MODE")  # one publication recorded at a time
            row = conn.execute("SELECT max(publication) FROM privacy_ledger").fetchone()
            last = row[0] if row else None
            if last is not None and last >= min(entry.publication for entry in entries):
                raise ValueError(f"publication {last} is in the privacy ledger already: another one ran meanwhile")
            with conn.cursor() as cursor:
                cursor.executemany(
                    sql.SQL("INSERT INTO privacy_ledger ({}) VALUES ({})").format(columns, marks),
                    [dataclasses.astuple(entry) for entry in entries],
                )
