"""3D Slicer's Telemetry extension: ``POST /telemetry`` and ``POST /telemetry/{app}``.

Bodies are shaped as the extension sends them (``Slicer/SlicerTelemetry``, ``Telemetry/Telemetry.py``): the rows
of its CSV file read back with ``csv.DictReader``, so every value is a string, posted as JSON with
``Content-Type: application/json``, by ``requests`` or by Qt's network manager. The extension clears its file only
when the upload is answered 200 (``requests``) or without an HTTP error (Qt), else sends the same rows again with
the next ones. So a malformed body gets a 4xx with a machine-readable code and changes nothing, while a row that
the manifest does not declare, that is not valid or whose day is outside the window is dropped, counted per
application for operators and named in a 200 answer (``partial_success``), and the rest is stored as native
reports and aggregated as they are. The query-string form of the 3D Slicer thread is in test_seed_slicer_query.py.
"""

from __future__ import annotations

import csv
import datetime
import gzip
import io
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from consentry.manifest import loads_plugin_manifest
from consentry.wire import Plugin, Report, encode
from consentry.wire.schema import MAX_COUNT, OTHER
from consentry_server.app import create_app
from consentry_server.cli import main
from consentry_server.config import Settings
from consentry_server.ingest.seed_formats.slicer import MAX_ENTRIES
from consentry_server.storage import open_storage
from support.bodies import chunked, gzip_bomb
from support.paths import SLICER
from support.processes import ADMIN_TOKEN, RunningServer, serving
from support.seed_reports import as_first_report_unknown, first_report_unknown_records

JSON = {"content-type": "application/json"}
Row = dict[str, str]


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def ago(days: int) -> str:
    return (utc_today() - datetime.timedelta(days=days)).isoformat()


def rows_as_the_extension_sends_them(rows: list[tuple[str, str, str, int]]) -> list[Row]:
    """The extension's CSV round trip: written with csv.DictWriter, read back with csv.DictReader (all strings)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["component", "event", "day", "times"])
    writer.writeheader()
    for component, event, day, times in rows:
        writer.writerow({"component": component, "event": event, "day": day, "times": times})
    return list(csv.DictReader(io.StringIO(text.getvalue())))


def upload() -> list[Row]:
    """A week of a user: module events, segmentation effects, an extension's events, a row repeated."""
    return rows_as_the_extension_sends_them(
        [
            ("Data", "enter", ago(3), 2),
            ("SegmentEditor", "enter", ago(3), 1),
            ("SegmentEditor", "effect/threshold", ago(3), 4),
            ("SegmentEditor", "effect/threshold", ago(2), 1),
            ("TotalSegmentator", "segmentation/ct/total", ago(2), 3),
            ("SegmentEditor", "effect/threshold", ago(3), 2),  # the same (component, event, day) again: summed
        ]
    )


def dumps(rows: list[Row] | list[object]) -> bytes:
    """As the extension's Qt path encodes it: ``json.dumps(data).encode('utf-8')``."""
    return json.dumps(rows).encode("utf-8")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The conftest's settings, with slicer-like as the application of ``POST /telemetry``."""
    return Settings(
        database=f"sqlite:///{tmp_path / 'data' / 'consentry.sqlite3'}",
        public_database=str(tmp_path / "data" / "public.sqlite3"),
        admin_token="slicer-tests-token",  # noqa: S106 - a throwaway token for a throwaway server
        reporter_threshold=1,
        slicer_app="slicer-like",
    )


@pytest.fixture(params=["thread", "process"])
def client(request, settings, storage) -> Iterator[TestClient]:
    """The application over the registered examples, storing reports in a thread or in a storing process."""
    app = create_app(settings, storage) if request.param == "thread" else create_app(settings)
    with TestClient(app) as test_client:
        yield test_client


def totals(storage, period: str = "day") -> dict[tuple[str, str, str, str], tuple[int, int]]:
    """Aggregated counters of slicer-like: (kind, scope, name, start) -> (total, reporters)."""
    return {
        (row.kind, row.scope, row.name, row.start.isoformat()): (row.total, row.reporters)
        for row in storage.aggregate().counters
        if row.app == "slicer-like" and row.period == period
    }


