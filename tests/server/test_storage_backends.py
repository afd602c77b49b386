"""The storage contract, run against both backends: SQLite in ``tmp_path`` and a fresh database on a real
PostgreSQL server (``support.postgres``). One test stores the same arrivals in both and compares everything.
"""

from __future__ import annotations

import datetime
import json
import random
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest
from starlette.testclient import TestClient

from consentry.manifest import Manifest, PluginManifest, load_manifest
from consentry.wire import Activity, Command, DataCategory, Plugin, Report
from consentry_server.app import create_app
from consentry_server.cli import main
from consentry_server.config import ConfigError, Settings
from consentry_server.storage import StorageUnavailable, open_storage
from consentry_server.storage.base import CONTRIBUTION_CAP, AggregateTables, Arrival, RequestLog, Storage, StoreOutcome
from consentry_server.storage.migrations.postgres import POSTGRESQL
from consentry_server.storage.migrations.sqlite import SQLITE
from consentry_server.storage.postgres import PostgreSQLStorage
from consentry_server.storage.sqlite import SQLiteStorage
from support.paths import NAPARI

NAPARI_MANIFEST = load_manifest(NAPARI)
ADD_IMAGE = "napari:layer:add_image"
OCT_31 = datetime.date(2026, 10, 31)
NOV_1 = datetime.date(2026, 11, 1)  # a Sunday
MON = datetime.date(2026, 11, 16)  # a Monday
TUE, WED, SUN = (MON + datetime.timedelta(days=n) for n in (1, 2, 6))
NEXT_MON = MON + datetime.timedelta(days=7)
RECEIVED = datetime.datetime(2026, 12, 1, 12, 30, tzinfo=datetime.timezone.utc)


def report(reporter: int, day: datetime.date, level: str = "basic", **fields: object) -> Report:
    """A napari-like report of ``reporter`` for ``day``; ``fields`` replace any other field."""
    base = Report(
        app="napari-like",
        app_version="1.0.0",
        level=level,
        consent_version=NAPARI_MANIFEST.consent_version,
        reporter=f"{reporter:032x}",
        first_report=False,
        days=(day,),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def arrive(*reports: Report, country: str | None = None) -> list[Arrival]:
    return [Arrival(item, RECEIVED, country) for item in reports]


def store(storage: Storage, *reports: Report, country: str | None = None) -> list[StoreOutcome]:
    outcomes = storage.store_batch(arrive(*reports, country=country))
    assert all(isinstance(outcome, StoreOutcome) for outcome in outcomes), outcomes
    return outcomes  # type: ignore[return-value]


def query(storage: Storage, statement: str) -> list[tuple[object, ...]]:
    """Rows of ``statement``, read through a connection of its own, as another process would."""
    if isinstance(storage, SQLiteStorage):
        db = sqlite3.connect(storage.path)
        try:
            return db.execute(statement).fetchall()
        finally:
            db.close()
    assert isinstance(storage, PostgreSQLStorage)
    with psycopg.connect(storage.url) as connection:
        return connection.execute(statement).fetchall()  # type: ignore[arg-type]


class Notes:
    """A progress callback that keeps the notes."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def __call__(self, note: str, done: int, total: int) -> None:
        assert 0 < done <= total
        self.notes.append(note)


def execute(storage: Storage, statement: str) -> None:
    """Run ``statement`` and commit, through a connection of its own, as another program would."""
    if isinstance(storage, SQLiteStorage):
        db = sqlite3.connect(storage.path)
        try:
            with db:
                db.execute(statement)
        finally:
            db.close()
        return
    assert isinstance(storage, PostgreSQLStorage)
    with psycopg.connect(storage.url) as connection:
        connection.execute(statement)  # type: ignore[arg-type]


def database_url(storage: Storage) -> str:
    """The ``database`` setting that opens ``storage``'s database."""
    return f"sqlite:///{storage.path}" if isinstance(storage, SQLiteStorage) else storage.url  # type: ignore[attr-defined]


def reopen(storage: Storage) -> Storage:
    """A second storage object on the same database."""
    if isinstance(storage, SQLiteStorage):
        return SQLiteStorage(storage.path)
    assert isinstance(storage, PostgreSQLStorage)
    return PostgreSQLStorage(storage.url)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path) -> Iterator[Storage]:
    """A storage of each kind on an empty database, not migrated."""
    storage: Storage
    if request.param == "sqlite":
        storage = SQLiteStorage(tmp_path / "consentry.sqlite3")
    else:
        storage = PostgreSQLStorage(request.getfixturevalue("fresh_postgres_url"))
    try:
        yield storage
    finally:
        storage.close()


@pytest.fixture
def migrated(backend) -> Storage:
    backend.migrate()
    return backend


def register_all(
    storage: Storage,
    manifests: dict[str, Manifest],
    napari_plugins: dict[str, PluginManifest],
    slicer_extensions: dict[str, PluginManifest],
) -> Storage:
    for manifest in [*manifests.values(), *napari_plugins.values(), *slicer_extensions.values()]:
        assert storage.register_manifest(manifest)
    return storage


