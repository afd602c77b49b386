"""dfx command records: ``POST /dfx/v1/commands``.

Bodies are shaped as dfx sends them (``src/dfx/src/lib/telemetry.rs``): one compact JSON record per line, with
the fields of its ``CommandRecord`` and the ``batch`` and ``sequence`` its publisher adds, lines joined by
``\\n`` without a final one, posted with no content type at all. Bad input gets a 4xx with a machine-readable code
and changes nothing; a batch sent again is stored once; parameters keep only what the manifest allows.
"""

from __future__ import annotations

import datetime
import gzip
import http.client
import json
import os
import stat
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from consentry.manifest import Manifest, load_manifest
from consentry.spans import duration_bucket
from consentry.wire import Command, Report, encode
from consentry_server.app import create_app
from consentry_server.config import Settings
from consentry_server.seed_formats.batch_key import batch_key_path, batch_reporter
from consentry_server.seed_formats.dfx import MAX_LINE_LENGTH, MAX_RECORDS
from consentry_server.storage import open_storage
from support.bodies import chunked, gzip_bomb
from support.processes import ADMIN_TOKEN, RunningServer, script, start, stop

DFX = Path(__file__).parent / "seed_formats" / "dfx.toml"
ROUTE = "/dfx/v1/commands"
JSON = {"content-type": "application/json"}
BATCH = "5b0ba7ee-52e0-4bb7-a9ad-4c9b2ff11e2c"
OTHER_BATCH = "0e9c8f4b-7d3e-4c41-9f7a-2d1f5e6a8b90"


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def monday(weeks_ago: int = 0) -> datetime.date:
    today = utc_today()
    return today - datetime.timedelta(days=today.weekday(), weeks=weeks_ago)


def iso_week(weeks_ago: int = 0) -> str:
    """The week as dfx writes it: ``format!("{:04}-{:02}", iso_week.year(), iso_week.week())``."""
    year, week, _ = monday(weeks_ago).isocalendar()
    return f"{year:04}-{week:02}"


def record(command: str = "deploy", *parameters: tuple[str, str | None], **fields: object) -> dict[str, object]:
    """A ``CommandRecord`` as dfx serialises it: every field, the optional ones null."""
    out: dict[str, object] = {
        "tool": "dfx",
        "version": "0.25.0",
        "command": command,
        "platform": "linux",
        "week": iso_week(),
        "parameters": [{"name": name, "value": value, "source": "command-line"} for name, value in parameters],
        "exit_code": 0,
        "execution_time_ms": 1840,
        "replica_error_call_site": None,
        "replica_error_code": None,
        "replica_reject_code": None,
        "cycles_host": None,
        "identity_type": "keyring",
        "network_type": "project-local",
        "project_canisters": [{"type": "motoko"}, {"type": "assets"}],
    }
    out.update(fields)
    return out


def batch(records: list[dict[str, object]], batch_id: str = BATCH, first: int = 0) -> bytes:
    """What ``add_batch_and_sequence_to_batch`` makes: each line re-serialised with batch and sequence added."""
    lines = [
        json.dumps({**item, "batch": batch_id, "sequence": first + index}, sort_keys=True, separators=(",", ":"))
        for index, item in enumerate(records)
    ]
    return "\n".join(lines).encode()


def session() -> list[dict[str, object]]:
    """A few days of a developer, as a batch's records."""
    return [
        record("new", ("project_name", None), ("type", "motoko"), ("frontend", "sveltekit")),
        record("start", ("background", None), ("clean", None), execution_time_ms=5200),
        record("deploy", ("network", None), ("NetworkOpt", None), ("mode", "upgrade"), execution_time_ms=48_000),
        record("canister call", ("canister_name", None), ("method_name", None), ("output", "idl")),
        record("canister call", ("canister_name", None), ("method_name", None), ("output", "idl")),
        record("canister call", ("canister_name", None), ("output", "candid"), exit_code=255, execution_time_ms=300),
        record("identity new", ("new_identity", None), ("storage_mode", "plaintext")),
    ]