# ---- accepted uploads ------------------------------------------------------------------------------------------
def test_an_upload_as_the_extension_sends_it_is_stored_as_one_native_report(client, storage):
    response = client.post("/telemetry", content=dumps(upload()), headers=JSON)

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "stored", "reports": 1, "days": 2}
    assert storage.report_count() == 2  # one row per day, as for a native report
    assert totals(storage) == {
        ("event", "", "Data/enter", ago(3)): (2, 1),
        ("event", "", "SegmentEditor/enter", ago(3)): (1, 1),
        ("event", "", "SegmentEditor/effect/threshold", ago(3)): (6, 1),
        ("event", "", "SegmentEditor/effect/threshold", ago(2)): (1, 1),
        ("plugin_event", "TotalSegmentator", "segmentation/ct/total", ago(2)): (3, 1),
    }


def without_received(rows) -> list[dict[str, object]]:
    return [{**row, "received": None} for row in rows]


def test_the_stored_upload_is_stored_and_aggregated_exactly_as_the_same_native_report(client, storage, tmp_path):
    assert client.post("/telemetry", content=dumps(upload()), headers=JSON).status_code == 200
    exported = list(storage.export("slicer-like"))

    # The same counts, sent natively by the same reporter to a second server with the same manifests.
    catalog = storage.catalog("slicer-like")
    day2, day3 = (utc_today() - datetime.timedelta(days=n) for n in (2, 3))
    native = Report(
        app="slicer-like",
        app_version=OTHER,
        level="full",
        consent_version=catalog.latest.consent_version,
        reporter=exported[0]["reporter"],
        first_report=False,
        days=(day3, day2),
        counts={
            day3: {"Data/enter": 2, "SegmentEditor/enter": 1, "SegmentEditor/effect/threshold": 6},
            day2: {"SegmentEditor/effect/threshold": 1},
        },
        plugins=(Plugin("TotalSegmentator", OTHER, {day2: {"segmentation/ct/total": 3}}),),
    )
    other = Settings(database=f"sqlite:///{tmp_path / 'native' / 'db.sqlite3'}", reporter_threshold=1)
    native_storage = open_storage(other)
    try:
        for manifest in [catalog.latest, *catalog.plugins.values()]:
            native_storage.register_manifest(manifest)
        with TestClient(create_app(other, native_storage)) as native_client:
            response = native_client.post("/v1/reports/full", content=encode(native), headers=JSON)
            assert response.json() == {"status": "stored", "days": 2}
        native_records = first_report_unknown_records(native_storage.export("slicer-like"))
        assert without_received(native_records) == without_received(exported)
        native_tables, tables = native_storage.aggregate(), storage.aggregate()
        assert {row.new_installs for row in tables.installs} == {None}  # an upload cannot say whether it is new
        assert as_first_report_unknown(native_tables) == as_first_report_unknown(tables)
    finally:
        native_storage.close()


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", 'application/JSON; charset="UTF-8"', None]
)
def test_the_content_type_is_json_with_or_without_charset_or_missing(client, storage, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/telemetry", content=dumps(upload()), headers=headers)
    assert response.status_code == 200, response.text
    assert storage.report_count() == 2


def test_times_may_be_numbers_as_well_as_strings(client, storage):
    rows = [
        {"component": "Data", "event": "enter", "day": ago(1), "times": 3},
        {"component": "Data", "event": "enter", "day": ago(1), "times": "4"},
    ]
    assert client.post("/telemetry", content=dumps(rows), headers=JSON).status_code == 200
    assert totals(storage) == {("event", "", "Data/enter", ago(1)): (7, 1)}


def test_the_application_may_be_named_in_the_path(client, storage):
    response = client.post("/telemetry/slicer-like", content=dumps(upload()), headers=JSON)
    assert response.json() == {"status": "stored", "reports": 1, "days": 2}
    assert storage.report_count() == 2


def test_without_a_default_application_only_the_named_route_is_open(settings, storage, dump):
    plain = Settings(database=settings.database, public_database=settings.public_database)
    with TestClient(create_app(plain, storage)) as client:
        refused = client.post("/telemetry", content=dumps(upload()), headers=JSON)
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "no_default_app"
        assert dump() == {"reports": [], "counters": [], "facts": []}
        assert client.post("/telemetry/slicer-like", content=dumps(upload()), headers=JSON).status_code == 200


def test_each_upload_counts_as_one_reporter(client, storage):
    for _ in range(3):
        response = client.post("/telemetry", content=dumps(upload()), headers=JSON)
        assert response.json()["status"] == "stored"  # a fresh reporter each time: never a duplicate
    assert storage.report_count() == 6
    assert totals(storage)[("event", "", "Data/enter", ago(3))] == (6, 3)
    installs = {(row.start.isoformat(), row.reporters) for row in storage.aggregate().installs if row.period == "day"}
    assert installs == {(ago(3), 3), (ago(2), 3)}


def test_reporter_ids_are_random_and_of_the_wire_format(client, storage):
    for _ in range(2):
        client.post("/telemetry", content=dumps(upload()), headers=JSON)
    reporters = {row["reporter"] for row in storage.export("slicer-like")}
    assert len(reporters) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", reporter) for reporter in reporters)


def test_zero_times_are_left_out_and_an_upload_of_nothing_stores_nothing(client, storage):
    rows = [{"component": "Data", "event": "enter", "day": ago(1), "times": "0"}]
    response = client.post("/telemetry", content=dumps(rows), headers=JSON)
    assert response.json() == {"status": "empty", "reports": 0, "days": 0}
    assert storage.report_count() == 0


def test_an_upload_of_many_days_becomes_reports_of_at_most_31_days(client, storage):
    rows = [{"component": "Data", "event": "enter", "day": ago(n), "times": "1"} for n in range(1, 41)]
    response = client.post("/telemetry", content=dumps(rows), headers=JSON)
    assert response.json() == {"status": "stored", "reports": 2, "days": 40}
    assert storage.report_count() == 40
    assert len({row["reporter"] for row in storage.export("slicer-like")}) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {**JSON, "user-agent": "python-requests/2.32.3"},  # the extension's requests path
        JSON,  # its Qt path: QNetworkRequest with only the content type set
    ],
    ids=["requests", "qt"],
)
def test_the_extensions_upload_carries_no_version_so_it_is_stored_as_other(client, storage, headers):
    # Telemetry.py posts its rows to a fixed URL (TelemetrySendUrl) with no version in the rows, the URL or a
    # header it sets: the application's and the extensions' versions are unknown, stored as "other".
    assert client.post("/telemetry", content=dumps(upload()), headers=headers).status_code == 200
    rows = list(storage.export("slicer-like"))
    assert {row["app_version"] for row in rows} == {OTHER}
    assert {row["facts"]["plugin.TotalSegmentator"] for row in rows} == {OTHER}


