"""SQLite storage (migrations, manifests, reports, aggregation) and publication with small-count suppression."""

from __future__ import annotations

import datetime
import sqlite3
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.manifest import load_manifest
from consentry.wire import Activity, Plugin, Report
from consentry_server.publish.release import publish
from consentry_server.storage import (
    AggregateTables,
    InstallRow,
    PublicStore,
    SQLiteStorage,
)
from consentry_server.storage.base import CONTRIBUTION_CAP, store_report
from consentry_server.storage.migrations.sqlite import SQLITE
from consentry_server.storage.public import AppInfo, Publication

ROOT = Path(__file__).resolve().parents[2]
NAPARI = load_manifest(ROOT / "examples" / "consentry_examples" / "napari_like" / "manifest.toml")
MON = datetime.date(2026, 11, 16)  # a Monday
TUE, SUN, NEXT_MON = MON + datetime.timedelta(days=1), MON + datetime.timedelta(days=6), MON + datetime.timedelta(7)
MONTH = datetime.date(2026, 11, 1)
RECEIVED = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
ADD_IMAGE = "napari:layer:add_image"
AGGREGATE_TABLES = ("agg_installs", "agg_counters", "agg_values")


def napari_report(reporter: int, day: datetime.date, level: str = "basic", **fields: object) -> Report:
    report = Report(
        app="napari-like",
        app_version="1.0.0",
        level=level,
        consent_version=NAPARI.consent_version,
        reporter=f"{reporter:032x}",
        first_report=False,
        days=(day,),
    )
    return replace(report, **fields)  # type: ignore[arg-type]


def store(storage: SQLiteStorage, *reports: Report) -> None:
    for report in reports:
        store_report(storage, report, received=RECEIVED)


def table_rows(path: Path, tables: tuple[str, ...]) -> dict[str, list[tuple[object, ...]]]:
    db = sqlite3.connect(path)
    try:
        return {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall()) for table in tables}  # noqa: S608
    finally:
        db.close()


