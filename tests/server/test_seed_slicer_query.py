"""The query-string form of the 3D Slicer thread: ``GET /telemetry`` and ``GET /telemetry/{app}``.

The thread "Should we start collecting software usage data?" (discourse.slicer.org/t/30873, post #61 by lassoan,
2024-04-17, quoted again in post #73) proposes that a client report the counters of one collection period in
one request, "something like"::

    https://example.com/telemetry?app=Slicer&app_version=5.6.2&collection_start_date=20240402
    &collection_end_date=20240415&app_startup=28&module_DICOM_activate=12&module_SampleData_activate=3
    &extension_LungCTAnalyzer_AISegmentation=18&extension_LungCTAnalyzer_ClassicSegmentation=2

to a server that "returns success (200 OK) and an empty page whenever it receives a valid web request". That
URL is :data:`THREAD_QUERY`, used as is; only its dates are moved to recent days where a test needs them stored
(its own are older than any retention window). The application it names is registered from
``seed_formats/slicer.toml`` and its extension from ``seed_formats/LungCTAnalyzer.toml``, which declares
AISegmentation only, so ClassicSegmentation is an undeclared counter. The SlicerTelemetry extension itself only
posts its CSV rows (test_seed_slicer.py); nothing in its source sends this form.
"""

from __future__ import annotations

import datetime
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hypothesis
import pytest
from hypothesis import strategies as st
from starlette.testclient import TestClient

from consentry.manifest import Manifest, load_manifest, load_plugin_manifest
from consentry.wire.schema import MAX_COUNT
from consentry_server.app import create_app
from consentry_server.cli import main
from consentry_server.config import Settings
from consentry_server.ingest.seed_formats.slicer import MAX_QUERY_BYTES, query_pairs
from consentry_server.ingest.validate import Rejection
from support.processes import ADMIN_TOKEN, RunningServer, serving

MANIFESTS = Path(__file__).parent / "seed_formats"
#: Post #61's example request, verbatim (its query string).
THREAD_QUERY = (
    "app=Slicer&app_version=5.6.2&collection_start_date=20240402&collection_end_date=20240415&app_startup=28"
    "&module_DICOM_activate=12&module_SampleData_activate=3&extension_LungCTAnalyzer_AISegmentation=18"
    "&extension_LungCTAnalyzer_ClassicSegmentation=2"
)


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def compact(days_ago: int) -> str:
    """A day as the thread writes it, YYYYMMDD."""
    return (utc_today() - datetime.timedelta(days=days_ago)).strftime("%Y%m%d")


def iso(days_ago: int) -> str:
    return (utc_today() - datetime.timedelta(days=days_ago)).isoformat()


def recent(query: str = THREAD_QUERY, start: int = 14, end: int = 1) -> str:
    """``query`` with its collection period moved to ``start`` .. ``end`` days ago."""
    return query.replace("20240402", compact(start)).replace("20240415", compact(end))


def with_params(query: str, **changes: str | None) -> str:
    """``query`` with parameters replaced (None: removed) or appended, in order, nothing re-encoded."""
    pairs = [part.split("=", 1) for part in query.split("&")]
    kept = [f"{name}={changes[name]}" if name in changes else f"{name}={value}" for name, value in pairs]
    kept = [part for part, (name, _) in zip(kept, pairs, strict=True) if changes.get(name, "") is not None]
    names = {name for name, _ in pairs}
    return "&".join([*kept, *(f"{name}={value}" for name, value in changes.items() if name not in names)])


@pytest.fixture
def thread_slicer() -> Manifest:
    return load_manifest(MANIFESTS / "slicer.toml")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The conftest's settings: no slicer_app, so GET /telemetry takes the application from the query."""
    return Settings(
        database=f"sqlite:///{tmp_path / 'data' / 'consentry.sqlite3'}",
        public_database=str(tmp_path / "data" / "public.sqlite3"),
        admin_token="slicer-query-tests-token",  # noqa: S106 - a throwaway token for a throwaway server
        reporter_threshold=1,
    )