def test_a_gzip_compressed_upload_is_accepted(client, storage):
    response = client.post(
        "/telemetry", content=gzip.compress(dumps(upload())), headers={**JSON, "content-encoding": "gzip"}
    )
    assert response.status_code == 200, response.text
    assert storage.report_count() == 2


def test_an_extension_that_is_not_public_is_stored_as_other_without_its_counts(app_client, settings, storage, slicer):
    private = loads_plugin_manifest(
        """
manifest_version = 1
[plugin]
name = "LabSecret"
host = "slicer-like"
title = "LabSecret"
public = false
[[events]]
name = "run"
level = "full"
purpose = "How often it runs."
""",
        slicer,
    )
    storage.register_manifest(private)
    rows = [{"component": "LabSecret", "event": "run", "day": ago(1), "times": "2"}]
    with app_client(settings, storage) as client:
        assert client.post("/telemetry", content=dumps(rows), headers=JSON).status_code == 200
    [row] = storage.export("slicer-like")
    assert row["facts"] == {"plugin.other": "other", "first_report": "unknown"}
    assert row["counters"] == []


# ---- bad input -------------------------------------------------------------------------------------------------
GOOD = {"component": "Data", "event": "enter", "day": ago(1), "times": "1"}
IN_5_DAYS = (utc_today() + datetime.timedelta(days=5)).isoformat()


def after_a_good_row(**changes: object) -> Callable[[], bytes]:
    """A valid row, then one with ``changes`` (a value of ``...`` removes the key, None is JSON null)."""

    def body() -> bytes:
        bad = {key: value for key, value in {**GOOD, **changes}.items() if value is not ...}
        return json.dumps([GOOD, bad]).encode()

    return body


@dataclass(frozen=True)
class Bad:
    body: Callable[[], bytes]
    status: int
    code: str
    headers: dict[str, str | None] | None = None
    path: str = "/telemetry"
    stream: bool = False