def execute(path: Path, *statements: str, params: tuple[object, ...] = ()) -> None:
    """Run SQL on the database file through a connection of its own, as another process would."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            db.execute(statement, params)
    finally:
        db.close()


# ---- migrations ------------------------------------------------------------------------------------------------
def test_migrations_are_recorded_and_applied_once(tmp_path):
    path = tmp_path / "consentry.sqlite3"
    storage = SQLiteStorage(path)
    try:
        assert storage.migrate() == [migration.name for migration in SQLITE]
        assert storage.migrate() == []
    finally:
        storage.close()
    recorded = table_rows(path, ("migrations",))["migrations"]
    assert [name for name, _ in recorded] == [migration.name for migration in SQLITE]
    assert all(datetime.datetime.fromisoformat(str(applied)).tzinfo for _, applied in recorded)

    reopened = SQLiteStorage(path)
    try:
        assert reopened.migrate() == []
    finally:
        reopened.close()
    assert table_rows(path, ("migrations",))["migrations"] == recorded


def test_a_migrated_database_has_the_documented_tables(storage):
    db = sqlite3.connect(storage.path)
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (journal,) = db.execute("PRAGMA journal_mode").fetchone()
    finally:
        db.close()
    expected = {"migrations", "apps", "manifests", "names", "reports", "facts", "counters", "dirty_days"}
    assert expected | set(AGGREGATE_TABLES) <= tables
    assert journal == "wal"


# ---- manifests -------------------------------------------------------------------------------------------------
def test_register_manifest_keeps_every_version(empty_storage, napari, napari_plugins):
    extended = replace(
        napari, events={**napari.events, "napari:new": replace(napari.events[ADD_IMAGE], name="napari:new")}
    )
    assert extended.consent_version != napari.consent_version

    assert empty_storage.register_manifest(napari) is True
    assert empty_storage.register_manifest(napari) is False
    assert empty_storage.register_manifest(extended) is True
    assert empty_storage.register_manifest(napari) is False  # an older version again is still a repeat
    for plugin in napari_plugins.values():
        assert empty_storage.register_manifest(plugin) is True
        assert empty_storage.register_manifest(plugin) is False

    catalog = empty_storage.catalog("napari-like")
    assert catalog is not None
    assert set(catalog.versions) == {napari.consent_version, extended.consent_version}
    assert catalog.latest.consent_version == extended.consent_version
    assert "napari:new" in catalog.latest.events
    assert "napari:new" not in catalog.manifest_for(napari.consent_version).events
    assert catalog.manifest_for("0000000000000000") is catalog.latest
    assert set(catalog.plugins) == {"napari-blobs", "napari-tracks"}
    assert catalog.plugins["napari-blobs"].events.keys() == napari_plugins["napari-blobs"].events.keys()
    assert catalog.is_public_plugin("napari-blobs")
    assert not catalog.is_public_plugin("napari-unknown")


def test_the_catalog_round_trips_the_manifests(storage, manifests):
    for name, manifest in manifests.items():
        catalog = storage.catalog(name)
        assert catalog is not None
        assert catalog.app == name
        assert catalog.latest.to_document() == manifest.to_document()
        assert catalog.latest.consent_version == manifest.consent_version
        assert catalog.latest.level_names == manifest.level_names


def test_apps_lists_only_applications_with_an_application_manifest(empty_storage, napari_plugins, stripepy):
    empty_storage.register_manifest(napari_plugins["napari-blobs"])  # a plugin whose host is not registered
    empty_storage.register_manifest(stripepy)
    assert empty_storage.apps() == ["stripepy-like"]
    assert empty_storage.catalog("napari-like") is None
    assert empty_storage.catalog("never-heard-of") is None


def test_storing_a_report_of_an_unregistered_application_fails_and_stores_nothing(empty_storage):
    with pytest.raises(LookupError):
        store(empty_storage, napari_report(1, MON))
    assert empty_storage.report_count() == 0


# ---- aggregation -----------------------------------------------------------------------------------------------
def week_of_reports() -> list[Report]:
    """Basic reports of reporters 0-8 over one ISO week and 0-1 the week after; full reports of 0-2."""
    reports = []
    for day, reporters in ((MON, range(5)), (TUE, range(3, 8)), (SUN, [8]), (NEXT_MON, [0, 1])):
        for reporter in reporters:
            os = "linux" if reporter < 3 else "macos"
            activity = {day: Activity(runs=1, active_minutes=20)}
            reports.append(napari_report(reporter, day, system={"os": os}, activity=activity))
    full = {(0, MON): 3, (1, MON): 3, (2, MON): 3 * CONTRIBUTION_CAP, (0, TUE): 4}
    for (reporter, day), n in full.items():
        reports.append(napari_report(reporter, day, "full", counts={day: {ADD_IMAGE: n}}))
    return reports


@pytest.fixture
def week(storage) -> SQLiteStorage:
    store(storage, *week_of_reports())
    storage.aggregate()
    return storage


def installs(tables: AggregateTables, level: str = "basic") -> dict[tuple[str, datetime.date], int]:
    return {(row.period, row.start): row.reporters for row in tables.installs if row.level == level}


def test_installs_are_distinct_reporters_per_day_and_per_iso_week(week):
    assert installs(week.aggregates()) == {
        ("day", MON): 5,
        ("day", TUE): 5,
        ("day", SUN): 1,
        ("day", NEXT_MON): 2,
        ("week", MON): 9,  # reporters 0-8, those of Monday and Tuesday counted once
        ("week", NEXT_MON): 2,
        ("month", MONTH): 9,  # the largest weekly count: ids change every week, installs do not
    }
    assert installs(week.aggregates(), "full") == {
        ("day", MON): 3,
        ("day", TUE): 1,
        ("week", MON): 3,
        ("month", MONTH): 3,
    }


def test_event_totals_are_capped_per_reporter_and_day_and_reporters_counted_distinctly(week):
    rows = {(row.period, row.start): row for row in week.aggregates().counters if row.name == ADD_IMAGE}
    assert {key: (row.total, row.reporters) for key, row in rows.items()} == {
        ("day", MON): (3 + 3 + CONTRIBUTION_CAP, 3),
        ("day", TUE): (4, 1),
        ("week", MON): (3 + 3 + CONTRIBUTION_CAP + 4, 3),
        ("month", MONTH): (3 + 3 + CONTRIBUTION_CAP + 4, 3),
    }
    assert {row.kind for row in rows.values()} == {"event"}


def test_activity_is_summed_per_period(week):
    runs = {
        (row.period, row.start): (row.total, row.reporters) for row in week.aggregates().counters if row.kind == "runs"
    }
    assert runs[("week", MON)] == (11, 9)
    assert runs[("day", TUE)] == (5, 5)


def test_distributions_count_distinct_reporters(week):
    values = {(row.period, row.start, row.field, row.value): row.reporters for row in week.aggregates().values}
    assert values[("day", MON, "system.os", "linux")] == 3
    assert values[("day", MON, "system.os", "macos")] == 2
    assert values[("week", MON, "system.os", "linux")] == 3
    assert values[("week", MON, "system.os", "macos")] == 6
    # Reporters 0-2 sent basic and full reports: each is one install of version 1.0.0.
    assert values[("week", MON, "app_version", "1.0.0")] == 9


def test_plugin_event_counters_keep_the_plugin_as_scope(storage):
    plugin = Plugin("napari-blobs", "0.3.0", {MON: {"detect": 2}})
    store(storage, napari_report(1, MON, "full", plugins=(plugin,)), napari_report(2, MON, "full", plugins=(plugin,)))
    rows = [row for row in storage.aggregate().counters if row.kind == "plugin_event" and row.period == "day"]
    assert [(row.scope, row.name, row.total, row.reporters) for row in rows] == [("napari-blobs", "detect", 4, 2)]


def test_aggregation_is_idempotent(week):
    first = table_rows(week.path, AGGREGATE_TABLES)
    assert week.aggregate() == week.aggregates()
    assert table_rows(week.path, AGGREGATE_TABLES) == first
    # Every bucket recomputed from the same raw rows gives the same numbers.
    execute(week.path, "INSERT INTO dirty_days (day) SELECT DISTINCT day FROM reports")
    week.aggregate()
    assert table_rows(week.path, AGGREGATE_TABLES) == first


def test_aggregating_after_each_report_equals_aggregating_once(week, tmp_path):
    incremental = SQLiteStorage(tmp_path / "incremental.sqlite3")
    try:
        incremental.migrate()
        incremental.register_manifest(NAPARI)
        for report in week_of_reports():
            store(incremental, report)
            incremental.aggregate()
        assert incremental.aggregates() == week.aggregates()
    finally:
        incremental.close()


def test_aggregation_recomputes_only_the_buckets_of_changed_days(week):
    assert table_rows(week.path, ("dirty_days",)) == {"dirty_days": []}
    store(week, napari_report(3, NEXT_MON + datetime.timedelta(days=1)))
    dirty = table_rows(week.path, ("dirty_days",))["dirty_days"]
    assert len(dirty) == 1

    # Raw reports of the first week expire. The month they belong to is left as it was: recomputing it from
    # what is left would lose them.
    week.apply_retention(raw_before=NEXT_MON, logs_before=RECEIVED)
    assert week.report_count() == 3
    before = week.aggregates()
    after = week.aggregate()

    assert {key: n for key, n in installs(after).items() if key[1] < NEXT_MON} == {
        key: n for key, n in installs(before).items() if key[1] < NEXT_MON
    }
    assert installs(after)[("week", MON)] == 9
    assert installs(after)[("week", NEXT_MON)] == 3
    assert installs(after)[("day", NEXT_MON + datetime.timedelta(days=1))] == 1
    assert [row for row in after.counters if row.start < NEXT_MON] == [
        row for row in before.counters if row.start < NEXT_MON
    ]
    assert table_rows(week.path, ("dirty_days",)) == {"dirty_days": []}


def test_a_report_stored_while_aggregation_runs_is_aggregated_by_the_next_run(storage):
    """``consentry-server aggregate`` runs beside a serving process that keeps storing reports."""
    store(storage, napari_report(1, MON))
    server = SQLiteStorage(storage.path)  # the serving process's own connection
    try:

        def progress(_note: str, done: int, _total: int) -> None:
            if done == 1:  # the day buckets are done, the week buckets are not
                store(server, napari_report(2, MON))

        storage.aggregate(progress)
        assert server.report_count() == 2
        tables = storage.aggregate()
    finally:
        server.close()
    assert installs(tables)[("week", MON)] == 2
    assert installs(tables)[("day", MON)] == 2, "the day bucket lost a report stored during aggregation"


# ---- publication -----------------------------------------------------------------------------------------------
def test_retention_while_aggregation_runs_never_shrinks_a_bucket(week):
    """The server's retention task (another connection) deletes raw rows between two buckets of an aggregation."""
    store(week, napari_report(9, MON), napari_report(9, TUE))  # Monday, Tuesday, their week and month are dirty
    retention = SQLiteStorage(week.path)
    try:

        def progress(_note: str, done: int, _total: int) -> None:
            if done == 1:  # Monday is recomputed; then Monday's raw reports expire
                retention.apply_retention(raw_before=TUE, logs_before=RECEIVED)

        tables = week.aggregate(progress)
    finally:
        retention.close()
    # The week and month lost Monday's raw rows before their turn: they keep what the last complete run gave
    # them, instead of being recomputed from Tuesday alone (5 + 1 reporters, not 9).
    assert installs(tables)[("week", MON)] == 9
    assert installs(tables)[("month", MONTH)] == 9
    assert installs(tables)[("day", MON)] == 6
    assert installs(tables)[("day", TUE)] == 6


