"""Differential privacy as configured, on every path that publishes, and the privacy ledger published beside the
data: per publication, application and table, its parameters, and the cumulative epsilon of each application.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import datetime
import io
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from consentry.manifest import Manifest
from consentry.wire import Report
from consentry_server.app import create_public_app
from consentry_server.cli import main
from consentry_server.config import Settings
from consentry_server.public import open_data
from consentry_server.publish import ledger
from consentry_server.publish.privacy import MECHANISM, protect
from consentry_server.publish.release import publish, publish_as_configured
from consentry_server.storage import PublicStore, open_storage
from consentry_server.storage.base import CONTRIBUTION_CAP, AggregateTables, LedgerEntry, Storage, store_report
from consentry_server.storage.public import LEDGER_COLUMNS, Publication

pytest.importorskip("opendp")

SERVER = Path(__file__).resolve().parents[2] / "server" / "src" / "consentry_server"
MON = datetime.date(2026, 11, 2)  # a Monday
TUE = MON + datetime.timedelta(days=1)
RECEIVED = datetime.datetime(2026, 11, 20, 12, tzinfo=datetime.timezone.utc)
LATER = RECEIVED + datetime.timedelta(hours=1)
ADD_IMAGE, ADD_POINTS = "napari:layer:add_image", "napari:layer:add_points"
K = 3
EPSILON = 0.5
APP = "napari-like"
Cells = dict[tuple[object, ...], tuple[object, ...]]


def fill(
    storage: Storage,
    make_report,
    reporters: Iterable[int],
    day: datetime.date = MON,
    counts: dict[str, int] | None = None,
) -> None:
    """Reports of ``reporters`` on ``day``: the basic level (Linux), and at the full level ``counts`` if any."""
    reports: list[Report] = []
    for reporter in reporters:
        reports.append(make_report(reporter=reporter, days=(day,), system={"os": "linux"}))
        if counts:
            reports.append(make_report("full", reporter=reporter, days=(day,), counts={day: counts}))
    for report in reports:
        store_report(storage, report, received=RECEIVED)


def images(n: int = 2) -> dict[str, int]:
    return {ADD_IMAGE: n}


def cells(tables: AggregateTables | Publication) -> Cells:
    """Every published number of ``tables``, by what it counts."""
    found: Cells = {}
    for row in tables.installs:
        found["installs", row.app, row.period, row.start, row.level] = (row.reporters, row.new_installs)
    for counter in tables.counters:
        key = ("counters", counter.app, counter.period, counter.start, counter.kind, counter.scope, counter.name)
        found[key] = (counter.total, counter.reporters)
    for value in tables.values:
        found["values", value.app, value.period, value.start, value.field, value.value] = (value.reporters,)
    return found


def numbers_of(publication: Publication, app: str, dataset: str) -> int:
    """How many numbers a table of ``app`` publishes, counted here independently of the ledger."""
    if dataset == "installs":
        rows = [row for row in publication.installs if row.app == app]
        return len(rows) + sum(row.new_installs is not None for row in rows)
    if dataset == "counters":
        return 2 * sum(row.app == app for row in publication.counters)
    return sum(row.app == app for row in publication.values)


def column(name: str) -> int:
    return LEDGER_COLUMNS.index(name)


def noisy(storage: Storage, settings: Settings, now: datetime.datetime = RECEIVED) -> Publication:
    return publish(storage, PublicStore(settings.public_path), threshold=K, noise_epsilon=EPSILON, now=now)


# ---- every publishing path applies noise_epsilon ---------------------------------------------------------------
@pytest.mark.parametrize("how", ["config", "option"])
def test_the_publish_command_adds_the_noise_it_is_configured_with(how, tmp_path, storage, settings, make_report):
    fill(storage, make_report, range(6), counts=images())
    storage.aggregate()
    options = ["--db", settings.database, "--public-db", str(settings.public_path), "--reporter-threshold", str(K)]
    if how == "config":
        config = tmp_path / "server.toml"
        config.write_text(f"noise_epsilon = {EPSILON}\n", "utf-8")
        options += ["--config", str(config)]
    else:
        options += ["--noise-epsilon", str(EPSILON)]

    assert main(["publish", *options]) == 0

    public = PublicStore(settings.public_path)
    assert json.loads(public.meta()["noise"])["epsilon_per_number"] == EPSILON
    exact, published = cells(protect(storage.aggregates(), K)), cells(public.published_tables())
    assert published.keys() == exact.keys()  # the numbers k allows, no more, no fewer ...
    assert published != exact  # ... with noise (a total's scale is the contribution cap over epsilon)
    rows = public.ledger(APP)
    assert {row[column("dataset")] for row in rows} == {"installs", "counters", "values"}
    assert all(row[column("epsilon")] == pytest.approx(EPSILON * row[column("numbers")]) for row in rows)


def test_publishing_as_configured_reads_the_threshold_the_noise_and_the_public_store(storage, settings, make_report):
    fill(storage, make_report, range(6), counts=images())
    storage.aggregate()
    configured = settings.replace(reporter_threshold=K, noise_epsilon=EPSILON)

    publication = publish_as_configured(storage, configured, now=RECEIVED)

    assert publication.threshold == K
    assert publication.noise is not None
    assert publication.noise["epsilon_per_number"] == EPSILON
    assert PublicStore(configured.public_path).meta()["published_at"] == RECEIVED.isoformat()
    assert {entry.epsilon_per_number for entry in storage.ledger()} == {EPSILON}


def test_the_demo_publishes_with_the_noise_it_is_given(tmp_path):
    pytest.importorskip("consentry_examples")
    data = tmp_path / "demo"
    command = ["demo", "--data-dir", str(data), "--port", "0", "--installs", "60", "--days", "2", "--seed", "1"]

    assert main([*command, "--no-serve", "--noise-epsilon", "2"]) == 0

    public = PublicStore(data / "public.sqlite3")
    assert json.loads(public.meta()["noise"])["epsilon_per_number"] == 2.0
    rows = [row for app in sorted(public.app_names()) for row in public.ledger(app)]
    assert rows
    assert {row[column("epsilon_per_number")] for row in rows} == {2.0}


# ---- the ledger ------------------------------------------------------------------------------------------------
def test_each_release_of_a_table_is_in_the_ledger_with_its_parameters(storage, settings, make_report):
    fill(storage, make_report, range(6), counts=images())
    storage.aggregate()

    publication = noisy(storage, settings)

    entries = storage.ledger()
    assert [(entry.app, entry.dataset) for entry in entries] == [(APP, "counters"), (APP, "installs"), (APP, "values")]
    for entry in entries:
        assert (entry.publication, entry.released_at, entry.k, entry.mechanism) == (1, RECEIVED, K, MECHANISM)
        assert (entry.epsilon_per_number, entry.delta) == (EPSILON, None)  # pure DP: discrete Laplace
        assert entry.numbers == numbers_of(publication, APP, entry.dataset) > 0
        assert entry.epsilon == pytest.approx(EPSILON * entry.numbers)  # basic sequential composition
        assert entry.reporter_cap == 1
        assert entry.total_cap_per_day == (CONTRIBUTION_CAP if entry.dataset == "counters" else None)
    running = [sum(entry.epsilon or 0 for entry in entries[: n + 1]) for n in range(len(entries))]
    assert [row.cumulative_epsilon for row in publication.ledger] == pytest.approx(running)
    published = PublicStore(settings.public_path).ledger(APP)
    assert [row[column("released_at")] for row in published] == [RECEIVED.isoformat()] * 3
    assert [row[column("cumulative_epsilon")] for row in published] == pytest.approx(running)


def test_cumulative_epsilon_adds_up_over_releases_and_has_no_bound_once_exact_numbers_are_out(
    storage, settings, make_report
):
    fill(storage, make_report, range(6), counts=images())
    storage.aggregate()
    noisy(storage, settings)
    fill(storage, make_report, range(10, 16), TUE, counts=images(3))
    storage.aggregate()

    second = noisy(storage, settings, LATER)

    entries = storage.ledger()
    assert sorted({entry.publication for entry in entries}) == [1, 2]
    assert [entry.numbers for entry in entries if entry.publication == 2] == [
        numbers_of(second, APP, dataset) for dataset in ("counters", "installs", "values")
    ]
    spent = sum(entry.epsilon or 0 for entry in entries)
    assert second.ledger[-1].cumulative_epsilon == pytest.approx(spent)
    assert spent == pytest.approx(EPSILON * sum(entry.numbers for entry in entries))

    # Exact numbers have no finite epsilon: from then on, the cumulative epsilon is unbounded (null) for good.
    fill(storage, make_report, range(20, 26), TUE)
    storage.aggregate()
    exact = publish(storage, PublicStore(settings.public_path), threshold=K, now=LATER)
    assert {(row.mechanism, row.epsilon, row.cumulative_epsilon) for row in exact.ledger if row.publication == 3} == {
        (ledger.EXACT, None, None)
    }
    fill(storage, make_report, range(30, 36), TUE)
    storage.aggregate()
    assert noisy(storage, settings, LATER).ledger[-1].cumulative_epsilon is None
    document = TestClient(create_public_app(settings)).get(f"/data/v1/{APP}/ledger.json").json()
    assert document["cumulative_epsilon"] is None
    assert [row[column("publication")] for row in document["rows"]] == [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3


def test_publishing_again_without_an_aggregation_in_between_releases_nothing_new(storage, settings, make_report):
    fill(storage, make_report, range(6), counts=images())
    storage.aggregate()
    first = noisy(storage, settings)
    recorded = storage.ledger()

    again = noisy(storage, settings, LATER)

    assert cells(again) == cells(first)  # the same noisy numbers, not a second draw to average with the first
    assert storage.ledger() == recorded
    assert again.ledger == first.ledger
    assert PublicStore(settings.public_path).meta()["publication"] == "1"
    # An aggregation may have changed any number: the next publication draws noise anew, and spends again. (The
    # decision rests on the aggregation having run, never on what it changed: that would tell about the data.)
    storage.aggregate()
    noisy(storage, settings, LATER)
    assert [entry.publication for entry in storage.ledger()] == [1, 1, 1, 2, 2, 2]


def test_the_same_exact_numbers_published_again_are_not_a_new_release(storage, settings, make_report):
    public = PublicStore(settings.public_path)
    fill(storage, make_report, range(6), counts=images())
    storage.aggregate()
    publish(storage, public, threshold=K, now=RECEIVED)
    storage.aggregate()  # nothing new

    publish(storage, public, threshold=K, now=LATER)

    assert [entry.publication for entry in storage.ledger()] == [1, 1, 1]
    fill(storage, make_report, range(10, 13))  # more installs, no counter
    storage.aggregate()
    publish(storage, public, threshold=K, now=LATER)
    assert [(entry.publication, entry.dataset) for entry in storage.ledger()][3:] == [(2, "installs"), (2, "values")]
    publish(storage, public, threshold=K + 1, now=LATER)  # another k: every table is released anew
    assert [entry.dataset for entry in storage.ledger() if entry.publication == 3] == ["counters", "installs", "values"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'consentry.sqlite3'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


def test_the_ledger_survives_a_restart_of_either_database(database, tmp_path, napari: Manifest, make_report):
    settings = Settings(
        database=database, public_database=str(tmp_path / "public.sqlite3"), reporter_threshold=K, noise_epsilon=EPSILON
    )
    storage = open_storage(settings)
    try:
        storage.register_manifest(napari)
        fill(storage, make_report, range(6), counts=images())
        storage.aggregate()
        first = publish_as_configured(storage, settings, now=RECEIVED)
        recorded = storage.ledger()
    finally:
        storage.close()
    assert len(recorded) == 3

    storage = open_storage(settings)
    try:
        assert storage.ledger() == recorded
        assert storage.aggregation_runs() == 1
        again = publish_as_configured(storage, settings, now=LATER)
        assert (storage.ledger(), cells(again)) == (recorded, cells(first))
        storage.aggregate()
        latest = publish_as_configured(storage, settings, now=LATER)
        entries = storage.ledger()
        assert [entry.publication for entry in entries] == [1, 1, 1, 2, 2, 2]
        with pytest.raises(ValueError, match="another one ran meanwhile"):  # a publication that raced another
            storage.record_release([dataclasses.replace(entries[0], app="another-app")])
        assert storage.ledger() == entries
    finally:
        storage.close()
    assert latest.ledger[-1].cumulative_epsilon == pytest.approx(sum(entry.epsilon or 0 for entry in entries))


def test_the_ledger_holds_parameters_and_counts_never_raw_data(storage, settings, make_report):
    fill(storage, make_report, range(6), counts=images())
    storage.aggregate()
    publication = noisy(storage, settings)

    db = sqlite3.connect(storage.path)
    try:
        stored = [row[1] for row in db.execute("PRAGMA table_info(privacy_ledger)")]
    finally:
        db.close()
    assert stored == [field.name for field in dataclasses.fields(LedgerEntry)]
    published = AggregateTables(publication.installs, publication.counters, publication.values)
    for entry in storage.ledger():  # the digest is of the rows as published, which anyone can download
        assert entry.digest == ledger.digest(published, entry.app, entry.dataset)
    db = sqlite3.connect(settings.public_path)
    try:
        public = [row[1] for row in db.execute("PRAGMA table_info(ledger)")]
    finally:
        db.close()
    assert public == ["publication", "released_at", "app", *LEDGER_COLUMNS[2:]]
    assert "digest" not in public


def test_noise_publishes_exactly_the_numbers_k_allows(storage, settings, make_report):
    fill(storage, make_report, range(6), counts=images())
    fill(storage, make_report, range(2), TUE, counts={ADD_POINTS: 1})  # 2 installs: hidden
    storage.aggregate()

    publication = noisy(storage, settings)

    aggregates = storage.aggregates()
    assert cells(publication).keys() == cells(protect(aggregates, K)).keys()
    truth = cells(aggregates)
    reporters = {"installs": 0, "counters": 1, "values": 0}  # where each table's count of reporters is
    assert all(truth[key][reporters[str(key[0])]] >= K for key in cells(publication))  # type: ignore[operator]
    assert ADD_POINTS not in {row.name for row in publication.counters}


# ---- one contribution cap ---------------------------------------------------------------------------------------
def test_the_contribution_cap_is_defined_once():
    definitions = []
    for path in sorted(SERVER.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            targets = [*getattr(node, "targets", []), getattr(node, "target", None)]  # = and annotated =
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and any(
                isinstance(target, ast.Name) and target.id == "CONTRIBUTION_CAP" for target in targets
            ):
                definitions.append(path.relative_to(SERVER).as_posix())
    assert definitions == ["storage/base.py"]


def test_the_cap_that_bounds_totals_is_the_one_the_noise_and_the_ledger_name(storage, settings, make_report):
    fill(storage, make_report, range(K), counts=images(3 * CONTRIBUTION_CAP))
    aggregates = storage.aggregate()
    [total] = {row.total for row in aggregates.counters if row.name == ADD_IMAGE and row.period == "day"}
    assert total == K * CONTRIBUTION_CAP  # each install's day capped by aggregation

    publication = noisy(storage, settings)

    assert publication.noise is not None
    assert f"{CONTRIBUTION_CAP} per reporter and day" in json.dumps(publication.noise)
    assert publication.noise["scale"] == {"reporter counts": 1 / EPSILON, "day totals": CONTRIBUTION_CAP / EPSILON}
    [counters] = [row for row in publication.ledger if row.dataset == "counters"]
    assert counters.total_cap_per_day == CONTRIBUTION_CAP


# ---- published beside the data ---------------------------------------------------------------------------------
def test_the_ledger_is_open_data_as_json_and_csv(storage, settings, make_report, tmp_path):
    fill(storage, make_report, range(6), counts=images())
    storage.aggregate()
    publication = noisy(storage, settings)
    public = PublicStore(settings.public_path)
    client = TestClient(create_public_app(settings))

    document = client.get(f"/data/v1/{APP}/ledger.json").json()
    table = client.get(f"/data/v1/{APP}/ledger.csv")

    assert document["columns"] == list(LEDGER_COLUMNS)
    assert document["rows"] == [list(row) for row in public.ledger(APP)]
    assert len(document["rows"]) == 3
    assert document["cumulative_epsilon"] == pytest.approx(publication.ledger[-1].cumulative_epsilon)
    assert document["cumulative_epsilon"] == pytest.approx(EPSILON * sum(row.numbers for row in publication.ledger))
    rows = list(csv.reader(io.StringIO(table.text)))
    assert rows[0] == list(LEDGER_COLUMNS)
    assert rows[1:] == [["" if value is None else str(value) for value in row] for row in document["rows"]]
    # An application that released nothing has spent nothing.
    assert client.get("/data/v1/stripepy-like/ledger.json").json()["cumulative_epsilon"] == 0.0
    assert {"ledger.json", "ledger.csv"} <= set(open_data.file_names())
    written = open_data.write_files(public, tmp_path / "site")
    assert (tmp_path / "site" / "data" / "v1" / APP / "ledger.json") in written