@pytest.fixture
def dfx() -> Manifest:
    return load_manifest(DFX)


@pytest.fixture
def storage(storage, dfx):
    """The conftest's storage, with the dfx-like manifest registered too."""
    assert storage.register_manifest(dfx)
    return storage


@pytest.fixture(params=["thread", "process"])
def client(request, settings, storage) -> Iterator[TestClient]:
    """The application over the registered manifests, storing reports in a thread or in a storing process."""
    app = create_app(settings, storage) if request.param == "thread" else create_app(settings)
    with TestClient(app) as test_client:
        yield test_client


def post(client: TestClient, body: bytes | Iterator[bytes], headers: dict[str, str] | None = None):
    """Post as dfx does: no content type (httpx adds none for raw content)."""
    response = client.post(ROUTE, content=body, headers=headers or {})
    if not headers:
        assert "content-type" not in response.request.headers
    return response


def counters(storage, kind: str | None = None) -> dict[tuple[str, str, str], tuple[int, int]]:
    """Aggregated counters of dfx per day: (kind, name, start) -> (total, reporters)."""
    return {
        (row.kind, row.name, row.start.isoformat()): (row.total, row.reporters)
        for row in storage.aggregate().counters
        if row.app == "dfx" and row.period == "day" and kind in (None, row.kind)
    }


def stats(client: TestClient, settings: Settings) -> dict[str, object]:
    return client.get("/admin/v1/stats", headers={"authorization": f"Bearer {settings.admin_token}"}).json()


# ---- accepted batches ------------------------------------------------------------------------------------------
def test_a_batch_as_dfx_sends_it_is_stored_as_native_reports(client, storage):
    response = post(client, batch(session()))

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "stored", "reports": 2, "days": 2, "records": 7}
    assert storage.report_count() == 2  # one report per level (basic, full), each on the week's Monday
    week = monday().isoformat()
    assert counters(storage, "command_runs") == {
        ("command_runs", "new", week): (1, 1),
        ("command_runs", "start", week): (1, 1),
        ("command_runs", "deploy", week): (1, 1),
        ("command_runs", "canister/call", week): (3, 1),
        ("command_runs", "identity/new", week): (1, 1),
    }
    assert counters(storage, "command_failed") == {("command_failed", "canister/call", week): (1, 1)}
    assert counters(storage, "command_duration") == {
        ("command_duration", '["canister/call","1-10s"]', week): (2, 1),
        ("command_duration", '["canister/call","<1s"]', week): (1, 1),
        ("command_duration", '["deploy","10-60s"]', week): (1, 1),
        ("command_duration", '["identity/new","1-10s"]', week): (1, 1),
        ("command_duration", '["new","1-10s"]', week): (1, 1),
        ("command_duration", '["start","1-10s"]', week): (1, 1),
    }
    rows = {row["level"]: row for row in storage.export("dfx")}
    assert rows["basic"]["facts"] == {"system.os": "linux"}
    assert rows["full"]["facts"] == {}  # the full level collects no system field
    assert rows["basic"]["app_version"] == "0.25.0"