@pytest.fixture
def registered(storage, thread_slicer):
    """The conftest's storage (the example applications) with the thread's "slicer" and LungCTAnalyzer."""
    assert storage.register_manifest(thread_slicer)
    assert storage.register_manifest(load_plugin_manifest(MANIFESTS / "LungCTAnalyzer.toml", thread_slicer))
    return storage


@pytest.fixture(params=["thread", "process"])
def client(request, settings, registered) -> Iterator[TestClient]:
    """The application, storing in a thread or in a storing process."""
    app = create_app(settings, registered) if request.param == "thread" else create_app(settings)
    with TestClient(app) as test_client:
        yield test_client


def stored(storage, app: str = "slicer") -> list[tuple[str, str, str, str, str, int]]:
    """(level, day, app_version, kind, name, n) of every stored counter of ``app``, sorted."""
    return sorted(
        (row["level"], row["day"], row["app_version"], counter["kind"], counter["name"], counter["n"])
        for row in storage.export(app)
        for counter in row["counters"]
    )


def without_partial(answer: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in answer.items() if key != "partial_success"}


# ---- the thread's request ----------------------------------------------------------------------------------------
THREAD_COUNTS = [
    ("basic", iso(1), "5.6.2", "event", "app/startup", 28),
    ("full", iso(1), "5.6.2", "event", "DICOM/activate", 12),
    ("full", iso(1), "5.6.2", "event", "SampleData/activate", 3),
    ("full", iso(1), "5.6.2", "plugin_event", '["LungCTAnalyzer","AISegmentation"]', 18),
]


def test_the_threads_request_is_stored_on_its_last_day_with_its_app_version(client, registered):
    response = client.get("/telemetry?" + recent())

    assert response.status_code == 200, response.text
    answer = response.json()
    assert without_partial(answer) == {"status": "stored", "reports": 2, "days": 2}  # one report per level
    assert answer["partial_success"]["dropped"] == {"event_not_in_manifest": 1}  # ClassicSegmentation
    assert "ClassicSegmentation" in answer["partial_success"]["message"]
    assert stored(registered) == THREAD_COUNTS
    assert {row["facts"]["plugin.LungCTAnalyzer"] for row in registered.export("slicer") if row["level"] == "full"} == {
        "other"  # the form carries no extension version
    }
    assert len({row["reporter"] for row in registered.export("slicer")}) == 1  # one request, one reporter


def test_the_app_version_reaches_the_published_version_distribution(client, registered):
    assert client.get("/telemetry?" + recent()).status_code == 200
    versions = {
        (row.value, row.reporters)
        for row in registered.aggregate().values
        if row.app == "slicer" and row.field == "app_version" and row.period == "day"
    }
    assert versions == {("5.6.2", 1)}


def test_without_app_version_the_version_is_other(client, registered):
    response = client.get("/telemetry?" + with_params(recent(), app_version=None))
    assert response.status_code == 200
    assert {row[2] for row in stored(registered)} == {"other"}


def test_the_threads_request_as_written_in_2024_is_answered_200_and_stores_nothing(client, dump):
    # Its period ended in April 2024, far outside the retention window: every counter is dropped as too old, and
    # the 200 tells a client that keeps its counts until one arrives that it may let them go.
    before = dump()
    response = client.get("/telemetry?" + THREAD_QUERY)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "empty"
    assert response.json()["partial_success"]["dropped"] == {"day_too_old": 5}
    assert dump() == before


