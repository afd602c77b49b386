"""The SQLite schema, as named, recorded steps (see :mod:`consentry_server.storage.migrations` for the rules)."""

from __future__ import annotations

from collections.abc import Sequence

from consentry_server.storage.migrations import Migration

__all__ = ["SQLITE"]


SQLITE: Sequence[Migration] = (
    Migration(
        "0001_initial",
        """
        CREATE TABLE apps (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        -- Every version of every manifest, application or plugin, as registered.
        CREATE TABLE manifests (
            id INTEGER PRIMARY KEY,
            app_id INTEGER NOT NULL REFERENCES apps (id),
            plugin TEXT NOT NULL DEFAULT '',
            consent_version TEXT NOT NULL,
            document TEXT NOT NULL,
            registered_at TEXT NOT NULL,
            UNIQUE (app_id, plugin, consent_version)
        );
        -- Interned strings (levels, versions, event names...), so counter rows stay a few integers long.
        CREATE TABLE names (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        );
        -- One row per report and day covered: the unit of idempotency and of retention.
        CREATE TABLE reports (
            id INTEGER PRIMARY KEY,
            app_id INTEGER NOT NULL,
            level_id INTEGER NOT NULL,
            reporter BLOB NOT NULL,
            day INTEGER NOT NULL,
            digest BLOB NOT NULL,
            received INTEGER NOT NULL,
            app_version_id INTEGER NOT NULL,
            first_report INTEGER NOT NULL,
            UNIQUE (app_id, level_id, reporter, day)
        );
        CREATE INDEX reports_by_day ON reports (day);
        -- System fields, dependency and plugin versions of a report row.
        CREATE TABLE facts (
            report_id INTEGER NOT NULL,
            key_id INTEGER NOT NULL,
            value_id INTEGER NOT NULL,
            PRIMARY KEY (report_id, key_id)
        ) WITHOUT ROWID;
        CREATE TABLE counters (
            report_id INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            name_id INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (report_id, kind, name_id)
        ) WITHOUT ROWID;
        -- Days whose reports changed since the last aggregation. A day marked again gets a new seq, so that an
        -- aggregation clears only the marks it saw when it started.
        CREATE TABLE dirty_days (seq INTEGER PRIMARY KEY AUTOINCREMENT, day INTEGER NOT NULL UNIQUE);
        -- Aggregates, kept forever (raw reports are not). Periods: 'day', 'week' (ISO, starting on Monday).
        CREATE TABLE agg_installs (
            app TEXT NOT NULL,
            period TEXT NOT NULL,
            start INTEGER NOT NULL,
            level TEXT NOT NULL,
            reporters INTEGER NOT NULL,
            new_installs INTEGER NOT NULL,
            PRIMARY KEY (app, period, start, level)
        ) WITHOUT ROWID;
        CREATE TABLE agg_counters (
            app TEXT NOT NULL,
            period TEXT NOT NULL,
            start INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            name TEXT NOT NULL,
            total INTEGER NOT NULL,
            reporters INTEGER NOT NULL,
            PRIMARY KEY (app, period, start, kind, name)
        ) WITHOUT ROWID;
        CREATE TABLE agg_values (
            app TEXT NOT NULL,
            period TEXT NOT NULL,
            start INTEGER NOT NULL,
            field TEXT NOT NULL,
            value TEXT NOT NULL,
            reporters INTEGER NOT NULL,
            PRIMARY KEY (app, period, start, field, value)
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        "0002_country_and_request_log",
        """
        -- The country a report came from, when the operator turned the lookup on (never the address).
        ALTER TABLE reports ADD COLUMN country TEXT;
        -- Refused requests, for operators: no address, no payload. Kept 14 days by default.
        CREATE TABLE request_log (
            id INTEGER PRIMARY KEY,
            time INTEGER NOT NULL,
            route TEXT NOT NULL,
            status INTEGER NOT NULL,
            code TEXT NOT NULL,
            size INTEGER NOT NULL
        );
        CREATE INDEX request_log_by_time ON request_log (time);
        -- Small facts about the store itself: raw_horizon is the first day whose raw reports are still kept.
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    ),
    Migration(
        "0003_privacy_ledger",
        """
        -- The privacy ledger (consentry_server.publish.ledger): one row per release of a published table of an
        -- application, kept forever. No raw data: parameters, how many numbers were released, a digest of the
        -- rows as published and the aggregation run they came from (meta key aggregations counts the runs).
        CREATE TABLE privacy_ledger (
            publication INTEGER NOT NULL,
            released_at TEXT NOT NULL,
            app TEXT NOT NULL,
            dataset TEXT NOT NULL,
            k INTEGER NOT NULL,
            mechanism TEXT NOT NULL,
            epsilon_per_number REAL,
            numbers INTEGER NOT NULL,
            epsilon REAL,
            delta REAL,
            reporter_cap INTEGER NOT NULL,
            total_cap_per_day INTEGER,
            digest TEXT NOT NULL,
            aggregation INTEGER NOT NULL,
            PRIMARY KEY (publication, app, dataset)
        );
        """,
    ),
    Migration(
        "0004_request_log_drops",
        """
        -- What an accepted upload dropped (a seed format's undeclared or invalid rows, records, parameters): one
        -- line per reason, with the application and how many items (NULL and 0 on the lines of refused requests).
        ALTER TABLE request_log ADD COLUMN app TEXT;
        ALTER TABLE request_log ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;
        """,
    ),
)