def test_a_first_report_over_several_days_is_one_new_install(storage):
    store(storage, napari_report(1, MON, first_report=True, days=(MON, TUE, SUN)), napari_report(2, TUE))
    new = {(row.period, row.start): row.new_installs for row in storage.aggregate().installs}
    assert new == {("day", MON): 1, ("day", TUE): 0, ("day", SUN): 0, ("week", MON): 1, ("month", MONTH): 1}
    assert [row["first_report"] for row in storage.export("napari-like") if row["reporter"] == f"{1:032x}"] == [
        True,
        False,
        False,
    ]


def test_export_lists_facts_and_counters_in_a_stable_order(storage):
    counts = {MON: {"napari:layer:add_points": 1, ADD_IMAGE: 2}}
    store(storage, napari_report(1, MON, "full", counts=counts, system={"python": "3.12", "os": "linux"}))
    [row] = storage.export("napari-like")
    assert [(counter["kind"], counter["name"]) for counter in row["counters"]] == [
        ("event", ADD_IMAGE),
        ("event", "napari:layer:add_points"),
    ]
    assert list(row["facts"]) == sorted(row["facts"])


def published_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    return table_rows(path, ("installs", "counters", '"values"'))


def test_publish_suppresses_rows_below_the_threshold(week, tmp_path):
    public = PublicStore(tmp_path / "public" / "public.sqlite3")
    publication = publish(week, public, threshold=5, now=RECEIVED)

    assert {(row.period, row.start, row.level) for row in publication.installs} == {
        ("day", MON, "basic"),
        ("day", TUE, "basic"),
        ("week", MON, "basic"),
        ("month", MONTH, "basic"),
    }
    assert all(row.reporters >= 5 for row in [*publication.installs, *publication.counters, *publication.values])
    assert not [row for row in publication.counters if row.name == ADD_IMAGE]  # 3 reporters at most
    assert {key: public.meta()[key] for key in ("format", "threshold", "published_at")} == {
        "format": "1",
        "threshold": "5",
        "published_at": RECEIVED.isoformat(),
    }
    assert [app.name for app in public.apps()] == ["napari-like", "slicer-like", "stripepy-like"]
    assert public.apps()[0].title == "Napari-like viewer"
    assert public.installs("napari-like", "week") == [
        {"start": MON.isoformat(), "level": "basic", "reporters": 9, "new_installs": 0}
    ]
    rows = published_rows(public.path)
    assert min(reporters for *_, reporters, _new in rows["installs"]) >= 5
    assert min(row[-1] for row in rows['"values"']) >= 5