def test_the_same_counts_posted_as_rows_are_stored_alike_but_for_the_version(client, registered):
    assert client.get("/telemetry?" + recent()).status_code == 200
    rows = [
        {"component": "app", "event": "startup", "day": iso(1), "times": "28"},
        {"component": "DICOM", "event": "activate", "day": iso(1), "times": "12"},
        {"component": "SampleData", "event": "activate", "day": iso(1), "times": "3"},
        {"component": "LungCTAnalyzer", "event": "AISegmentation", "day": iso(1), "times": "18"},
        {"component": "LungCTAnalyzer", "event": "ClassicSegmentation", "day": iso(1), "times": "2"},
    ]
    posted = client.post("/telemetry/slicer", content=json.dumps(rows), headers={"content-type": "application/json"})
    assert posted.json()["partial_success"]["dropped"] == {"event_not_in_manifest": 1}

    by_reporter: dict[str, list[tuple[object, ...]]] = {}
    for row in registered.export("slicer"):
        counters = [(c["kind"], c["name"], c["n"]) for c in row["counters"]]
        by_reporter.setdefault(row["reporter"], []).append((row["level"], row["day"], row["app_version"], *counters))
    queried, from_rows = sorted(by_reporter.values(), key=lambda rows: rows[0][2] != "5.6.2")
    assert [row[:2] + row[3:] for row in sorted(queried)] == [row[:2] + row[3:] for row in sorted(from_rows)]
    assert {row[2] for row in queried} == {"5.6.2"}
    assert {row[2] for row in from_rows} == {"other"}


@pytest.mark.parametrize("app", ["Slicer", "slicer", "SLICER"])
def test_the_application_is_named_without_case_in_the_query_or_in_the_path(client, registered, app):
    assert client.get("/telemetry?" + with_params(recent(), app=app)).status_code == 200
    assert client.get("/telemetry/slicer?" + with_params(recent(), app=None)).status_code == 200
    assert client.get("/telemetry/slicer?" + with_params(recent(), app=app)).status_code == 200
    assert len({row["reporter"] for row in registered.export("slicer")}) == 3


def test_without_app_the_slicer_app_setting_names_it(settings, registered):
    with TestClient(create_app(settings.replace(slicer_app="slicer"), registered)) as client:
        response = client.get("/telemetry?" + with_params(recent(), app=None))
    assert response.status_code == 200, response.text
    assert stored(registered) == THREAD_COUNTS


@pytest.mark.parametrize("day", ["collection_end_date", "iso"])
def test_days_may_also_be_written_with_dashes_and_the_start_may_be_left_out(client, registered, day):
    query = with_params(recent(), collection_start_date=None)
    if day == "iso":
        query = with_params(recent(), collection_start_date=iso(14), collection_end_date=iso(1))
    assert client.get("/telemetry?" + query).status_code == 200
    assert stored(registered) == THREAD_COUNTS


def test_form_encoding_and_percent_escapes_are_undone(client, registered):
    query = recent().replace("module_DICOM_activate", "module_%44ICOM_activate").replace("=5.6.2", "=5%2E6%2E2")
    assert client.get("/telemetry?" + query).status_code == 200
    assert stored(registered) == THREAD_COUNTS


def test_a_counter_of_zero_is_left_out(client, registered):
    response = client.get("/telemetry?" + with_params(recent(), module_DICOM_activate="0"))
    assert response.status_code == 200
    assert [row for row in stored(registered) if row[4] == "DICOM/activate"] == []


def test_each_request_counts_as_one_reporter(client, registered):
    for _ in range(3):
        assert client.get("/telemetry?" + recent()).json()["status"] == "stored"
    installs = {
        (row.level, row.reporters)
        for row in registered.aggregate().installs
        if row.app == "slicer" and row.period == "day"
    }
    assert installs == {("basic", 3), ("full", 3)}


# ---- counters dropped, the rest stored ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Drop:
    counter: str
    reason: str