@pytest.fixture
def registered(migrated, manifests, napari_plugins, slicer_extensions) -> Storage:
    """A migrated storage with the example applications and their plugins registered."""
    return register_all(migrated, manifests, napari_plugins, slicer_extensions)


# ---- migrations, opening -----------------------------------------------------------------------------------
def test_migrate_applies_named_steps_once_and_records_them(backend):
    steps = [migration.name for migration in (SQLITE if isinstance(backend, SQLiteStorage) else POSTGRESQL)]
    assert backend.migrate() == steps
    assert backend.migrate() == []
    again = reopen(backend)
    try:
        assert again.migrate() == []
    finally:
        again.close()
    recorded = sorted(query(backend, "SELECT name, applied_at FROM migrations"))
    assert [name for name, _ in recorded] == sorted(steps)
    for _, applied in recorded:
        when = applied if isinstance(applied, datetime.datetime) else datetime.datetime.fromisoformat(str(applied))
        assert when.tzinfo is not None


def test_postgresql_migrations_run_once_when_several_processes_start_together(fresh_postgres_url):
    storages = [PostgreSQLStorage(fresh_postgres_url) for _ in range(3)]
    results: list[list[str]] = []
    try:
        threads = [threading.Thread(target=lambda s=s: results.append(s.migrate())) for s in storages]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for storage in storages:
            storage.close()
    assert sorted(results, key=len) == [[], [], [migration.name for migration in POSTGRESQL]]


@pytest.mark.parametrize(
    "url", ["postgresql://consentry@127.0.0.1:5432/consentry", "postgres://u:p@db.example.org/consentry"]
)
def test_settings_accept_postgresql_urls(url):
    assert Settings(database=url).postgresql_url == url
    assert Settings(database=url).sqlite_path is None


@pytest.mark.parametrize("url", ["mysql://db/consentry", "postgresql://", "sqlite:///", "consentry.sqlite3"])
def test_settings_refuse_other_database_urls(url):
    with pytest.raises(ConfigError, match="database must be"):
        Settings(database=url)


def test_open_storage_picks_the_backend_from_the_url(tmp_path, fresh_postgres_url):
    for database, kind in (
        (f"sqlite:///{tmp_path / 'a.sqlite3'}", SQLiteStorage),
        (fresh_postgres_url, PostgreSQLStorage),
    ):
        storage = open_storage(Settings(database=database))
        try:
            assert isinstance(storage, kind)
            assert storage.migrate() == []  # migrated on opening
        finally:
            storage.close()


def test_an_unreachable_postgresql_server_is_a_clear_error(postgres_server):
    url = f"postgresql://nobody:secret@127.0.0.1:{postgres_server.port}/no_such_database"
    with pytest.raises(StorageUnavailable, match="cannot connect to PostgreSQL") as caught:
        PostgreSQLStorage(url, connect_timeout=1)
    assert "no_such_database" in str(caught.value)  # PostgreSQL's own reason
    assert "secret" not in str(caught.value)
    assert "\n" not in str(caught.value)  # libpq's message runs over several lines; the operator reads one


# ---- manifests -------------------------------------------------------------------------------------------------
def test_register_manifest_keeps_every_version(migrated, napari, napari_plugins):
    extended = replace(
        napari, events={**napari.events, "napari:new": replace(napari.events[ADD_IMAGE], name="napari:new")}
    )
    assert migrated.register_manifest(napari) is True
    assert migrated.register_manifest(napari) is False
    assert migrated.register_manifest(extended) is True
    assert migrated.register_manifest(napari) is False
    for plugin in napari_plugins.values():
        assert migrated.register_manifest(plugin) is True
        assert migrated.register_manifest(plugin) is False
    catalog = migrated.catalog("napari-like")
    assert catalog is not None
    assert set(catalog.versions) == {napari.consent_version, extended.consent_version}
    assert catalog.latest.consent_version == extended.consent_version
    assert "napari:new" not in catalog.manifest_for(napari.consent_version).events
    assert set(catalog.plugins) == {"napari-blobs", "napari-tracks"}


def test_catalog_and_apps(registered, manifests):
    assert registered.apps() == sorted(manifests)
    for name, manifest in manifests.items():
        catalog = registered.catalog(name)
        assert catalog is not None
        assert catalog.latest.to_document() == manifest.to_document()
        assert catalog.latest.level_names == manifest.level_names
    assert registered.catalog("never-heard-of") is None


def test_a_plugin_alone_does_not_make_an_application(migrated, napari_plugins):
    migrated.register_manifest(napari_plugins["napari-blobs"])
    assert migrated.apps() == []
    assert migrated.catalog("napari-like") is None


# ---- storing -----------------------------------------------------------------------------------------------------
def test_store_batch_tells_stored_duplicate_and_replaced(registered):
    first = report(1, MON, counts={MON: {ADD_IMAGE: 2}})
    assert store(registered, first) == [StoreOutcome("stored", 1)]
    assert store(registered, first) == [StoreOutcome("duplicate", 1)]
    assert store(registered, replace(first, counts={MON: {ADD_IMAGE: 3}})) == [StoreOutcome("replaced", 1)]
    assert registered.report_count() == 1
    [row] = registered.export("napari-like")
    assert row["counters"] == [{"kind": "event", "name": ADD_IMAGE, "n": 3}]


