"""``POST /v1/reports/{level}``: bad input gets a 4xx with a machine-readable code and changes nothing.

Every test runs twice: with reports stored by a thread of the serving process, and by the storing process that
``serve`` starts (a real child process), since a refusal may come from either side of that process boundary.
"""

from __future__ import annotations

import datetime
import gzip
import json
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest
from starlette.testclient import TestClient

from consentry.wire import Activity, Report, encode
from consentry_server.app import create_app
from support.bodies import MIB, chunked, gzip_bomb

JSON = {"content-type": "application/json"}


def utc_today() -> datetime.date:
    """The server's idea of today: ingest uses the UTC date."""
    return datetime.datetime.now(datetime.timezone.utc).date()


def document() -> dict[str, object]:
    """A valid napari-like basic report as JSON values (consent version filled in by the test)."""
    day = (utc_today() - datetime.timedelta(days=1)).isoformat()
    return {
        "schema": 1,
        "app": "napari-like",
        "app_version": "1.0.0",
        "level": "basic",
        "consent_version": "",
        "reporter": "ee" * 16,
        "first_report": True,
        "days": [day],
        "system": {"os": "linux", "arch": "x86_64"},
        "activity": {day: {"runs": 2, "active_minutes": 30}},
    }


def dumps(doc: dict[str, object]) -> bytes:
    return json.dumps(doc).encode()


def edit(**changes: object) -> Callable[[dict[str, object]], bytes]:
    """A body: the valid document with ``changes`` applied."""
    return lambda doc: dumps({**doc, **changes})


def without(key: str) -> Callable[[dict[str, object]], bytes]:
    return lambda doc: dumps({k: v for k, v in doc.items() if k != key})


def on_day(make: Callable[[str], object], key: str) -> Callable[[dict[str, object]], bytes]:
    """The document with ``key`` set to ``make(the report's day)``."""
    return lambda doc: dumps({**doc, key: make(doc["days"][0])})  # type: ignore[index]


def days_from_today(offset: int) -> Callable[[dict[str, object]], bytes]:
    day = (utc_today() + datetime.timedelta(days=offset)).isoformat()
    return lambda doc: dumps({**doc, "days": [day], "activity": {day: {"runs": 1, "active_minutes": 0}}})


@pytest.fixture(params=["thread", "process"])
def client(request, settings, storage) -> Iterator[TestClient]:
    """The application over the registered examples, storing reports in a thread or in a storing process."""
    app = create_app(settings, storage) if request.param == "thread" else create_app(settings)
    with TestClient(app) as test_client:
        yield test_client


@dataclass(frozen=True)
class Bad:
    body: Callable[[dict[str, object]], bytes]
    status: int
    code: str
    headers: dict[str, str | None] | None = None
    level: str = "basic"
    stream: bool = False


def sql_event(doc: dict[str, object]) -> bytes:
    day = doc["days"][0]  # type: ignore[index]
    full = {key: value for key, value in doc.items() if key not in {"system", "activity"}}
    return dumps({**full, "level": "full", "counts": {day: {"x';DROP TABLE reports;--": 1}}})


def duplicate_keys(doc: dict[str, object]) -> bytes:
    text = dumps(doc).decode()
    return text.replace('"app": "napari-like"', '"app": "napari-like", "app": "stripepy-like"', 1).encode()


def count(value: object) -> Callable[[dict[str, object]], bytes]:
    return on_day(lambda day: {day: {"runs": value, "active_minutes": 0}}, "activity")


def huge_count_digits(doc: dict[str, object]) -> bytes:
    day = doc["days"][0]  # type: ignore[index]
    text = dumps({**doc, "activity": {day: {"runs": 7, "active_minutes": 0}}}).decode()
    return text.replace('"runs": 7', '"runs": ' + "9" * 4000).encode()


def many_commands(doc: dict[str, object]) -> bytes:
    day = doc["days"][0]  # type: ignore[index]
    commands = [{"day": day, "name": "call", "duration": "<1s", "exit_code": 0, "count": 1}] * 100_000
    return gzip.compress(dumps({**doc, "commands": commands}))