DROPPED = {
    "undeclared_extension_event": Drop("extension_LungCTAnalyzer_ClassicSegmentation=2", "event_not_in_manifest"),
    "undeclared_module_event": Drop("module_DICOM_secret=1", "event_not_in_manifest"),
    "undeclared_module": Drop("module_Segmentations_activate=4", "component_not_in_manifest"),
    "unregistered_extension": Drop("extension_SlicerIGT_connect=1", "component_not_in_manifest"),
    "the_extensions_own_startup": Drop("Telemetry_SlicerStartup=1", "component_not_in_manifest"),
    "no_underscore": Drop("startup=3", "invalid_entry"),
    "nothing_after_the_prefix": Drop("module_=3", "invalid_entry"),
    "count_not_a_number": Drop("module_SampleData_activate=twelve", "invalid_entry"),
    "count_negative": Drop("module_SampleData_activate=-1", "invalid_entry"),
    "count_a_fraction": Drop("module_SampleData_activate=2.5", "invalid_entry"),
    "count_with_exponent": Drop("module_SampleData_activate=1e3", "invalid_entry"),
    "count_over_the_largest": Drop(f"module_SampleData_activate={MAX_COUNT + 1}", "invalid_entry"),
    "count_of_4000_digits": Drop("module_SampleData_activate=" + "9" * 4000, "invalid_entry"),
    "count_with_a_space": Drop("module_SampleData_activate=+12", "invalid_entry"),
    "name_of_200_characters": Drop("module_DICOM_" + "a" * 200 + "=1", "invalid_entry"),
    "sql_in_the_name": Drop("module_x%27%3BDROP%20TABLE%20reports%3B--_y=1", "component_not_in_manifest"),
    "nul_in_the_name": Drop("module_DICOM_activate%00=1", "event_not_in_manifest"),
    "newline_in_the_name": Drop("module_DICOM_activate%0A=1", "event_not_in_manifest"),
    "html_in_the_name": Drop("module_%3Cscript%3E_x=1", "component_not_in_manifest"),
}


@pytest.mark.parametrize("case", DROPPED.values(), ids=DROPPED.keys())
def test_a_counter_that_is_not_declared_or_not_valid_is_dropped_and_the_others_stored(client, registered, dump, case):
    # In place of the thread's ClassicSegmentation counter, or of its own counter (a bad count of SampleData).
    name, _, value = case.counter.partition("=")
    query = with_params(recent(), extension_LungCTAnalyzer_ClassicSegmentation=None)
    query = with_params(query, **{name: value})
    expected = [row for row in THREAD_COUNTS if name != "module_SampleData_activate" or row[4] != "SampleData/activate"]

    response = client.get("/telemetry?" + query)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["partial_success"]["dropped"] == {case.reason: 1}
    assert answer["partial_success"]["message"].startswith("query.")
    assert len(response.content) < 2048
    assert without_partial(answer) == {"status": "stored", "reports": 2, "days": 2}
    assert stored(registered) == expected
    assert "DROP TABLE" not in repr(dump())


@pytest.mark.parametrize(
    ("end", "reason"), [(-5, "day_in_future"), (400, "day_too_old")], ids=["in_the_future", "too_old"]
)
def test_a_period_ending_outside_the_window_drops_every_counter(client, dump, end, reason):
    before = dump()
    response = client.get("/telemetry?" + recent(start=max(end, 0) + 7, end=end))
    assert response.status_code == 200
    assert response.json()["partial_success"]["dropped"] == {reason: 5}
    assert response.json()["status"] == "empty"
    assert dump() == before


def test_an_end_day_one_ahead_of_the_server_is_taken(client, registered):
    # A client east of UTC is a day ahead; native ingest takes a day up to future_days (1) ahead too.
    assert client.get("/telemetry?" + recent(start=6, end=-1)).status_code == 200
    assert {row[1] for row in stored(registered)} == {iso(-1)}


# ---- refused whole -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Refused:
    query: str
    status: int
    code: str
    path: str = "/telemetry"
    headers: dict[str, str] | None = None


def _recent(**changes: str | None) -> str:
    return with_params(recent(), **changes)