def test_a_threshold_of_one_publishes_everything(week, tmp_path):
    publication = publish(week, PublicStore(tmp_path / "public.sqlite3"), threshold=1)
    aggregates = week.aggregates()
    assert len(publication.installs) == len(aggregates.installs)
    assert len(publication.counters) == len(aggregates.counters)
    assert len(publication.values) == len(aggregates.values)


@st.composite
def uploads(draw: st.DrawFn) -> list[Report]:
    """Reports of up to 12 reporters over two weeks, at two levels."""
    entries = draw(
        st.dictionaries(
            st.tuples(st.integers(0, 11), st.integers(0, 13), st.sampled_from(["basic", "full"])),
            st.tuples(st.sampled_from(["linux", "macos", "windows"]), st.integers(1, 2 * CONTRIBUTION_CAP)),
            max_size=40,
        )
    )
    reports = []
    for (reporter, offset, level), (os, n) in entries.items():
        day = MON + datetime.timedelta(days=offset)
        if level == "basic":
            reports.append(napari_report(reporter, day, system={"os": os}, activity={day: Activity(runs=n % 7)}))
        else:
            event = sorted(NAPARI.events)[n % 3]
            reports.append(napari_report(reporter, day, "full", counts={day: {event: n}}))
    return reports


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports=uploads(), threshold=st.integers(1, 6))
def test_nothing_published_rests_on_fewer_than_k_reporters(reports, threshold):
    with tempfile.TemporaryDirectory() as folder:
        storage = SQLiteStorage(Path(folder) / "consentry.sqlite3")
        try:
            storage.migrate()
            storage.register_manifest(NAPARI)
            store(storage, *reports)
            aggregates = storage.aggregate()
            public = PublicStore(Path(folder) / "public.sqlite3")
            publish(storage, public, threshold=threshold)
        finally:
            storage.close()
        rows = published_rows(public.path)

    assert all(reporters >= threshold for *_, reporters, _new in rows["installs"])
    assert all(row[-1] >= threshold for row in rows["counters"])
    assert all(row[-1] >= threshold for row in rows['"values"'])
    # ... and every install count that may be published is (complementary suppression hides other cells only).
    assert len(rows["installs"]) == sum(row.reporters >= threshold for row in aggregates.installs)


