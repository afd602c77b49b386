"""The PostgreSQL schema, as named, recorded steps (see :mod:`consentry_server.storage.migrations` for the rules).

The same rows as SQLite's (:mod:`.rows`), with these differences:

- ``reports``, ``facts`` and ``counters`` are partitioned by ``day`` (``PARTITION BY RANGE``), one partition per
  day named ``<table>_YYYYMMDD``, created when a report for that day first arrives; retention detaches and drops
  whole partitions. ``facts`` and ``counters`` carry the day of their report for that reason, and refer to it by
  ``(day, report_id)``;
- the primary key of ``reports`` starts with the reporter, which serves both idempotent stores and deletions;
- days to aggregate again are marked in ``dirty_days`` once per batch (``ON CONFLICT DO NOTHING``, so concurrent
  writers never wait on one another's mark); aggregation moves them to ``aggregating_days`` under a short table
  lock before it reads any report, and clears them once their buckets are written, so a crash loses nothing;
- aggregates refer to interned names too (a name may be longer than a B-tree entry), and text that is sorted
  uses the ``"C"`` collation: byte order, as in SQLite, whatever the locale of the database.
"""

from __future__ import annotations

from collections.abc import Sequence

from consentry_server.storage.migrations import Migration

__all__ = ["PARTITIONED", "POSTGRESQL"]

#: Tables partitioned by day, in the order their partitions are dropped (the referring ones first).
PARTITIONED = ("counters", "facts", "reports")

POSTGRESQL: Sequence[Migration] = (
    Migration(
        "0001_initial",
        """
        CREATE TABLE apps (
            id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name text COLLATE "C" NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        -- Every version of every manifest, application or plugin, as registered (text: the order of the levels
        -- in the document is meaningful, and jsonb would not keep it).
        CREATE TABLE manifests (
            id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            app_id integer NOT NULL REFERENCES apps (id),
            plugin text COLLATE "C" NOT NULL DEFAULT '',
            consent_version text NOT NULL,
            document text NOT NULL,
            registered_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (app_id, plugin, consent_version)
        );
        -- Interned strings (levels, versions, event names, countries...), so counter rows stay a few integers
        -- long. Unique by digest: a command with many parameters has a name longer than a B-tree entry may be.
        CREATE TABLE names (
            id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name text COLLATE "C" NOT NULL
        );
        CREATE UNIQUE INDEX names_by_digest ON names (md5(name));
        CREATE SEQUENCE report_ids AS bigint;
        -- One row per report and day covered: the unit of idempotency and of retention. received: Unix seconds.
        CREATE TABLE reports (
            day integer NOT NULL,
            id bigint NOT NULL DEFAULT nextval('report_ids'),
            app_id integer NOT NULL,
            level_id integer NOT NULL,
            reporter bytea NOT NULL,
            digest bytea NOT NULL,
            received bigint NOT NULL,
            app_version_id integer NOT NULL,
            first_report boolean NOT NULL,
            country_id integer,
            PRIMARY KEY (reporter, app_id, level_id, day)
        ) PARTITION BY RANGE (day);
        -- System fields, dependency and plugin versions of a report row.
        CREATE TABLE facts (
            day integer NOT NULL,
            report_id bigint NOT NULL,
            key_id integer NOT NULL,
            value_id integer NOT NULL,
            PRIMARY KEY (day, report_id, key_id)
        ) PARTITION BY RANGE (day);
        CREATE TABLE counters (
            day integer NOT NULL,
            report_id bigint NOT NULL,
            kind smallint NOT NULL,
            name_id integer NOT NULL,
            n bigint NOT NULL,
            PRIMARY KEY (day, report_id, kind, name_id)
        ) PARTITION BY RANGE (day);
        -- Days whose reports changed since they were last taken for aggregation, and days being aggregated.
        CREATE TABLE dirty_days (day integer PRIMARY KEY);
        CREATE TABLE aggregating_days (day integer PRIMARY KEY);
        -- Refused requests, for operators: no address, no payload. time: Unix seconds.
        CREATE TABLE request_log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            time bigint NOT NULL,
            route text NOT NULL,
            status integer NOT NULL,
            code text NOT NULL,
            size bigint NOT NULL
        );
        CREATE INDEX request_log_by_time ON request_log (time);
        -- Small facts about the store itself: raw_horizon is the first day whose raw reports are still kept.
        CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
        -- Aggregates, kept forever (raw reports are not), with names interned like the raw rows'. Periods: 'day',
        -- 'week' (ISO), 'month'; start: its first day, in days since 1970-01-01.
        CREATE TABLE agg_installs (
            app_id integer NOT NULL,
            period text COLLATE "C" NOT NULL,
            start integer NOT NULL,
            level_id integer NOT NULL,
            reporters bigint NOT NULL,
            new_installs bigint NOT NULL,
            PRIMARY KEY (period, start, app_id, level_id)
        );
        CREATE TABLE agg_counters (
            app_id integer NOT NULL,
            period text COLLATE "C" NOT NULL,
            start integer NOT NULL,
            kind smallint NOT NULL,
            name_id integer NOT NULL,
            total bigint NOT NULL,
            reporters bigint NOT NULL,
            PRIMARY KEY (period, start, app_id, kind, name_id)
        );
        CREATE TABLE agg_values (
            app_id integer NOT NULL,
            period text COLLATE "C" NOT NULL,
            start integer NOT NULL,
            field_id integer NOT NULL,
            value_id integer NOT NULL,
            reporters bigint NOT NULL,
            PRIMARY KEY (period, start, app_id, field_id, value_id)
        );
        """,
    ),
    Migration(
        "0002_privacy_ledger",
        """
        -- The privacy ledger (consentry_server.publish.ledger): one row per release of a published table of an
        -- application, kept forever. No raw data: parameters, how many numbers were released, a digest of the
        -- rows as published and the aggregation run they came from (meta key 'aggregations' counts the runs).
        CREATE TABLE privacy_ledger (
            publication integer NOT NULL,
            released_at timestamptz NOT NULL,
            app text COLLATE "C" NOT NULL,
            dataset text COLLATE "C" NOT NULL,
            k integer NOT NULL,
            mechanism text NOT NULL,
            epsilon_per_number double precision,
            numbers bigint NOT NULL,
            epsilon double precision,
            delta double precision,
            reporter_cap integer NOT NULL,
            total_cap_per_day bigint,
            digest text NOT NULL,
            aggregation bigint NOT NULL,
            PRIMARY KEY (publication, app, dataset)
        );
        """,
    ),
    Migration(
        "0003_request_log_drops",
        """
        -- What an accepted upload dropped (a seed format's undeclared or invalid rows, records, parameters): one
        -- line per reason, with the application and how many items (NULL and 0 on the lines of refused requests).
        ALTER TABLE request_log ADD COLUMN app text COLLATE "C", ADD COLUMN dropped bigint NOT NULL DEFAULT 0;
        """,
    ),
)