REFUSED = {
    # ---- the period
    "no_end_date": Refused(_recent(collection_end_date=None), 400, "invalid_query"),
    "end_date_a_word": Refused(_recent(collection_end_date="yesterday"), 400, "invalid_query"),
    "end_date_not_in_the_calendar": Refused(_recent(collection_end_date="20260230"), 400, "invalid_query"),
    "end_date_month_13": Refused(_recent(collection_end_date="20261301"), 400, "invalid_query"),
    "end_date_slashed": Refused(_recent(collection_end_date=iso(1).replace("-", "/")), 400, "invalid_query"),
    "end_date_half_dashed": Refused(_recent(collection_end_date=iso(1).replace("-", "", 1)), 400, "invalid_query"),
    "end_date_with_a_time": Refused(_recent(collection_end_date=compact(1) + "T120000"), 400, "invalid_query"),
    "end_date_of_4000_digits": Refused(_recent(collection_end_date="2" * 4000), 400, "invalid_query"),
    "start_after_end": Refused(_recent(collection_start_date=compact(0)), 400, "invalid_query"),
    "start_date_a_word": Refused(_recent(collection_start_date="lastweek"), 400, "invalid_query"),
    # ---- the version
    "app_version_with_a_space": Refused(_recent(app_version="5.6.2+beta"), 400, "invalid_query"),
    "app_version_a_path": Refused(_recent(app_version="..%2F..%2Fetc"), 400, "invalid_query"),
    "app_version_of_65_characters": Refused(_recent(app_version="5" * 65), 400, "invalid_query"),
    "app_version_with_html": Refused(_recent(app_version="%3Cscript%3E"), 400, "invalid_query"),
    # ---- not name=value: what a URL cut short leaves
    "cut_inside_a_name": Refused(recent() + "&module_SampleData_act", 400, "invalid_query"),
    "cut_after_the_equals_sign": Refused(recent() + "&module_SampleData_activate=", 400, "invalid_query"),
    "empty_name": Refused(recent() + "&=3", 400, "invalid_query"),
    "a_lone_equals_sign": Refused(recent() + "&=", 400, "invalid_query"),
    "cut_inside_an_escape": Refused(recent() + "&module_DICOM_activate%2", 400, "invalid_query"),
    # ---- encoding
    "escape_not_hexadecimal": Refused(recent() + "&module_DICOM_%zzactivate=1", 400, "invalid_query"),
    "escape_of_one_digit": Refused(recent() + "&module_DICOM_activate=1%4", 400, "invalid_query"),
    "escape_not_utf8": Refused(recent() + "&module_D%FCICOM_activate=1", 400, "invalid_query"),
    "escape_a_lone_surrogate": Refused(recent() + "&module_%ED%A0%80_x=1", 400, "invalid_query"),
    "escape_utf8_overlong": Refused(recent() + "&module_%C0%AF_x=1", 400, "invalid_query"),
    # ---- given twice
    "end_date_twice": Refused(recent() + f"&collection_end_date={compact(2)}", 400, "invalid_query"),
    "app_twice": Refused(recent() + "&app=slicer", 400, "invalid_query"),
    "app_version_twice": Refused(recent() + "&app_version=5.6.3", 400, "invalid_query"),
    "counter_twice": Refused(recent() + "&app_startup=1", 400, "invalid_query"),
    "counter_twice_once_escaped": Refused(recent() + "&app%5Fstartup=1", 400, "invalid_query"),
    # ---- applications
    "no_application_anywhere": Refused(_recent(app=None), 404, "no_default_app"),
    "unknown_application": Refused(_recent(app="Blender"), 404, "unknown_app"),
    "sql_in_the_application": Refused(_recent(app="x%27%3BDROP%20TABLE%20reports%3B--"), 404, "unknown_app"),
    "application_of_10000_characters": Refused(_recent(app="s" * 10_000), 404, "unknown_app"),
    "unknown_application_in_the_path": Refused(_recent(app=None), 404, "unknown_app", path="/telemetry/blender"),
    "the_query_and_the_path_disagree": Refused(_recent(app="slicer-like"), 400, "invalid_query", "/telemetry/slicer"),
    # ---- size, and browsers
    "query_too_long": Refused(recent() + "&padding_x=" + "1" * MAX_QUERY_BYTES, 414, "query_too_long"),
    "many_counters_too_long": Refused(
        recent() + "".join(f"&module_DICOM_e{n}=1" for n in range(1000)), 414, "query_too_long"
    ),
    "sent_by_a_page_of_another_site": Refused(
        recent(), 403, "cross_site_request", headers={"sec-fetch-site": "cross-site"}
    ),
    "sent_by_a_page_of_a_sibling_site": Refused(
        recent(), 403, "cross_site_request", headers={"sec-fetch-site": "same-site"}
    ),
}