def test_parameters_keep_only_what_the_manifest_allows(client, storage, settings, dump):
    assert post(client, batch(session())).status_code == 200
    week = monday().isoformat()

    assert counters(storage, "command_param") == {
        ("command_param", '["canister/call","network","not given"]', week): (3, 1),
        ("command_param", '["canister/call","output","given"]', week): (1, 1),  # "candid" is not an allowed value
        ("command_param", '["canister/call","output","idl"]', week): (2, 1),
        ("command_param", '["deploy","ic","not given"]', week): (1, 1),
        ("command_param", '["deploy","mode","upgrade"]', week): (1, 1),
        ("command_param", '["deploy","network","given"]', week): (1, 1),  # dfx hides the value: given
        ("command_param", '["deploy","yes","not given"]', week): (1, 1),
        ("command_param", '["identity/new","storage_mode","plaintext"]', week): (1, 1),
        ("command_param", '["new","dry_run","not given"]', week): (1, 1),
        ("command_param", '["new","frontend","sveltekit"]', week): (1, 1),
        ("command_param", '["new","type","motoko"]', week): (1, 1),
        ("command_param", '["start","background","given"]', week): (1, 1),
        ("command_param", '["start","clean","given"]', week): (1, 1),
    }
    # Undeclared parameters (project_name, NetworkOpt, canister_name x3, method_name x2, new_identity) and
    # the value that is not allowed are dropped, and counted for operators.
    refused = stats(client, settings)["refused"]
    assert refused == {"dfx_param_not_in_manifest": 8, "dfx_param_value_not_allowed": 1}
    stored = repr(dump())
    for name in ("candid", "project_name", "canister_name", "method_name", "NetworkOpt", "project-local", "keyring"):
        assert name not in stored


def test_the_same_batch_sent_twice_is_stored_once(client, dump):
    body = batch(session())
    assert post(client, body).json()["status"] == "stored"
    before = dump()

    response = post(client, body)

    assert response.status_code == 200
    assert response.json() == {"status": "duplicate", "reports": 2, "days": 2, "records": 7}
    assert dump() == before


def test_a_batch_after_a_half_of_it_leaves_the_whole_batch_stored_once(client, storage, dump):
    records = session()
    whole = batch(records)
    assert post(client, batch(records[:3])).json()["status"] == "stored"  # an earlier attempt got half through

    response = post(client, whole)

    assert response.status_code == 200
    assert response.json()["status"] == "stored"  # the full level is new; the basic level's report is replaced
    after_retry = dump()
    assert post(client, whole).json()["status"] == "duplicate"
    assert dump() == after_retry
    assert counters(storage, "command_runs")[("command_runs", "canister/call", monday().isoformat())] == (3, 1)
    assert storage.report_count() == 2


def test_a_half_batch_repeated_inside_the_request_counts_once(client, storage):
    records = session()
    body = batch(records) + b"\n" + batch(records[:4])  # the first four records again, same batch and sequence
    response = post(client, body)
    assert response.json() == {"status": "stored", "reports": 2, "days": 2, "records": 7}
    assert counters(storage, "command_runs")[("command_runs", "canister/call", monday().isoformat())] == (3, 1)


def test_the_second_half_of_a_batch_alone_is_refused_and_changes_nothing(client, dump):
    records = session()
    assert post(client, batch(records)).status_code == 200
    before = dump()

    response = post(client, batch(records[4:], first=4))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "incomplete_batch"
    assert dump() == before


def test_each_batch_is_one_reporter_whose_id_is_a_keyed_hash_of_the_batch(client, storage, settings):
    body = batch(session()) + b"\n" + batch(session()[:2], OTHER_BATCH)
    assert post(client, body).json()["reports"] == 3

    reporters = {(row["level"], row["reporter"]) for row in storage.export("dfx")}
    key_file = batch_key_path(settings)
    key = key_file.read_bytes()
    expected = {batch_reporter(key, "dfx", batch_id, "0.25.0") for batch_id in (BATCH, OTHER_BATCH)}
    assert {reporter for _, reporter in reporters} == expected
    assert len(key) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert batch_reporter(b"another server's key" * 2, "dfx", BATCH, "0.25.0") not in expected
    installs = {(row.level, row.reporters) for row in storage.aggregate().installs if row.period == "day"}
    assert installs == {("basic", 2), ("full", 1)}


def test_the_key_survives_a_restart_so_a_retry_after_it_is_still_a_duplicate(settings, storage, app_client):
    body = batch(session())
    with app_client(settings, storage) as first:
        assert post(first, body).json()["status"] == "stored"
    with app_client(settings, storage) as second:
        assert post(second, body).json()["status"] == "duplicate"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/x-ndjson", "text/plain; charset=latin-1", "x/anything"]
)
def test_any_content_type_is_accepted(client, storage, content_type):
    response = post(client, batch(session()), {"content-type": content_type})
    assert response.status_code == 200, response.text
    assert storage.report_count() == 2