BAD = {
    # ---- format: refused whole
    "malformed_json": Bad(lambda: dumps([GOOD])[:-3], 400, "invalid_body"),
    "truncated_in_a_string": Bad(lambda: dumps([GOOD, GOOD])[:-20], 400, "invalid_body"),
    "empty_body": Bad(lambda: b"", 400, "invalid_body"),
    "an_object_not_an_array": Bad(lambda: json.dumps(GOOD).encode(), 400, "invalid_body"),
    "a_row_that_is_not_an_object": Bad(lambda: json.dumps([GOOD, "Data,enter"]).encode(), 400, "invalid_body"),
    "a_row_that_is_null": Bad(lambda: json.dumps([GOOD, None]).encode(), 400, "invalid_body"),
    "a_row_that_is_an_array": Bad(lambda: json.dumps([GOOD, list(GOOD.values())]).encode(), 400, "invalid_body"),
    "utf16": Bad(lambda: dumps([GOOD]).decode().encode("utf-16"), 400, "invalid_body"),
    "non_utf8": Bad(lambda: dumps([GOOD]).replace(b"Data", b"D\xe4ta"), 400, "invalid_body"),
    "deep_nesting": Bad(lambda: b"[" * 100_000 + b"]" * 100_000, 400, "invalid_body"),
    "deep_nesting_objects": Bad(lambda: b'[{"component": ' * 30_000 + b"1" + b"}]" * 30_000, 400, "invalid_body"),
    "huge_array": Bad(lambda: json.dumps([0] * (MAX_ENTRIES + 1)).encode(), 400, "too_many_entries"),
    "duplicate_keys": Bad(
        lambda: dumps([GOOD]).replace(b'"times": "1"', b'"times": "1", "times": "9"'), 400, "invalid_body"
    ),
    "times_of_4000_digits": Bad(
        lambda: dumps([GOOD]).replace(b'"times": "1"', b'"times": 9' + b"9" * 4000), 400, "invalid_body"
    ),
    "times_a_float": Bad(lambda: dumps([GOOD]).replace(b'"times": "1"', b'"times": 2.5'), 400, "invalid_body"),
    "times_nan": Bad(lambda: dumps([GOOD]).replace(b'"times": "1"', b'"times": NaN'), 400, "invalid_body"),
    # ---- applications
    "unknown_application": Bad(lambda: dumps([GOOD]), 404, "unknown_app", path="/telemetry/not-registered"),
    "sql_in_application": Bad(lambda: dumps([GOOD]), 404, "unknown_app", path="/telemetry/x';DROP TABLE reports;--"),
    # ---- transport
    "body_too_large": Bad(lambda: dumps([GOOD]) + b" " * 600_000, 413, "too_large"),
    "body_too_large_without_content_length": Bad(lambda: dumps([GOOD]) + b" " * 600_000, 413, "too_large", stream=True),
    "gzip_bomb": Bad(gzip_bomb, 413, "too_large", {"content-encoding": "gzip"}),
    "gzip_truncated": Bad(lambda: gzip.compress(dumps([GOOD]))[:-12], 400, "bad_gzip", {"content-encoding": "gzip"}),
    "gzip_declared_but_plain": Bad(lambda: dumps([GOOD]), 400, "bad_gzip", {"content-encoding": "gzip"}),
    "content_encoding_br": Bad(lambda: dumps([GOOD]), 415, "unsupported_encoding", {"content-encoding": "br"}),
    "content_type_text_plain": Bad(
        lambda: dumps([GOOD]), 415, "unsupported_media_type", {"content-type": "text/plain"}
    ),
    "charset_latin1": Bad(
        lambda: dumps([GOOD]), 415, "unsupported_charset", {"content-type": "application/json; charset=latin-1"}
    ),
    # ---- browsers: a page of another site making its visitors' browsers post counts (a Blob body has no type)
    "sent_by_a_page_of_another_site": Bad(
        lambda: dumps([GOOD]), 403, "cross_site_request", {"content-type": None, "sec-fetch-site": "cross-site"}
    ),
}


@pytest.fixture
def stored(client) -> None:
    """An upload already stored, so the raw tables are not empty when a bad request arrives."""
    assert client.post("/telemetry", content=dumps(upload()), headers=JSON).json()["status"] == "stored"


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_bad_input_is_refused_with_a_code_and_changes_nothing(client, storage, dump, bad):
    headers = {key: value for key, value in {**JSON, **(bad.headers or {})}.items() if value is not None}
    body = bad.body()
    before = dump()
    assert storage.report_count() == 2

    response = client.post(bad.path, content=chunked(body) if bad.stream else body, headers=headers)

    assert response.status_code == bad.status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == bad.code
    assert error["message"]
    assert len(response.content) < 2048
    assert dump() == before