@pytest.fixture
def already_stored(client) -> None:
    """A request already stored, so the raw tables are not empty when a bad one arrives."""
    assert client.get("/telemetry?" + recent(start=20, end=10)).json()["status"] == "stored"


@pytest.mark.usefixtures("already_stored")
@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_a_malformed_or_hostile_query_is_refused_whole_and_changes_nothing(client, dump, case):
    before = dump()

    response = client.get(case.path + "?" + case.query, headers=case.headers)

    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    error = response.json()["error"]
    assert error["code"] == case.code
    assert error["message"]
    assert len(response.content) < 2048
    assert dump() == before


def test_the_refused_queries_differ_from_accepted_ones_only_by_what_they_name(client):
    # Guards the table: the same requests with their fault undone are stored.
    assert client.get("/telemetry?" + recent()).status_code == 200
    assert client.get("/telemetry/slicer?" + recent()).status_code == 200
    assert client.get("/telemetry?" + recent(), headers={"sec-fetch-site": "same-origin"}).status_code == 200
    assert client.get("/telemetry?" + recent(), headers={"sec-fetch-site": "none"}).status_code == 200  # typed in
    near = recent() + "&padding_x=" + "1" * (MAX_QUERY_BYTES - len(recent()) - len("&padding_x="))
    assert len(near) == MAX_QUERY_BYTES
    response = client.get("/telemetry?" + near)
    assert response.status_code == 200
    assert response.json()["partial_success"]["dropped"] == {"event_not_in_manifest": 1, "invalid_entry": 1}


def test_every_cut_of_the_threads_request_is_refused_or_stores_what_it_holds(client, dump):
    # A URL cut short (a proxy's or a logger's limit, a crash while writing it) loses its end. Where the cut
    # leaves a parameter without "=" or without a value, or leaves out the end of the period, nothing is
    # stored (a cut inside app=Slicer names no registered application: 404). A cut between two digits of a
    # count cannot be told from a smaller count by anyone, as the thread's form carries no length or checksum:
    # such a cut stores that smaller count. A cut just after an "&" loses nothing.
    query = recent()
    end_at = query.index("collection_end_date=") + len("collection_end_date=") + 8
    for cut in range(1, len(query)):
        part = query[:cut]
        last = part.rstrip("&").rsplit("&", 1)[-1]
        before = dump()
        response = client.get("/telemetry?" + part)
        if cut < end_at or "=" not in last or last.endswith("="):
            assert response.status_code in (400, 404), (part, response.text)
            assert response.json()["error"]["code"] in ("invalid_query", "unknown_app")
            assert dump() == before
        else:
            assert response.status_code == 200, (part, response.text)


# ---- HEAD, caching, other methods -----------------------------------------------------------------------------------
def test_a_head_request_never_counts(client, registered, dump, settings):
    before = dump()
    for _ in range(3):
        response = client.head("/telemetry?" + recent())
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"
        assert response.headers["cache-control"] == "no-store"
        assert response.content == b""
    assert dump() == before
    stats = client.get("/admin/v1/stats", headers={"authorization": f"Bearer {settings.admin_token}"}).json()
    assert stats["refused"] == {}  # not a refusal of a report either: nothing was sent

    assert client.get("/telemetry?" + recent()).status_code == 200  # the same request as a GET counts once
    assert stored(registered) == THREAD_COUNTS


def test_no_answer_may_be_cached(client):
    # A cache between the client and the server that answered a repeated GET itself would lose counts.
    for query in (recent(), THREAD_QUERY, "app=slicer", _recent(app="nope")):
        response = client.get("/telemetry?" + query)
        assert response.headers["cache-control"] == "no-store", (query, response.status_code)
        assert "etag" not in response.headers
        assert "last-modified" not in response.headers


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_are_not_allowed_and_store_nothing(client, dump, method):
    before = dump()
    assert client.request(method, "/telemetry?" + recent()).status_code == 405
    assert dump() == before