def test_a_final_newline_and_crlf_line_ends_are_accepted(client, storage):
    body = batch(session()).replace(b"\n", b"\r\n") + b"\r\n"
    assert post(client, body).json()["records"] == 7
    assert storage.report_count() == 2


def test_a_gzip_compressed_batch_is_accepted(client, storage):
    response = post(client, gzip.compress(batch(session())), {"content-encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert storage.report_count() == 2


@pytest.mark.parametrize(
    ("platform", "os"),
    [
        ("linux", "linux"),
        ("wsl", "linux"),
        ("macos", "macos"),
        ("windows", "windows"),
        ("freebsd", "freebsd"),
        ("ios", "other"),
        ("solaris", "other"),
    ],
)
def test_the_platform_becomes_the_binned_os(client, storage, platform, os):
    assert post(client, batch([record(platform=platform)])).status_code == 200
    [row] = storage.export("dfx")
    assert row["facts"] == {"system.os": os}


@pytest.mark.parametrize("milliseconds", [0, 999, 1000, 59_999, 600_000, 7_200_000, 10**12])
def test_the_execution_time_becomes_the_clients_duration_bucket(client, storage, milliseconds):
    assert post(client, batch([record(execution_time_ms=milliseconds)])).status_code == 200
    bucket = duration_bucket(milliseconds / 1000)
    assert counters(storage, "command_duration") == {
        ("command_duration", f'["deploy","{bucket}"]', monday().isoformat()): (1, 1)
    }


@pytest.mark.parametrize(("exit_code", "stored"), [(0, 0), (1, 1), (255, 255), (-1, 255), (3221225477, None)])
def test_exit_codes_are_kept_and_those_outside_0_to_255_stored_as_255(client, storage, exit_code, stored):
    response = post(client, batch([record(exit_code=exit_code)]))
    if stored is None:  # not an i32: dfx cannot send it
        assert response.status_code == 400
        return
    assert response.status_code == 200
    [name] = [name for kind, name, _ in counters(storage, "command") if kind == "command"]
    assert json.loads(name)[3] == stored


@pytest.mark.parametrize(
    "week",
    [
        iso_week(1),
        iso_week(1).replace("-", "-W"),
        iso_week(1).replace("-", "-w"),
        monday(1).isoformat(),
        (monday(1) + datetime.timedelta(days=6)).isoformat(),
    ],
)
def test_a_week_is_stored_on_its_monday(client, storage, week):
    assert post(client, batch([record(week=week)])).status_code == 200
    [row] = storage.export("dfx")
    assert row["day"] == monday(1).isoformat()


def test_a_record_without_a_week_is_put_in_the_week_it_arrives(client, storage):
    without = record()
    del without["week"]
    assert post(client, batch([record(week=None), without])).status_code == 200
    assert [row["day"] for row in storage.export("dfx")] == [monday().isoformat()]


def test_records_of_several_weeks_and_versions(client, storage):
    records = [record(week=iso_week(2)), record(week=iso_week(1)), record(version="0.26.0", week=iso_week(1))]
    response = post(client, batch(records))
    assert response.json() == {"status": "stored", "reports": 2, "days": 3, "records": 3}
    rows = sorted((row["app_version"], row["day"]) for row in storage.export("dfx"))
    assert rows == [
        ("0.25.0", monday(2).isoformat()),
        ("0.25.0", monday(1).isoformat()),
        ("0.26.0", monday(1).isoformat()),
    ]


def test_the_stored_batch_is_stored_and_aggregated_exactly_as_the_same_native_report(client, storage, dfx, tmp_path):
    records = [record("deploy", ("mode", "auto")), record("deploy", ("mode", "auto")), record("build", exit_code=1)]
    assert post(client, batch(records)).status_code == 200
    exported = list(storage.export("dfx"))

    day = monday()
    deploy = {"mode": "auto", "network": False, "ic": False, "yes": False}
    native = Report(
        app="dfx",
        app_version="0.25.0",
        level="basic",
        consent_version=dfx.consent_version,
        reporter=exported[0]["reporter"],
        first_report=False,
        days=(day,),
        system={"os": "linux"},
        commands=(
            Command(day=day, name="deploy", duration="1-10s", exit_code=0, count=2, params=deploy),
            Command(day=day, name="build", duration="1-10s", exit_code=1, count=1, params={"check": False}),
        ),
    )
    other = Settings(database=f"sqlite:///{tmp_path / 'native' / 'db.sqlite3'}", reporter_threshold=1)
    native_storage = open_storage(other)
    try:
        native_storage.register_manifest(dfx)
        with TestClient(create_app(other, native_storage)) as native_client:
            response = native_client.post("/v1/reports/basic", content=encode(native), headers=JSON)
            assert response.json() == {"status": "stored", "days": 1}
        unreceived = [{**row, "received": None} for row in native_storage.export("dfx")]
        assert unreceived == [{**row, "received": None} for row in exported]
        assert native_storage.aggregate() == storage.aggregate()
    finally:
        native_storage.close()


# ---- bad input -------------------------------------------------------------------------------------------------
def then(**changes: object) -> Callable[[], bytes]:
    """A good record, then one with ``changes`` (a value of ``...`` removes the key), in one batch."""

    def body() -> bytes:
        bad = {key: value for key, value in record(**changes).items() if value is not ...}
        return batch([record("build"), bad])

    return body


def lines(*extra: bytes) -> Callable[[], bytes]:
    """A good batch, then ``extra`` lines as they are."""
    return lambda: b"\n".join([batch([record("build")]), *extra])


def replaced(old: bytes, new: bytes) -> Callable[[], bytes]:
    return lambda: batch([record("build"), record()]).replace(old, new, 1)


@dataclass(frozen=True)
class Bad:
    body: Callable[[], bytes]
    status: int
    code: str
    headers: dict[str, str] | None = None
    stream: bool = False


BAD = {
    # ---- format
    "truncated_last_line": Bad(lambda: batch(session())[:-25], 400, "invalid_record"),
    "malformed_json_line": Bad(lines(b'{"tool":"dfx",'), 400, "invalid_record"),
    "empty_body": Bad(lambda: b"", 400, "invalid_body"),
    "only_blank_lines": Bad(lambda: b"\n\n  \n", 400, "invalid_body"),
    "a_json_array_not_records": Bad(lambda: json.dumps([record()]).encode(), 400, "invalid_record"),
    "a_line_that_is_a_string": Bad(lines(b'"deploy"'), 400, "invalid_record"),
    "utf16": Bad(lambda: batch([record()]).decode().encode("utf-16"), 400, "invalid_body"),
    "non_utf8": Bad(lambda: batch([record()]).replace(b"linux", b"l\xefnux"), 400, "invalid_body"),
    "deep_nesting": Bad(lines(b"[" * 30_000 + b"]" * 30_000), 400, "invalid_record"),
    "deep_nesting_objects": Bad(lines(b'{"a":' * 10_000 + b"1" + b"}" * 10_000), 400, "invalid_record"),
    "too_many_records": Bad(lambda: b"{}\n" * (MAX_RECORDS + 1), 400, "too_many_records"),
    "huge_line": Bad(then(cycles_host="x" * (MAX_LINE_LENGTH + 1)), 400, "line_too_long"),
    "huge_parameters_array": Bad(then(parameters=[{"name": "yes", "value": None}] * 300), 400, "invalid_record"),
    "duplicate_keys": Bad(replaced(b'"exit_code":0', b'"exit_code":0,"exit_code":1'), 400, "invalid_record"),
    # ---- missing or mistyped fields
    **{
        f"missing_{key}": Bad(then(**{key: ...}), 400, "invalid_record")
        for key in ("tool", "version", "command", "platform", "parameters", "exit_code", "execution_time_ms")
    },
    "missing_batch": Bad(lines(json.dumps({**record(), "sequence": 1}).encode()), 400, "invalid_record"),
    "missing_sequence": Bad(lines(json.dumps({**record(), "batch": BATCH}).encode()), 400, "invalid_record"),
    "execution_time_null": Bad(then(execution_time_ms=None), 400, "invalid_record"),
    "execution_time_negative": Bad(then(execution_time_ms=-5), 400, "invalid_record"),
    "execution_time_huge": Bad(then(execution_time_ms=10**16), 400, "invalid_record"),
    "execution_time_of_4000_digits": Bad(
        replaced(b'"execution_time_ms":1840', b'"execution_time_ms":' + b"9" * 4000), 400, "invalid_record"
    ),
    "execution_time_a_string": Bad(then(execution_time_ms="1840"), 400, "invalid_record"),
    "execution_time_a_float": Bad(
        replaced(b'"execution_time_ms":1840', b'"execution_time_ms":18.4'), 400, "invalid_record"
    ),
    "exit_code_a_string": Bad(then(exit_code="0"), 400, "invalid_record"),
    "exit_code_true": Bad(then(exit_code=True), 400, "invalid_record"),
    "sequence_negative": Bad(
        lines(json.dumps({**record(), "batch": BATCH, "sequence": -1}).encode()), 400, "invalid_record"
    ),
    "version_with_a_space": Bad(then(version="0.25 beta"), 400, "invalid_record"),
    "batch_with_odd_characters": Bad(lambda: batch([record()], batch_id="a b;c"), 400, "invalid_record"),
    "parameter_not_an_object": Bad(then(parameters=["--network=ic"]), 400, "invalid_record"),
    "parameter_value_a_number": Bad(then(parameters=[{"name": "mode", "value": 3}]), 400, "invalid_record"),
    "platform_a_number": Bad(then(platform=7), 400, "invalid_record"),
    # ---- weeks
    "week_out_of_range": Bad(then(week="2026-60"), 400, "invalid_record"),
    "week_53_of_a_52_week_year": Bad(then(week="2025-53"), 400, "invalid_record"),
    "week_in_words": Bad(then(week="last week"), 400, "invalid_record"),
    "week_a_number": Bad(then(week=202610), 400, "invalid_record"),
    "future_week": Bad(then(week=f"{utc_today().year + 1}-10"), 400, "day_in_future"),
    "ancient_week": Bad(then(week="2019-05"), 400, "day_too_old"),
    # ---- names
    "unknown_tool": Bad(then(tool="npm"), 400, "unknown_app"),
    "sql_in_tool": Bad(then(tool="x';DROP TABLE reports;--"), 400, "unknown_app"),
    "unknown_command": Bad(then(command="canister delete"), 400, "command_not_in_manifest"),
    "sql_in_command": Bad(then(command="deploy';DROP TABLE reports;--"), 400, "command_not_in_manifest"),
    "empty_command": Bad(then(command=""), 400, "invalid_record"),
    # ---- duplicates and batches
    "conflicting_duplicate": Bad(
        lambda: batch([record("build")]) + b"\n" + batch([record("deploy")]), 400, "conflicting_record"
    ),
    "batch_with_a_gap": Bad(lambda: batch([record()]) + b"\n" + batch([record()], first=2), 400, "incomplete_batch"),
    "batch_not_from_zero": Bad(lambda: batch([record(), record()], first=1), 400, "incomplete_batch"),
    # ---- transport
    "body_too_large": Bad(lambda: batch([record()]) + b"\n" * 600_000, 413, "too_large"),
    "body_too_large_without_content_length": Bad(
        lambda: batch([record()]) + b"\n" * 600_000, 413, "too_large", stream=True
    ),
    "gzip_bomb": Bad(gzip_bomb, 413, "too_large", {"content-encoding": "gzip"}),
    "gzip_truncated": Bad(lambda: gzip.compress(batch(session()))[:-12], 400, "bad_gzip", {"content-encoding": "gzip"}),
    "gzip_declared_but_plain": Bad(lambda: batch([record()]), 400, "bad_gzip", {"content-encoding": "gzip"}),
    "content_encoding_br": Bad(lambda: batch([record()]), 415, "unsupported_encoding", {"content-encoding": "br"}),
}


@pytest.fixture
def stored(client) -> None:
    """A batch already stored, so the raw tables are not empty when a bad request arrives."""
    assert post(client, batch(session(), OTHER_BATCH)).json()["status"] == "stored"


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_bad_input_is_refused_with_a_code_and_changes_nothing(client, storage, dump, bad):
    body = bad.body()
    before = dump()
    assert storage.report_count() == 2

    response = client.post(ROUTE, content=chunked(body) if bad.stream else body, headers=bad.headers or {})

    assert response.status_code == bad.status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == bad.code
    assert error["message"]
    assert len(response.content) < 2048
    assert dump() == before


def test_the_good_records_of_the_table_are_themselves_accepted(client):
    # Guards the table above: each bad body differs from an accepted one only by what it names.
    assert post(client, then()()).json() == {"status": "stored", "reports": 1, "days": 1, "records": 2}
    assert post(client, lines()()).status_code == 200


def test_refusals_are_counted_by_code_for_operators(client, settings):
    post(client, b"{")
    post(client, then(command="canister delete")())
    post(client, batch([record()]))

    refused = stats(client, settings)["refused"]

    assert refused == {"invalid_record": 1, "command_not_in_manifest": 1}


# ---- over real HTTP --------------------------------------------------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """``consentry-server serve`` on a free port of 127.0.0.1, with SQLite in a temporary folder."""
    data = tmp_path / "server"
    database, public = data / "consentry.sqlite3", data / "public.sqlite3"
    command = [script("consentry-server"), "serve", "--db", f"sqlite:///{database}", "--public-db", str(public)]
    command += ["--host", "127.0.0.1", "--port", "0"]
    env = {**os.environ, "CONSENTRY_ADMIN_TOKEN": ADMIN_TOKEN}
    started = start(command, env, r"listening on (http://127\.0\.0\.1:\d+)")
    try:
        yield RunningServer(started.match.group(1), database, public, started)
    finally:
        stop(started)


def send_without_content_type(url: str, body: bytes) -> tuple[int, dict[str, object]]:
    """POST as reqwest does for a ``String`` body: Content-Length, and no Content-Type header at all."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("POST", ROUTE)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.slow
def test_a_batch_over_http_without_a_content_type(server: RunningServer):
    server.admin("/admin/v1/manifests", DFX.read_bytes())
    body = batch(session())

    assert send_without_content_type(server.url, body) == (
        200,
        {"status": "stored", "reports": 2, "days": 2, "records": 7},
    )
    assert send_without_content_type(server.url, body)[1]["status"] == "duplicate"  # dfx retries whole batches
    status, answer = send_without_content_type(server.url, batch([record("canister delete")], OTHER_BATCH))
    assert (status, answer["error"]["code"]) == (400, "command_not_in_manifest")

    request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
        server.url + "/admin/v1/export/dfx", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        exported = [json.loads(line) for line in response.read().splitlines()]
    assert sorted(row["level"] for row in exported) == ["basic", "full"]
    assert {row["day"] for row in exported} == {monday().isoformat()}
    assert server.admin("/admin/v1/stats")["refused"] == {  # type: ignore[index]
        "command_not_in_manifest": 1,
        "dfx_param_not_in_manifest": 16,
        "dfx_param_value_not_allowed": 2,
    }