DAYS = st.dates(datetime.date(2026, 1, 1), datetime.date(2026, 12, 31))
COUNTS = st.integers(0, 50)


# ---- the public store ------------------------------------------------------------------------------------------
def publication(threshold: int, reporters: int, *, duplicate: bool = False) -> Publication:
    row = InstallRow("napari-like", "week", MON, "basic", reporters, 0)
    return Publication(
        apps=[AppInfo("napari-like", "Napari-like viewer", None, {"manifest_version": 1})],
        installs=[row, row] if duplicate else [row],
        counters=[],
        values=[],
        threshold=threshold,
        published_at=RECEIVED,
    )


def test_a_publication_replaces_the_file_and_open_readers_keep_working(tmp_path):
    public = PublicStore(tmp_path / "site" / "public.sqlite3")
    public.write(publication(5, 10))
    first_file = public.path.stat().st_ino
    reader = sqlite3.connect(f"{public.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT reporters FROM installs").fetchall() == [(10,)]

        public.write(publication(7, 20))

        assert public.path.stat().st_ino != first_file
        assert reader.execute("SELECT reporters FROM installs").fetchall() == [(10,)]
        assert reader.execute("SELECT value FROM meta WHERE key = 'threshold'").fetchone() == ("5",)
        reader.execute("COMMIT")
    finally:
        reader.close()
    assert public.meta()["threshold"] == "7"
    assert public.installs("napari-like", "week")[0]["reporters"] == 20
    assert [path.name for path in public.path.parent.iterdir()] == ["public.sqlite3"]


def test_a_failed_publication_leaves_the_previous_one_in_place(tmp_path):
    public = PublicStore(tmp_path / "public.sqlite3")
    public.write(publication(5, 10))
    with pytest.raises(sqlite3.IntegrityError):
        public.write(publication(7, 20, duplicate=True))
    assert public.meta()["threshold"] == "5"
    assert public.installs("napari-like", "week")[0]["reporters"] == 10
    assert [path.name for path in tmp_path.iterdir()] == ["public.sqlite3"]


def test_an_unpublished_store_reads_as_empty(tmp_path):
    public = PublicStore(tmp_path / "nothing-yet.sqlite3")
    assert public.meta() == {}
    assert public.apps() == []
    assert public.installs("napari-like", "week") == []
    assert not public.path.exists()