def test_a_report_of_several_days_is_a_row_per_day(registered):
    days = (MON, TUE, WED)
    outcome = store(registered, report(1, MON, days=days, counts={day: {ADD_IMAGE: 1} for day in days}))
    assert outcome == [StoreOutcome("stored", 3)]
    assert registered.report_count() == 3
    assert [row["day"] for row in registered.export("napari-like")] == [day.isoformat() for day in days]


def test_one_failing_arrival_does_not_take_the_batch_with_it(registered):
    good = [report(n, MON) for n in range(4)]
    unregistered = replace(report(9, MON), app="not-registered")
    bad_reporter = replace(report(8, MON), reporter="not hex at all")
    outcomes = registered.store_batch(arrive(good[0], unregistered, good[1], bad_reporter, good[2], good[3]))
    assert [isinstance(outcome, StoreOutcome) for outcome in outcomes] == [True, False, True, False, True, True]
    assert isinstance(outcomes[1], LookupError)
    assert isinstance(outcomes[3], ValueError)
    assert "not-registered" in str(outcomes[1])
    # Committed before store_batch returned: another connection sees exactly the good ones.
    assert query(registered, "SELECT COUNT(*) FROM reports") == [(4,)]


def test_a_text_postgresql_cannot_hold_fails_only_its_arrival(fresh_postgres_url, manifests):
    # Nothing the server stores can hold a NUL character (country codes are looked up, the rest is validated);
    # storage must still keep such a failure to the one arrival.
    storage = PostgreSQLStorage(fresh_postgres_url)
    try:
        storage.migrate()
        storage.register_manifest(manifests["napari-like"])
        arrivals = [*arrive(report(1, MON)), Arrival(report(2, MON), RECEIVED, "D\x00"), *arrive(report(3, MON))]
        outcomes = storage.store_batch(arrivals)
        assert [isinstance(outcome, StoreOutcome) for outcome in outcomes] == [True, False, True]
        assert storage.report_count() == 2
    finally:
        storage.close()


def test_an_empty_batch_is_fine(registered):
    assert registered.store_batch([]) == []


def test_a_failure_after_the_first_day_undoes_the_whole_arrival(registered):
    # A count no database integer holds, on the second day only: the first day is written by then, and the
    # savepoint must undo it too.
    broken = report(1, MON, days=(MON, TUE), counts={MON: {ADD_IMAGE: 1}, TUE: {ADD_IMAGE: 2**64}})
    [outcome] = registered.store_batch(arrive(broken))
    assert isinstance(outcome, Exception)
    assert registered.report_count() == 0
    assert store(registered, report(1, MON)) == [StoreOutcome("stored", 1)]


def test_the_country_is_stored_and_exported(registered):
    store(registered, report(1, MON), country="DE")
    store(registered, report(2, MON))
    assert [(row["reporter"][-1], row["country"]) for row in registered.export("napari-like")] == [
        ("1", "DE"),
        ("2", None),
    ]