BAD = {
    # ---- format
    "malformed_json": Bad(lambda doc: dumps(doc)[:-10], 400, "invalid_report"),
    "empty_body": Bad(lambda _: b"", 400, "invalid_report"),
    "not_an_object": Bad(lambda doc: dumps([doc]), 400, "invalid_report"),
    "wrong_type_bool_as_int": Bad(edit(first_report=1), 400, "invalid_report"),
    "wrong_type_days_as_string": Bad(lambda doc: dumps({**doc, "days": doc["days"][0]}), 400, "invalid_report"),  # type: ignore[index]
    "wrong_type_schema_as_string": Bad(edit(schema="1"), 400, "invalid_report"),
    "wrong_type_float_count": Bad(count(2.0), 400, "invalid_report"),
    "nan_count": Bad(lambda doc: huge_count_digits(doc).replace(b"9" * 4000, b"NaN"), 400, "invalid_report"),
    "deep_nesting": Bad(lambda _: b'{"system": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "invalid_report"),
    "deep_nesting_objects": Bad(lambda _: b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, 400, "invalid_report"),
    # Shaped like the canonical encoding, so that the fast decoder tries it first (and must not raise).
    "deep_nesting_canonical_objects": Bad(
        lambda _: b'{\n  "a": ' * 1000 + b"1" + b"}" * 1000 + b"\n", 400, "invalid_report"
    ),
    "deep_nesting_canonical_arrays": Bad(
        lambda _: b'{\n  "system": ' + b"[" * 1000 + b"]" * 1000 + b"\n}\n", 400, "invalid_report"
    ),
    "huge_array_100000_commands": Bad(edit(commands=[0] * 100_000), 400, "invalid_report"),
    "huge_array_100000_real_commands_gzip": Bad(many_commands, 413, "too_large", {"content-encoding": "gzip"}),
    "duplicate_keys": Bad(duplicate_keys, 400, "invalid_report"),
    "missing_field_reporter": Bad(without("reporter"), 400, "invalid_report"),
    "missing_field_days": Bad(without("days"), 400, "invalid_report"),
    "unknown_top_level_field": Bad(edit(ip="192.0.2.1"), 400, "invalid_report"),
    "utf16_body": Bad(lambda doc: dumps(doc).decode().encode("utf-16"), 400, "invalid_report"),
    "utf8_bom": Bad(lambda doc: b"\xef\xbb\xbf" + dumps(doc), 400, "invalid_report"),
    "non_utf8_body": Bad(lambda doc: dumps(doc).replace(b"linux", b"l\xefnux"), 400, "invalid_report"),
    "invalid_calendar_date": Bad(edit(days=["2026-02-30"]), 400, "invalid_report"),
    "reporter_not_a_reporter_id": Bad(edit(reporter="192.168.1.10"), 400, "invalid_report"),
    # ---- names
    "sql_in_event_name": Bad(sql_event, 400, "invalid_report", level="full"),
    "sql_in_app_name": Bad(edit(app="x';DROP TABLE reports;--"), 400, "invalid_report"),
    "unknown_system_field": Bad(edit(system={"os": "linux", "hostname": "lab-pc-12"}), 400, "invalid_report"),
    "level_none": Bad(edit(level="none"), 400, "invalid_report", level="none"),
    # ---- values
    "negative_count": Bad(count(-1), 400, "invalid_report"),
    "zero_count": Bad(on_day(lambda day: {day: {"ValueError": 0}}, "exceptions"), 400, "invalid_report"),
    "huge_count": Bad(count(10**12), 400, "invalid_report"),
    "huge_count_4000_digits": Bad(huge_count_digits, 400, "invalid_report"),
    # ---- transport
    "gzip_bomb": Bad(lambda _: gzip_bomb(), 413, "too_large", {"content-encoding": "gzip"}),
    "gzip_truncated": Bad(lambda doc: gzip.compress(dumps(doc))[:-12], 400, "bad_gzip", {"content-encoding": "gzip"}),
    "gzip_trailing_garbage": Bad(
        lambda doc: gzip.compress(dumps(doc)) + b"garbage", 400, "bad_gzip", {"content-encoding": "gzip"}
    ),
    "gzip_declared_but_plain": Bad(dumps, 400, "bad_gzip", {"content-encoding": "gzip"}),
    "content_type_text_plain": Bad(dumps, 415, "unsupported_media_type", {"content-type": "text/plain"}),
    "content_type_form": Bad(
        dumps, 415, "unsupported_media_type", {"content-type": "application/x-www-form-urlencoded"}
    ),
    "content_type_missing": Bad(dumps, 415, "unsupported_media_type", {"content-type": None}),
    "content_encoding_br": Bad(dumps, 415, "unsupported_encoding", {"content-encoding": "br"}),
    "charset_latin1": Bad(dumps, 415, "unsupported_charset", {"content-type": "application/json; charset=latin-1"}),
    "body_too_large_with_content_length": Bad(lambda doc: dumps(doc) + b" " * 600_000, 413, "too_large"),
    "body_too_large_without_content_length": Bad(
        lambda doc: dumps(doc) + b" " * 600_000, 413, "too_large", stream=True
    ),
    # ---- manifest
    "unknown_application": Bad(edit(app="not-registered"), 400, "unknown_app"),
    "unknown_level": Bad(edit(level="secret"), 400, "unknown_level", level="secret"),
    "level_mismatch": Bad(dumps, 400, "level_mismatch", level="full"),
    "unknown_event": Bad(on_day(lambda day: {day: {"viewer.secret": 1}}, "counts"), 400, "event_not_in_manifest"),
    "system_field_of_another_level": Bad(
        edit(system={"os": "linux", "memory": "8-16GB"}), 400, "field_not_in_manifest"
    ),
    "future_day": Bad(days_from_today(5), 400, "day_in_future"),
    "ancient_day": Bad(
        edit(days=["1999-01-01"], activity={"1999-01-01": {"runs": 1, "active_minutes": 0}}), 400, "day_too_old"
    ),
}


@pytest.fixture
def stored(post, make_report) -> Report:
    """A report already stored, so the raw tables are not empty when a bad request arrives."""
    report = make_report(
        "full", reporter=1, counts={utc_today() - datetime.timedelta(days=1): {"napari:layer:add_image": 2}}
    )
    assert post(report).json()["status"] == "stored"
    return report


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_bad_input_is_refused_with_a_code_and_changes_nothing(client, storage, dump, napari, bad):
    doc = {**document(), "consent_version": napari.consent_version}
    body = bad.body(doc)
    headers = {**JSON, **(bad.headers or {})}
    headers = {key: value for key, value in headers.items() if value is not None}
    rows, before = storage.report_count(), dump()
    assert rows == 1

    response = client.post(f"/v1/reports/{bad.level}", content=chunked(body) if bad.stream else body, headers=headers)

    assert response.status_code == bad.status, response.text
    assert ("content-length" in response.request.headers) is not bad.stream
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == bad.code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert storage.report_count() == rows
    assert dump() == before


def test_the_valid_document_of_the_table_is_itself_accepted(client, napari):
    # Guards the table above: each bad row differs from an accepted body only by what it names.
    doc = {**document(), "consent_version": napari.consent_version}
    response = client.post("/v1/reports/basic", content=dumps(doc), headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "stored", "days": 1}


def test_a_gzip_bomb_is_refused_without_being_inflated(client, storage):
    bomb = gzip_bomb()
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        response = client.post("/v1/reports/basic", content=bomb, headers={**JSON, "content-encoding": "gzip"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert peak < 10 * MIB, f"{peak} bytes allocated to refuse a 50 MiB bomb"
    assert storage.report_count() == 0


# ---- accepted reports ------------------------------------------------------------------------------------------
def test_a_valid_report_is_stored(post, make_report, storage):
    response = post(make_report(system={"os": "macos"}))
    assert response.status_code == 200
    assert response.json() == {"status": "stored", "days": 1}
    assert storage.report_count() == 1


def test_the_same_bytes_twice_are_stored_once(post, make_report, storage, dump):
    body = encode(make_report("full", counts={utc_today() - datetime.timedelta(days=1): {"napari:layer:add_image": 3}}))
    assert post(body, "full").json()["status"] == "stored"
    before = dump()

    response = post(body, "full")

    assert response.status_code == 200
    assert response.json() == {"status": "duplicate", "days": 1}
    assert storage.report_count() == 1
    assert dump() == before


def test_a_new_report_for_the_same_reporter_level_and_day_replaces_the_old(post, make_report, storage):
    day = utc_today() - datetime.timedelta(days=1)
    first = make_report("full", counts={day: {"napari:layer:add_image": 3, "napari:layer:add_points": 1}})
    assert post(first).json()["status"] == "stored"

    response = post(replace(first, counts={day: {"napari:layer:add_image": 7}}))

    assert response.status_code == 200
    assert response.json() == {"status": "replaced", "days": 1}
    assert storage.report_count() == 1
    totals = {(row.period, row.name): row.total for row in storage.aggregate().counters}
    assert totals == {(period, "napari:layer:add_image"): 7 for period in ("day", "week", "month")}


def test_another_level_of_the_same_reporter_and_day_is_a_separate_row(post, make_report, storage):
    assert post(make_report("basic")).json()["status"] == "stored"
    assert post(make_report("middle", system={"cpus": "2"})).json()["status"] == "stored"
    assert storage.report_count() == 2


def test_a_gzip_compressed_report_is_accepted(post, make_report, storage):
    body = gzip.compress(
        encode(make_report("full", exceptions={utc_today() - datetime.timedelta(days=1): {"KeyError": 1}}))
    )
    response = post(body, "full", {"content-encoding": "gzip"})
    assert response.status_code == 200
    assert response.json() == {"status": "stored", "days": 1}
    assert storage.report_count() == 1


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", 'Application/JSON; charset="UTF-8"'])
def test_a_utf8_charset_parameter_is_accepted(post, make_report, content_type):
    response = post(make_report(), headers={"content-type": content_type})
    assert response.status_code == 200
    assert response.json()["status"] == "stored"


def test_a_report_covering_several_days_stores_one_row_per_day(post, make_report, storage):
    today = utc_today()
    days = tuple(today - datetime.timedelta(days=n) for n in (3, 2, 1))
    report = make_report(days=days, activity={day: Activity(runs=1, active_minutes=10) for day in days})

    response = post(report)

    assert response.json() == {"status": "stored", "days": 3}
    assert storage.report_count() == 3
    stored_days = {row.start for row in storage.aggregate().installs if row.period == "day"}
    assert stored_days == set(days)


def test_nothing_of_a_refused_report_is_kept_in_the_raw_tables(post, make_report, storage, dump):
    # The first day is fine and the second is in the future: not even the first day is stored.
    today = utc_today()
    report = make_report(days=(today - datetime.timedelta(days=1), today + datetime.timedelta(days=3)))
    response = post(report)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "day_in_future",
        "field": "days[1]",
        "message": response.json()["error"]["message"],
    }
    assert storage.report_count() == 0
    assert dump() == {"reports": [], "counters": [], "facts": []}


# ---- operators -------------------------------------------------------------------------------------------------
def test_refusals_are_counted_by_code_for_operators(client, settings, post, make_report):
    post(b"{", "basic")
    post(b"[]", "basic")
    post(replace(make_report(), app="unregistered"))
    post(make_report(), headers={"content-type": "text/plain"})
    post(make_report())

    response = client.get("/admin/v1/stats", headers={"authorization": f"Bearer {settings.admin_token}"})

    assert response.status_code == 200
    stats = response.json()
    assert {key: stats[key] for key in ("report_rows", "apps", "refused")} == {
        "report_rows": 1,
        "apps": ["napari-like", "slicer-like", "stripepy-like"],
        "refused": {"invalid_report": 2, "unknown_app": 1, "unsupported_media_type": 1},
    }
    assert stats["tables"]["reports"] == 1
    assert stats["tables"]["request_log"] == 4  # every refusal, without address or payload


# ---- bounded answers -------------------------------------------------------------------------------------------
LONG = "a" * 100_000
BOUNDED = {
    "malformed_json": lambda doc: dumps(doc)[:-1] + LONG.encode(),
    "long_unknown_field": lambda doc: dumps({**doc, LONG: 1}),
    "long_duplicate_key": lambda doc: dumps(doc)[:-1] + f', "{LONG}": 1, "{LONG}": 2}}'.encode(),
    "long_event_name": on_day(lambda day: {day: {LONG: 1}}, "counts"),
    "long_day_key": lambda doc: dumps({**doc, "counts": {LONG: {"x": 1}}}),
    "long_string_value": edit(app_version=LONG),
    "count_with_4000_digits": huge_count_digits,
}


@pytest.mark.parametrize("body", BOUNDED.values(), ids=BOUNDED.keys())
def test_a_refusal_never_echoes_more_than_a_bounded_message(client, napari, body):
    doc = {**document(), "consent_version": napari.consent_version}
    response = client.post("/v1/reports/basic", content=body(doc), headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_report"
    assert len(response.content) < 2048, f"{len(response.content)}-byte answer: {response.text[:200]}..."