# ---- the query parser --------------------------------------------------------------------------------------------
def test_the_thread_query_parses_into_its_parameters_in_order():
    assert query_pairs(THREAD_QUERY.encode()) == [tuple(part.split("=")) for part in THREAD_QUERY.split("&")]


@pytest.mark.parametrize(
    "raw",
    [b"app=Sl\xe4cer", b"module_DICOM_activate=1\x00", b"a=1&b=\x7f", b"a=1 2", b"a=1\tb", b"app=\xc3\xa4"],
    ids=["latin1", "nul", "del", "space", "tab", "raw_utf8"],
)
def test_a_query_that_is_not_printable_ascii_is_refused(raw):
    # A URL carries anything else percent-encoded; HTTP servers differ in what raw bytes they let through.
    with pytest.raises(Rejection) as refused:
        query_pairs(raw)
    assert refused.value.code == "invalid_query"


def test_empty_parameters_between_ampersands_are_skipped():
    assert query_pairs(b"&a=1&&b=2&") == [("a", "1"), ("b", "2")]


@hypothesis.settings(max_examples=300, deadline=None, database=None, derandomize=True)
@hypothesis.given(st.binary(max_size=300))
def test_any_bytes_are_parsed_or_refused_with_invalid_query(raw):
    refused: Rejection | None = None
    try:
        pairs = query_pairs(raw)
    except Rejection as rejection:
        refused, pairs = rejection, []
    if refused is not None:
        assert (refused.status, refused.code) == (400, "invalid_query")
        assert len(json.dumps(refused.to_json())) < 2048
    assert all(name and value for name, value in pairs)
    assert len({name for name, _ in pairs}) == len(pairs)


PIECES = st.sampled_from(
    [
        "app=Slicer",
        "app=slicer",
        "app=nope",
        "app_version=5.6.2",
        "app_version=%20",
        f"collection_start_date={compact(9)}",
        f"collection_end_date={compact(2)}",
        f"collection_end_date={iso(3)}",
        "collection_end_date=2024",
        "app_startup=3",
        "module_DICOM_activate=12",
        "module_DICOM_activate=-3",
        "extension_LungCTAnalyzer_AISegmentation=1",
        "extension_LungCTAnalyzer_ClassicSegmentation=2",
        "module_Nope_x=1",
        "module_DICOM_x%00=1",
        "%FF=1",
        "%2",
        "=",
        "module_SampleData_activate",
        "app_startup=",
        "",
    ]
)


@pytest.mark.slow
def test_any_mix_of_good_and_bad_parameters_is_stored_as_declared_or_refused_whole(settings, registered, dump):
    with TestClient(create_app(settings, registered)) as client:

        @hypothesis.settings(max_examples=150, deadline=None, database=None, derandomize=True)
        @hypothesis.given(st.lists(PIECES, max_size=12))
        def run(pieces: list[str]) -> None:
            before = dump()
            response = client.get("/telemetry?" + "&".join(pieces))
            assert response.status_code < 500
            assert response.headers["cache-control"] == "no-store"
            if response.status_code != 200:
                assert dump() == before
                return
            names = {row[4] for row in stored(registered)}
            assert names <= {
                "app/startup",
                "DICOM/activate",
                "SampleData/activate",
                '["LungCTAnalyzer","AISegmentation"]',
            }

        run()