def test_the_good_row_of_the_tables_is_itself_accepted(client, storage):
    # Guards the tables: each bad body differs from an accepted one only by what it names.
    response = client.post("/telemetry", content=after_a_good_row()(), headers=JSON)
    assert response.json() == {"status": "stored", "reports": 1, "days": 1}
    assert totals(storage) == {("event", "", "Data/enter", ago(1)): (2, 1)}


# ---- rows dropped, the rest stored -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Dropped:
    body: Callable[[], bytes]
    reason: str


DROPPED = {
    # ---- rows that are not the extension's
    "missing_times": Dropped(after_a_good_row(times=...), "invalid_entry"),
    "missing_component": Dropped(after_a_good_row(component=...), "invalid_entry"),
    "unknown_field": Dropped(after_a_good_row(ip="192.0.2.1"), "invalid_entry"),
    "component_not_a_string": Dropped(after_a_good_row(component=7), "invalid_entry"),
    "component_an_object": Dropped(after_a_good_row(component={"name": "Data"}), "invalid_entry"),
    "component_empty": Dropped(after_a_good_row(component=""), "invalid_entry"),
    "component_of_10000_characters": Dropped(after_a_good_row(component="D" * 10_000), "invalid_entry"),
    "event_null": Dropped(after_a_good_row(event=None), "invalid_entry"),
    # ---- counts
    "negative_times": Dropped(after_a_good_row(times="-1"), "invalid_entry"),
    "negative_times_as_number": Dropped(after_a_good_row(times=-1), "invalid_entry"),
    "huge_times": Dropped(after_a_good_row(times=str(MAX_COUNT + 1)), "invalid_entry"),
    "huge_times_as_number": Dropped(after_a_good_row(times=10**12), "invalid_entry"),
    "times_summing_past_the_largest_count": Dropped(after_a_good_row(times=MAX_COUNT), "invalid_entry"),
    "times_not_numeric": Dropped(after_a_good_row(times="three"), "invalid_entry"),
    "times_a_fraction": Dropped(after_a_good_row(times="2.5"), "invalid_entry"),
    "times_with_a_space": Dropped(after_a_good_row(times=" 2"), "invalid_entry"),
    "times_true": Dropped(after_a_good_row(times=True), "invalid_entry"),
    "times_null": Dropped(after_a_good_row(times=None), "invalid_entry"),
    # ---- days
    "day_not_a_date": Dropped(after_a_good_row(day="yesterday"), "invalid_entry"),
    "day_slashed": Dropped(after_a_good_row(day=ago(1).replace("-", "/")), "invalid_entry"),
    "day_compact": Dropped(after_a_good_row(day=ago(1).replace("-", "")), "invalid_entry"),
    "day_not_in_the_calendar": Dropped(after_a_good_row(day="2026-02-30"), "invalid_entry"),
    "future_day": Dropped(after_a_good_row(day=IN_5_DAYS), "day_in_future"),
    "ancient_day": Dropped(after_a_good_row(day="1999-01-01"), "day_too_old"),
    # ---- names the manifests do not declare
    "sql_in_component": Dropped(after_a_good_row(component="x';DROP TABLE reports;--"), "component_not_in_manifest"),
    "sql_in_event": Dropped(after_a_good_row(event="enter';DROP TABLE reports;--"), "event_not_in_manifest"),
    "nul_in_event": Dropped(after_a_good_row(event="enter\x00"), "event_not_in_manifest"),
    "unknown_component": Dropped(after_a_good_row(component="LungCTAnalyzer"), "component_not_in_manifest"),
    "unknown_event_of_a_module": Dropped(after_a_good_row(event="secret"), "event_not_in_manifest"),
    "unknown_event_of_an_extension": Dropped(
        after_a_good_row(component="TotalSegmentator", event="segmentation/ct/brain"), "event_not_in_manifest"
    ),
}