def test_concurrent_batches_for_the_same_report_store_it_once(fresh_postgres_url, manifests):
    storages = [PostgreSQLStorage(fresh_postgres_url) for _ in range(4)]
    try:
        storages[0].migrate()
        storages[0].register_manifest(manifests["napari-like"])
        same = [report(n, day, counts={day: {ADD_IMAGE: n + 1}}) for n in range(10) for day in (MON, TUE)]
        orders = [same, same[::-1], same[::2] + same[1::2], same[1::2] + same[::2]]  # no deadlock, whatever the order
        outcomes: list[list[StoreOutcome | Exception]] = []
        threads = [
            threading.Thread(target=lambda s=s, o=o: outcomes.append(s.store_batch(arrive(*o))))
            for s, o in zip(storages, orders, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = [outcome.status for batch in outcomes for outcome in batch]  # type: ignore[union-attr]
        assert statuses.count("stored") == 20
        assert statuses.count("duplicate") == 60
        assert storages[0].report_count() == 20
    finally:
        for storage in storages:
            storage.close()


def test_concurrent_batches_of_overlapping_multi_day_reports_all_get_stored(fresh_postgres_url, manifests):
    # Reports of one reporter covering overlapping days, in batches of several processes at once: their row locks
    # would be taken in opposite orders, and PostgreSQL would end the deadlock by failing one side, but batches
    # with a reporter in common queue up first.
    storages = [PostgreSQLStorage(fresh_postgres_url) for _ in range(4)]
    try:
        storages[0].migrate()
        storages[0].register_manifest(manifests["napari-like"])
        days = [MON + datetime.timedelta(days=n) for n in range(6)]
        spans = [tuple(days[start : start + length]) for start in range(5) for length in (2, 3)]

        def batch(seed: int) -> list[Report]:
            rng = random.Random(seed)
            chosen = [
                report(reporter, span[0], days=span, counts={span[0]: {ADD_IMAGE: rng.randint(1, 9)}})
                for reporter in range(3)
                for span in rng.sample(spans, 6)
            ]
            rng.shuffle(chosen)
            return chosen

        outcomes: list[StoreOutcome | Exception] = []
        lock = threading.Lock()

        def run(storage: PostgreSQLStorage, seed: int) -> None:
            for round_ in range(3):
                result = storage.store_batch(arrive(*batch(seed * 100 + round_)))
                with lock:
                    outcomes.extend(result)

        threads = [threading.Thread(target=run, args=(s, n)) for n, s in enumerate(storages)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [outcome for outcome in outcomes if isinstance(outcome, Exception)] == []
        assert len(outcomes) == 4 * 3 * 18
    finally:
        for storage in storages:
            storage.close()


# ---- deletion ------------------------------------------------------------------------------------------------
def test_delete_reporters_removes_their_rows_and_their_contribution(registered):
    store(registered, *(report(n, day, counts={day: {ADD_IMAGE: 1}}) for n in range(3) for day in (MON, TUE)))
    store(registered, replace(report(1, MON), app="stripepy-like", level="basic"))
    registered.aggregate()
    assert registered.delete_reporters("napari-like", [f"{1:032x}", f"{7:032x}"]) == 2
    assert registered.delete_reporters("napari-like", []) == 0
    assert registered.report_count() == 5  # the stripepy-like report of reporter 1 stays
    assert {row["reporter"] for row in registered.export("napari-like")} == {f"{0:032x}", f"{2:032x}"}
    assert query(registered, "SELECT COUNT(*) FROM counters") == [(4,)]
    tables = registered.aggregate()
    napari_days = {(row.start, row.reporters) for row in tables.installs if row.app == "napari-like"}
    assert napari_days >= {(MON, 2), (TUE, 2)}


# ---- request log and retention ---------------------------------------------------------------------------------
def test_what_accepted_uploads_dropped_is_summed_per_application_and_reason_until_the_lines_expire(registered):
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
    old = now - datetime.timedelta(days=20)
    registered.log_requests(
        [
            RequestLog(now, "/telemetry", 400, "invalid_body", 3),  # a refusal: no application, nothing dropped
            RequestLog(now, "/telemetry", 200, "event_not_in_manifest", 90, app="slicer-like", dropped=2),
            RequestLog(now, "/telemetry", 200, "event_not_in_manifest", 80, app="slicer-like", dropped=3),
            RequestLog(now, "/telemetry", 200, "day_too_old", 80, app="slicer-like", dropped=1),
            RequestLog(old, "/dfx/v1/commands", 200, "command_not_in_manifest", 500, app="dfx", dropped=7),
        ]
    )
    assert registered.dropped() == {
        "slicer-like": {"event_not_in_manifest": 5, "day_too_old": 1},
        "dfx": {"command_not_in_manifest": 7},
    }

    registered.apply_retention(raw_before=WED, logs_before=now - datetime.timedelta(days=14))

    assert registered.dropped() == {"slicer-like": {"event_not_in_manifest": 5, "day_too_old": 1}}
    assert query(registered, "SELECT status, code, app, dropped FROM request_log ORDER BY status, code, dropped") == [
        (200, "day_too_old", "slicer-like", 1),
        (200, "event_not_in_manifest", "slicer-like", 2),
        (200, "event_not_in_manifest", "slicer-like", 3),
        (400, "invalid_body", None, 0),
    ]


def test_a_database_of_the_previous_schema_gets_the_drop_columns_and_keeps_its_log(backend, monkeypatch):
    # A server of the release before drops existed made this database and logged a refusal; the new server
    # migrates it on opening: one step, the old line kept, no application and nothing dropped on it.
    sqlite = isinstance(backend, SQLiteStorage)
    steps, module = (SQLITE, "sqlite") if sqlite else (POSTGRESQL, "postgres")
    new = [index for index, step in enumerate(steps) if step.name.endswith("_request_log_drops")]
    assert new == [len(steps) - 1], "the drops step is the newest: move this test's cut if one is added after it"
    with monkeypatch.context() as previous:
        previous.setattr(f"consentry_server.storage.{module}.{'SQLITE' if sqlite else 'POSTGRESQL'}", steps[:-1])
        assert backend.migrate() == [step.name for step in steps[:-1]]
    execute(
        backend,
        "INSERT INTO request_log (time, route, status, code, size) "
        "VALUES (1796000000, '/telemetry', 400, 'invalid_body', 3)",
    )

    upgraded = reopen(backend)
    try:
        assert upgraded.migrate() == [steps[-1].name]
        assert upgraded.migrate() == []
        assert query(upgraded, "SELECT route, status, code, app, dropped FROM request_log") == [
            ("/telemetry", 400, "invalid_body", None, 0)
        ]
        assert upgraded.dropped() == {}
        now = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
        upgraded.log_requests([RequestLog(now, "/telemetry", 200, "day_too_old", 90, app="slicer-like", dropped=4)])
        assert upgraded.dropped() == {"slicer-like": {"day_too_old": 4}}
    finally:
        upgraded.close()


def test_operators_see_what_uploads_dropped_in_stats_and_apps_list(registered, tmp_path, capsys):
    settings = Settings(
        database=database_url(registered),
        public_database=str(tmp_path / "public.sqlite3"),
        admin_token="backend-tests-token",  # noqa: S106 - a throwaway token for a throwaway server
        slicer_app="slicer-like",
    )
    today = datetime.datetime.now(datetime.timezone.utc).date()
    rows = [
        {"component": "Data", "event": "enter", "day": (today - datetime.timedelta(days=1)).isoformat(), "times": "2"},
        {"component": "Telemetry", "event": "SlicerStartup", "day": today.isoformat(), "times": "1"},
        {"component": "Data", "event": "secret", "day": today.isoformat(), "times": "1"},
        {"component": "Data", "event": "enter", "day": "2001-01-01", "times": "1"},
    ]
    token = {"authorization": f"Bearer {settings.admin_token}"}
    with TestClient(create_app(settings, registered)) as client:
        for _ in range(2):
            answer = client.post("/telemetry", content=json.dumps(rows), headers={"content-type": "application/json"})
            assert answer.json()["partial_success"]["dropped"] == {
                "component_not_in_manifest": 1,
                "day_too_old": 1,
                "event_not_in_manifest": 1,
            }
        assert client.post("/telemetry", content=b"[{", headers={"content-type": "application/json"}).status_code == 400
    with TestClient(create_app(settings, registered)) as client:  # the request log, as written on closing
        stats = client.get("/admin/v1/stats", headers=token).json()

    dropped = {"slicer-like": {"component_not_in_manifest": 2, "day_too_old": 2, "event_not_in_manifest": 2}}
    assert stats["dropped"] == dropped
    assert registered.dropped() == dropped
    assert query(registered, "SELECT count(*) FROM request_log WHERE app IS NULL") == [(1,)]  # the refusal
    assert main(["apps", "list", "--db", settings.database, "--public-db", str(settings.public_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "napari-like  (1 version(s); plugins: napari-blobs, napari-tracks)",
        "slicer-like  (1 version(s); plugins: SlicerIGT, TotalSegmentator)",
        (
            "  dropped from uploads in the request log kept: component_not_in_manifest 2, day_too_old 2, "
            "event_not_in_manifest 2"
        ),
        "stripepy-like  (1 version(s))",
    ]


def test_retention_deletes_raw_rows_and_log_lines_before_the_cut_off_and_keeps_aggregates(registered):
    days = [MON + datetime.timedelta(days=n) for n in range(5)]
    store(registered, *(report(n, day, counts={day: {ADD_IMAGE: 1}}) for day in days for n in range(2)))
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
    registered.log_requests(
        [
            RequestLog(now - datetime.timedelta(days=20), "/v1/reports/basic", 400, "invalid_report", 12),
            RequestLog(now - datetime.timedelta(days=1), "/v1/reports/basic", 429, "rate_limited", 0),
        ]
    )
    before = registered.aggregate()

    result = registered.apply_retention(raw_before=WED, logs_before=now - datetime.timedelta(days=14))

    assert (result.raw_rows, result.log_rows) == (4, 1)
    assert result.partitions == (2 if isinstance(registered, PostgreSQLStorage) else 0)
    assert sorted({row["day"] for row in registered.export("napari-like")}) == [day.isoformat() for day in days[2:]]
    assert query(registered, "SELECT code FROM request_log") == [("rate_limited",)]
    assert registered.aggregates() == before  # aggregates are kept forever
    statistics = registered.statistics()
    assert (statistics["reports"], statistics["counters"], statistics["request_log"]) == (6, 6, 1)

    # A late report for a kept day: its day is recomputed, the week and the month (which lost days) are not.
    store(registered, report(5, WED, counts={WED: {ADD_IMAGE: 1}}))
    after = registered.aggregate()
    changed = set(after.installs) ^ set(before.installs)
    assert {(row.period, row.start, row.reporters) for row in changed} == {("day", WED, 2), ("day", WED, 3)}

    # The horizon never moves back: an earlier cut-off deletes nothing more.
    assert registered.apply_retention(raw_before=MON, logs_before=now - datetime.timedelta(days=30)).raw_rows == 0
    assert registered.report_count() == 7


def test_postgresql_retention_drops_the_partitions_of_whole_days(fresh_postgres_url, manifests):
    storage = PostgreSQLStorage(fresh_postgres_url)
    try:
        storage.migrate()
        storage.register_manifest(manifests["napari-like"])
        store(storage, *(report(1, day) for day in (OCT_31, NOV_1, MON)))

        def partitions() -> list[str]:
            return sorted(
                name
                for (name,) in query(
                    storage,
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent IN ('reports'::regclass, 'facts'::regclass, 'counters'::regclass)",
                )
            )

        assert partitions() == sorted(
            f"{table}_{day:%Y%m%d}" for table in ("reports", "facts", "counters") for day in (OCT_31, NOV_1, MON)
        )
        assert storage.statistics()["partitions"] == 3
        result = storage.apply_retention(raw_before=MON, logs_before=RECEIVED)
        assert (result.raw_rows, result.partitions) == (2, 2)
        assert partitions() == [f"counters_{MON:%Y%m%d}", f"facts_{MON:%Y%m%d}", f"reports_{MON:%Y%m%d}"]
        assert query(storage, "SELECT COUNT(*) FROM pg_class WHERE relname LIKE '%%20261031'") == [(0,)]
    finally:
        storage.close()


def test_postgresql_recreates_a_partition_another_process_dropped(fresh_postgres_url, manifests):
    writer, operator = PostgreSQLStorage(fresh_postgres_url), PostgreSQLStorage(fresh_postgres_url)
    try:
        writer.migrate()
        writer.register_manifest(manifests["napari-like"])
        store(writer, report(1, MON))
        operator.apply_retention(raw_before=TUE, logs_before=RECEIVED)  # drops MON behind the writer's back
        [failed] = writer.store_batch(arrive(report(2, MON)))
        assert isinstance(failed, Exception)
        assert store(writer, report(2, MON)) == [StoreOutcome("stored", 1)]
    finally:
        writer.close()
        operator.close()


# ---- export and statistics -------------------------------------------------------------------------------------
def test_export_gives_every_stored_field(registered):
    rich = report(
        3,
        MON,
        "middle",
        app_version="1.2.0",
        first_report=True,
        system={"os": "linux", "python": "3.12"},
        dependencies={"numpy": "2.1"},
        plugins=(Plugin("napari-blobs", "0.3.0", {MON: {"blobs:detect": 5}}),),
        activity={MON: Activity(runs=2, active_minutes=30)},
    )
    store(registered, rich, country="FR")
    store(registered, report(4, TUE), report(5, WED))
    [row] = registered.export("napari-like", since=MON, until=MON)
    assert row == {
        "app": "napari-like",
        "level": "middle",
        "reporter": f"{3:032x}",
        "day": MON.isoformat(),
        "received": RECEIVED.replace(minute=30).isoformat(),
        "app_version": "1.2.0",
        "first_report": True,
        "country": "FR",
        "facts": {
            "system.os": "linux",
            "system.python": "3.12",
            "dependency.numpy": "2.1",
            "plugin.napari-blobs": "0.3.0",
        },
        "counters": row["counters"],
    }
    assert sorted(row["counters"], key=lambda c: (c["kind"], c["name"])) == [  # type: ignore[arg-type, index]
        {"kind": "active_minutes", "name": "", "n": 30},
        {"kind": "plugin_event", "name": '["napari-blobs","blobs:detect"]', "n": 5},
        {"kind": "runs", "name": "", "n": 2},
    ]
    assert [r["day"] for r in registered.export("napari-like", since=TUE)] == [TUE.isoformat(), WED.isoformat()]
    assert [r["day"] for r in registered.export("napari-like", until=TUE)] == [MON.isoformat(), TUE.isoformat()]
    assert list(registered.export("stripepy-like")) == []


def test_statistics_count_the_rows_of_each_table(registered, manifests, napari_plugins, slicer_extensions):
    store(registered, report(1, MON, counts={MON: {ADD_IMAGE: 1}}, system={"os": "linux"}), report(2, TUE))
    registered.aggregate()
    statistics = registered.statistics()
    assert statistics["apps"] == len(manifests)
    assert statistics["manifests"] == len(manifests) + len(napari_plugins) + len(slicer_extensions)
    assert (statistics["reports"], statistics["facts"], statistics["counters"]) == (2, 1, 1)
    assert statistics["agg_installs"] == 4  # two days, one week, one month
    assert statistics["request_log"] == 0


# ---- aggregation -----------------------------------------------------------------------------------------------
def week_of_reports() -> list[Report]:
    """Basic reports of reporters 0-8 over one ISO week and of 20-21 the week after; full reports of 0-2."""
    reports = [
        report(
            reporter,
            day,
            system={"os": "linux" if reporter < 3 else "macos"},
            app_version="1.1.0" if reporter == 4 else "1.0.0",
            first_report=(reporter, day) == (0, MON),
            activity={day: Activity(runs=1, active_minutes=20)},
        )
        for day, reporters in ((MON, range(5)), (TUE, range(3, 8)), (SUN, [8]), (NEXT_MON, [20, 21]))
        for reporter in reporters
    ]
    full = {(0, MON): 3, (1, MON): 3, (2, MON): 3 * CONTRIBUTION_CAP, (0, TUE): 4}
    for (reporter, day), n in full.items():
        command = Command(day, "napari:open", "1-10s", 1, 2, {"format": "tif", "verbose": True})
        reports.append(report(reporter, day, "full", counts={day: {ADD_IMAGE: n}}, commands=(command,)))
    return reports


@pytest.fixture
def week(registered) -> Storage:
    for item in week_of_reports():
        store(registered, item, country="DE" if int(item.reporter, 16) % 2 == 0 else None)
    registered.aggregate()
    return registered


def installs(tables: AggregateTables, level: str = "basic") -> dict[tuple[str, datetime.date], int]:
    return {(row.period, row.start): row.reporters for row in tables.installs if row.level == level}


def test_installs_are_distinct_reporters_per_day_week_and_month(week):
    tables = week.aggregates()
    assert installs(tables) == {
        ("day", MON): 5,
        ("day", TUE): 5,
        ("day", SUN): 1,
        ("day", NEXT_MON): 2,
        ("week", MON): 9,
        ("week", NEXT_MON): 2,
        ("month", NOV_1): 9,  # the largest weekly count, not 11: ids change every week, installs do not
    }
    assert installs(tables, "full") == {("day", MON): 3, ("day", TUE): 1, ("week", MON): 3, ("month", NOV_1): 3}
    new = {(row.period, row.start): row.new_installs for row in tables.installs if row.level == "basic"}
    assert new[("day", MON)] == new[("week", MON)] == new[("month", NOV_1)] == 1
    assert new[("day", TUE)] == 0


def test_event_totals_are_capped_per_reporter_and_day(week):
    totals = {
        (row.period, row.start): (row.total, row.reporters)
        for row in week.aggregates().counters
        if row.kind == "event" and row.name == ADD_IMAGE
    }
    assert totals == {
        ("day", MON): (6 + CONTRIBUTION_CAP, 3),
        ("day", TUE): (4, 1),
        ("week", MON): (10 + CONTRIBUTION_CAP, 3),
        ("month", NOV_1): (10 + CONTRIBUTION_CAP, 3),
    }


def test_derived_counters_of_commands_and_activity(week):
    day = {
        (row.kind, row.name): (row.total, row.reporters)
        for row in week.aggregates().counters
        if row.period == "day" and row.start == MON
    }
    assert day[("runs", "")] == (5, 5)
    assert day[("active_minutes", "")] == (100, 5)
    assert day[("command_runs", "napari:open")] == (6, 3)
    assert day[("command_failed", "napari:open")] == (6, 3)
    assert day[("command_duration", '["napari:open","1-10s"]')] == (6, 3)
    assert day[("command_param", '["napari:open","format","tif"]')] == (6, 3)
    assert day[("command_param", '["napari:open","verbose","given"]')] == (6, 3)


def test_distributions_count_distinct_reporters_including_country_and_version(week):
    values = {(row.period, row.start, row.field, row.value): row.reporters for row in week.aggregates().values}
    assert values[("day", MON, "system.os", "linux")] == 3
    assert values[("day", MON, "system.os", "macos")] == 2
    assert values[("week", MON, "system.os", "macos")] == 6
    assert values[("day", MON, "app_version", "1.0.0")] == 4
    assert values[("day", MON, "app_version", "1.1.0")] == 1
    assert values[("day", MON, "country", "DE")] == 3  # reporters 0, 2 and 4
    assert values[("week", MON, "country", "DE")] == 5  # 0, 2, 4, 6 and 8
    assert values[("month", NOV_1, "country", "DE")] == 5  # the largest weekly count (20 is the only other)
    assert ("day", TUE, "country", None) not in values


def test_plugin_events_keep_the_plugin_as_scope(registered):
    plugin = Plugin("napari-blobs", "0.3.0", {MON: {"blobs:detect": 5}})
    store(registered, report(1, MON, "middle", plugins=(plugin,)))
    [row] = [row for row in registered.aggregate().counters if row.period == "day" and row.kind == "plugin_event"]
    assert (row.scope, row.name, row.total, row.reporters) == ("napari-blobs", "blobs:detect", 5, 1)


def test_aggregation_is_incremental_and_idempotent(week):
    before = week.aggregates()
    notes = Notes()
    assert week.aggregate(notes) == before
    assert notes.notes == []  # nothing changed, nothing recomputed

    store(week, report(30, TUE))
    after = week.aggregate(notes)
    assert notes.notes == [f"day {TUE.isoformat()}", f"month {NOV_1.isoformat()}", f"week {MON.isoformat()}"]
    assert installs(after)[("day", TUE)] == 6
    assert installs(after)[("week", MON)] == 10

    # Deleting and storing the same reports again changes nothing once aggregated again.
    week.delete_reporters("napari-like", [f"{30:032x}"])
    week.aggregate()
    assert week.aggregates() == before


def test_long_names_are_stored_and_aggregated(registered):
    params: dict[str, str | bool] = {f"p{n:02d}-{'x' * 60}": "v" * 64 for n in range(64)}
    command = Command(MON, "napari:open", "1-10s", 0, 1, params)
    store(registered, report(1, MON, "full", commands=(command,)))
    [row] = [row for row in registered.aggregate().counters if row.kind == "command" and row.period == "day"]
    assert len(row.name) > 8000
    assert row.total == 1


# ---- the same arrivals in both backends --------------------------------------------------------------------------
def random_arrivals(seed: int, count: int) -> list[Arrival]:
    """A varied, reproducible mix: levels, countries, versions, plugins, commands, data, big counts, repeats."""
    rng = random.Random(seed)
    days = [datetime.date(2026, 10, 20) + datetime.timedelta(days=n) for n in range(30)]  # across a month's end
    arrivals = []
    for _ in range(count):
        reporter = rng.randrange(40)
        covered = tuple(sorted(rng.sample(days, rng.choice((1, 1, 1, 2, 3)))))
        level = rng.choice(("basic", "middle", "full"))
        counts = {
            day: {ADD_IMAGE: rng.choice((1, 5, 50, 2 * CONTRIBUTION_CAP))} for day in covered if rng.random() < 0.8
        }
        plugins = ()
        if level != "basic" and rng.random() < 0.5:
            plugins = (
                Plugin(
                    rng.choice(("napari-blobs", "napari-tracks")), rng.choice(("0.1", "0.2")), {covered[0]: {"x:y": 3}}
                ),
            )
        commands = tuple(
            Command(
                day,
                rng.choice(("open", "save")),
                rng.choice(("<1s", "1-10s")),
                rng.choice((0, 0, 1)),
                rng.randint(1, 9),
                {"fmt": rng.choice(("tif", "png", True, False))},
                rng.choice((None, "ValueError")),
            )
            for day in covered
            if level == "full" and rng.random() < 0.6
        )
        data = tuple(
            DataCategory(
                day, "image", "ndarray", "uint8", rng.choice((2, 3)), rng.choice(("SMALL", "LARGE")), rng.randint(1, 4)
            )
            for day in covered
            if level == "full" and rng.random() < 0.4
        )
        item = report(
            reporter,
            covered[0],
            level,
            days=covered,
            app_version=rng.choice(("1.0.0", "1.1.0", "2.0.0")),
            first_report=rng.random() < 0.1,
            system={"os": rng.choice(("linux", "macos", "windows")), "python": rng.choice(("3.11", "3.12"))},
            counts=counts,
            activity={day: Activity(runs=rng.randint(0, 3), active_minutes=rng.choice((0, 10, 20))) for day in covered},
            exceptions={covered[-1]: {"KeyError": 1}} if rng.random() < 0.2 else {},
            plugins=plugins,
            commands=commands,
            data=data,
        )
        arrivals.append(Arrival(item, RECEIVED, rng.choice((None, "DE", "FR", "JP"))))
        if rng.random() < 0.1:
            arrivals.append(rng.choice(arrivals))  # sent again: a duplicate, unless replaced in between
    return arrivals


def test_both_backends_give_identical_results_for_identical_arrivals(
    tmp_path, fresh_postgres_url, manifests, napari_plugins, slicer_extensions
):
    arrivals = random_arrivals(seed=4, count=400)
    backends: list[Storage] = [SQLiteStorage(tmp_path / "consentry.sqlite3"), PostgreSQLStorage(fresh_postgres_url)]
    try:
        results = []
        for storage in backends:
            storage.migrate()
            register_all(storage, manifests, napari_plugins, slicer_extensions)
            outcomes = []
            notes = Notes()
            # In batches, aggregating in between (incremental), deleting a few reporters and expiring a day.
            for start in range(0, len(arrivals), 50):
                outcomes += storage.store_batch(arrivals[start : start + 50])
                if start % 150 == 0:
                    storage.aggregate(notes)
            storage.delete_reporters("napari-like", [f"{n:032x}" for n in (3, 4)])
            retention = storage.apply_retention(raw_before=datetime.date(2026, 10, 22), logs_before=RECEIVED)
            tables = storage.aggregate(notes)
            # Within a day, rows come in the order they were written, which may differ: compare them sorted.
            exported = sorted(
                (
                    {**row, "counters": sorted(row["counters"], key=lambda c: (c["kind"], c["name"]))}  # type: ignore[arg-type, index]
                    for row in storage.export("napari-like")
                ),
                key=lambda row: (row["day"], row["level"], row["reporter"]),  # type: ignore[arg-type, return-value]
            )
            statistics = storage.statistics()
            results.append((outcomes, notes.notes, retention.raw_rows, tables, exported, statistics))
        (sqlite, postgresql) = results
        assert [repr(outcome) for outcome in sqlite[0]] == [repr(outcome) for outcome in postgresql[0]]
        assert {getattr(outcome, "status", None) for outcome in sqlite[0]} == {"stored", "replaced", "duplicate"}
        assert sqlite[1] == postgresql[1]
        assert sqlite[2] == postgresql[2] > 0
        for name in ("installs", "counters", "values"):
            assert getattr(sqlite[3], name) == getattr(postgresql[3], name), name
        assert len(sqlite[3].counters) > 500
        assert sqlite[4] == postgresql[4]
        assert {key: postgresql[5][key] for key in sqlite[5]} == sqlite[5]
        assert backends[0].aggregates() == backends[1].aggregates()
    finally:
        for storage in backends:
            storage.close()


def test_new_installs_are_unknown_where_a_reporter_could_not_tell_whether_it_was_new(registered):
    # An OTLP export or a seed-format upload makes a report with first_report false because it cannot tell, not
    # because the install is known: the new installs of the periods it falls in are unknown, never a count that
    # leaves it out. Periods without such a report keep their count.
    for item in week_of_reports():
        store(registered, item)
    export = report(40, TUE, app_version="1.0.0")
    [outcome] = registered.store_batch([Arrival(export, RECEIVED, None, first_report_known=False)])
    assert isinstance(outcome, StoreOutcome)
    registered.aggregate()
    tables = registered.aggregates()
    new = {(row.period, row.start, row.level): row.new_installs for row in tables.installs}
    assert new[("day", MON, "basic")] == 1  # reporter 0's first report; no export that day
    assert new[("day", TUE, "basic")] is None
    assert new[("week", MON, "basic")] is None
    assert new[("week", MON, "full")] is None  # the marker is the application's, whatever the level
    assert new[("month", NOV_1, "basic")] is None
    assert new[("week", NEXT_MON, "basic")] == 0  # a week of native reports only: known, and none was new
    assert installs(tables)[("week", MON)] == 10  # the export is still an active reporter