# ---- what operators see --------------------------------------------------------------------------------------------
def test_drops_of_the_query_form_are_counted_per_application_for_operators(settings, registered, capsys):
    token = {"authorization": f"Bearer {settings.admin_token}"}
    with TestClient(create_app(settings, registered)) as client:
        client.get("/telemetry?" + recent())  # ClassicSegmentation: event_not_in_manifest
        client.get("/telemetry?" + recent() + "&module_Nope_x=1&module_DICOM_secret=2")
        client.get("/telemetry?" + THREAD_QUERY)  # five counters too old
        client.get("/telemetry?" + recent() + "&module_SampleData_act")  # refused whole: counted as a refusal
        refused = client.get("/admin/v1/stats", headers=token).json()["refused"]
    with TestClient(create_app(settings, registered)) as client:  # the request log, as written on closing
        stats = client.get("/admin/v1/stats", headers=token).json()

    assert refused == {"invalid_query": 1}
    assert stats["dropped"] == {
        "slicer": {"component_not_in_manifest": 1, "day_too_old": 5, "event_not_in_manifest": 3}
    }
    assert main(["apps", "list", "--db", settings.database, "--public-db", str(settings.public_path)]) == 0
    listing = capsys.readouterr().out.splitlines()
    at = listing.index("slicer  (1 version(s); plugins: LungCTAnalyzer)")
    assert listing[at + 1] == (
        "  dropped from uploads in the request log kept: component_not_in_manifest 1, day_too_old 5, "
        "event_not_in_manifest 3"
    )


# ---- over real HTTP ------------------------------------------------------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """``consentry-server serve`` on 127.0.0.1, without a default Slicer application."""
    with serving(tmp_path / "server") as server:
        yield server


def raw_request(server: RunningServer, target: bytes, method: bytes = b"GET") -> tuple[int, bytes]:
    """Send a request line as given, byte for byte; the status and the whole answer."""
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def exported(server: RunningServer, app: str) -> list[dict[str, object]]:
    request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
        server.url + f"/admin/v1/export/{app}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return [json.loads(line) for line in response.read().splitlines()]


@pytest.mark.slow
def test_the_threads_request_over_http(server: RunningServer):
    server.admin("/admin/v1/manifests", (MANIFESTS / "slicer.toml").read_bytes())
    server.admin("/admin/v1/manifests", (MANIFESTS / "LungCTAnalyzer.toml").read_bytes())

    # As a client following the thread would send it: a plain GET of the URL.
    with urllib.request.urlopen(server.url + "/telemetry?" + recent(), timeout=10) as response:  # noqa: S310
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        answer = json.loads(response.read())
    assert without_partial(answer) == {"status": "stored", "reports": 2, "days": 2}
    assert answer["partial_success"]["dropped"] == {"event_not_in_manifest": 1}

    head = urllib.request.Request(server.url + "/telemetry?" + recent(), method="HEAD")  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(head, timeout=10)  # noqa: S310
    assert error.value.code == 405
    error.value.close()

    query = recent().encode()
    for target, status, code in (
        (b"/telemetry?" + query + b"&module_SampleData_act", 400, b"invalid_query"),  # cut short
        (b"/telemetry?" + query + b"&module_D%FCICOM_activate=1", 400, b"invalid_query"),  # an escape, not UTF-8
        (b"/telemetry?" + query + b"&x_y=" + b"1" * MAX_QUERY_BYTES, 414, b"query_too_long"),
        (b"/telemetry?" + query + b"&module_D\xfcICOM_activate=1", 400, None),  # a raw byte: refused by uvicorn
        (b"/telemetry?" + query.replace(b"&", b"\r\n&", 1), 400, None),  # a line break: the request line ends
    ):
        status_code, raw = raw_request(server, target)
        assert status_code == status, raw[:300]
        if code is not None:
            assert b'"code":"' + code + b'"' in raw, raw[:300]
    # A request line past the server's head limit (max_header_bytes, 64 KiB) never reaches the application:
    # httptools refuses a URL that long itself (a plain-text 400, where a header that long gets the 431 of
    # consentry_server.ingest.connections).
    status_code, raw = raw_request(server, b"/telemetry?" + query + b"&x_y=" + b"1" * 70_000)
    assert status_code in (400, 431), raw[:300]

    rows = exported(server, "slicer")
    assert (
        sorted(
            (row["level"], row["day"], row["app_version"], counter["kind"], counter["name"], counter["n"])
            for row in rows
            for counter in row["counters"]
        )
        == THREAD_COUNTS
    )
    stats = server.admin("/admin/v1/stats")
    assert stats["refused"] == {"invalid_query": 2, "query_too_long": 1}  # type: ignore[index]