@pytest.mark.parametrize("case", DROPPED.values(), ids=DROPPED.keys())
def test_a_bad_row_is_dropped_and_named_in_the_answer_and_the_good_one_stored(client, storage, dump, case):
    response = client.post("/telemetry", content=case.body(), headers=JSON)

    assert response.status_code == 200, response.text  # the extension clears its file on 200 only
    answer = response.json()
    assert answer["partial_success"]["dropped"] == {case.reason: 1}
    assert answer["partial_success"]["message"].startswith("[1].")  # where: the second row
    assert len(response.content) < 2048
    assert {key: answer[key] for key in ("status", "reports", "days")} == {"status": "stored", "reports": 1, "days": 1}
    assert totals(storage) == {("event", "", "Data/enter", ago(1)): (1, 1)}
    assert storage.report_count() == 1
    assert "DROP TABLE" not in repr(dump())


def a_file_cut_short_by_a_crash() -> list[Row]:
    """The extension rewrites its CSV file in place (``open(path, "w")`` in ``saveLoggedEventsToFile``): a crash in
    the middle leaves the last row cut short, and ``csv.DictReader`` gives that row's missing fields as None, which
    ``json.dumps`` sends as null. A row cut inside a field, and one with a field too many (``DictReader`` puts it
    under the key None, sent as "null"), are the other ways the file can be damaged."""
    rows = [("Data", "enter", ago(2), 2), ("SegmentEditor", "enter", ago(2), 1), ("Markups", "enter", ago(1), 3)]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["component", "event", "day", "times"])
    writer.writeheader()
    for component, event, day, times in rows:
        writer.writerow({"component": component, "event": event, "day": day, "times": times})
    damaged = text.getvalue() + f"Volumes,enter,{ago(1)},4,extra\r\n" + "SegmentEditor,effect/thr"
    return list(csv.DictReader(io.StringIO(damaged)))


def test_rows_of_a_damaged_file_are_dropped_and_the_others_stored(client, storage):
    rows = a_file_cut_short_by_a_crash()
    assert rows[-1] == {"component": "SegmentEditor", "event": "effect/thr", "day": None, "times": None}
    assert None in rows[-2]  # the field too many

    response = client.post("/telemetry", content=dumps(rows), headers=JSON)

    assert response.status_code == 200, response.text
    assert response.json()["partial_success"]["dropped"] == {"invalid_entry": 2}
    assert totals(storage) == {
        ("event", "", "Data/enter", ago(2)): (2, 1),
        ("event", "", "SegmentEditor/enter", ago(2)): (1, 1),
        ("event", "", "Markups/enter", ago(1)): (3, 1),
    }


def the_extensions_own_events() -> list[Row]:
    """What the extension itself logs, beside its host's events: ``logUsageEvent("Telemetry", "SlicerStartup")``
    at each start (``Telemetry.onStartupCompleted``) and ``("Telemetry", "logAnEvent")`` from the module's test
    button (``TelemetryLogic.logAnEvent``): neither is in slicer-like's manifest."""
    return rows_as_the_extension_sends_them(
        [
            ("Telemetry", "SlicerStartup", ago(3), 2),
            ("Data", "enter", ago(3), 2),
            ("Telemetry", "logAnEvent", ago(3), 1),
            ("SegmentEditor", "effect/threshold", ago(2), 4),
            ("Telemetry", "SlicerStartup", ago(2), 1),
        ]
    )


def test_the_extensions_own_events_are_dropped_and_the_module_events_stored(client, storage):
    response = client.post("/telemetry", content=dumps(the_extensions_own_events()), headers=JSON)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert {key: answer[key] for key in ("status", "reports", "days")} == {"status": "stored", "reports": 1, "days": 2}
    assert answer["partial_success"]["dropped"] == {"component_not_in_manifest": 3}
    assert "'Telemetry' is neither a component" in answer["partial_success"]["message"]
    assert totals(storage) == {
        ("event", "", "Data/enter", ago(3)): (2, 1),
        ("event", "", "SegmentEditor/effect/threshold", ago(2)): (4, 1),
    }


def test_rows_older_than_the_retention_window_are_dropped_so_the_file_is_cleared_at_last(client, storage, settings):
    # The extension keeps its rows until an upload is answered 200: after a long pause its file holds days
    # older than the retention window. Those are dropped; the rest is stored and the 200 lets it clear the file.
    old = (utc_today() - datetime.timedelta(days=settings.raw_retention_days + 30)).isoformat()
    rows = rows_as_the_extension_sends_them([("Data", "enter", old, 5), ("Data", "enter", ago(1), 1)])

    response = client.post("/telemetry", content=dumps(rows), headers=JSON)

    assert response.status_code == 200
    assert response.json()["partial_success"]["dropped"] == {"day_too_old": 1}
    assert totals(storage) == {("event", "", "Data/enter", ago(1)): (1, 1)}


def test_an_upload_of_nothing_declared_is_answered_200_and_stores_nothing(client, dump):
    rows = rows_as_the_extension_sends_them([("Telemetry", "SlicerStartup", ago(1), 3)])

    response = client.post("/telemetry", content=dumps(rows), headers=JSON)

    assert response.status_code == 200  # else the extension would send this row with every upload, forever
    answer = response.json()
    assert {key: answer[key] for key in ("status", "reports", "days")} == {"status": "empty", "reports": 0, "days": 0}
    assert answer["partial_success"]["dropped"] == {"component_not_in_manifest": 1}
    assert dump() == {"reports": [], "counters": [], "facts": []}


def test_refusals_are_counted_by_code_and_drops_per_application_for_operators(settings, storage, app_client, capsys):
    with app_client(settings, storage) as client:
        client.post("/telemetry", content=b"[", headers=JSON)
        client.post("/telemetry", content=after_a_good_row(component="Nope")(), headers=JSON)
        client.post("/telemetry", content=dumps(the_extensions_own_events()), headers=JSON)
        client.post("/telemetry/slicer-like", content=after_a_good_row(day="1999-01-01")(), headers=JSON)
        refused = client.get("/admin/v1/stats", headers={"authorization": f"Bearer {settings.admin_token}"}).json()
    # closing the application wrote the request log; a new one reads it as an operator would
    with app_client(settings, storage) as client:
        stats = client.get("/admin/v1/stats", headers={"authorization": f"Bearer {settings.admin_token}"}).json()

    assert refused["refused"] == {"invalid_body": 1}
    assert stats["dropped"] == {"slicer-like": {"component_not_in_manifest": 4, "day_too_old": 1}}
    assert stats["report_rows"] == 4
    assert storage.dropped() == stats["dropped"]
    assert main(["apps", "list", "--db", settings.database, "--public-db", str(settings.public_path)]) == 0
    listing = capsys.readouterr().out.splitlines()
    at = listing.index("slicer-like  (1 version(s); plugins: SlicerIGT, TotalSegmentator)")
    assert (
        listing[at + 1] == "  dropped from uploads in the request log kept: component_not_in_manifest 4, day_too_old 1"
    )


# ---- over real HTTP --------------------------------------------------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """``consentry-server serve`` on 127.0.0.1 with slicer-like as the application of ``POST /telemetry``."""
    config = tmp_path / "consentry.toml"
    config.write_text('slicer_app = "slicer-like"\n', "utf-8")
    with serving(tmp_path / "server", "--config", str(config)) as server:
        yield server


@pytest.mark.slow
def test_an_upload_over_http_as_the_extension_posts_it(server: RunningServer):
    server.admin("/admin/v1/manifests", SLICER.read_bytes())
    for extension in sorted((SLICER.parent / "extensions").glob("*.toml")):
        server.admin("/admin/v1/manifests", extension.read_bytes())

    # As the extension's requests path does: requests.post(url, headers={"Content-Type": ...}, json=rows).
    request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
        server.url + "/telemetry", data=dumps(upload()), headers=JSON, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "stored", "reports": 1, "days": 2}

    # The extension's requests path clears its file on status 200 exactly: a partly dropped upload gets it.
    partly = urllib.request.Request(  # noqa: S310
        server.url + "/telemetry", data=dumps(the_extensions_own_events()), headers=JSON, method="POST"
    )
    with urllib.request.urlopen(partly, timeout=10) as response:  # noqa: S310
        assert response.status == 200
        assert json.loads(response.read())["partial_success"]["dropped"] == {"component_not_in_manifest": 3}

    refused = urllib.request.Request(  # noqa: S310
        server.url + "/telemetry", data=dumps([GOOD])[:-3], headers=JSON, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(refused, timeout=10)  # noqa: S310
    assert error.value.code == 400
    assert json.loads(error.value.read())["error"]["code"] == "invalid_body"

    with urllib.request.urlopen(  # noqa: S310
        urllib.request.Request(  # noqa: S310
            server.url + "/admin/v1/export/slicer-like", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ),
        timeout=10,
    ) as response:
        exported = [json.loads(line) for line in response.read().splitlines()]
    assert sorted(row["day"] for row in exported) == [ago(3), ago(3), ago(2), ago(2)]
    assert {row["level"] for row in exported} == {"full"}
