"""dfx command records: ``POST /dfx/v1/commands``.

Bodies are built as dfx builds them (``dfinity/sdk`` at 0f64459, ``src/dfx/src/lib/telemetry.rs`` and
``src/dfx/src/main.rs``): one ``CommandRecord`` per command run, every field written (its ``Option`` fields as
null), re-serialised by the publisher with ``batch`` and ``sequence`` added (``serde_json::Value`` without
``preserve_order``, so the keys come out sorted), lines joined by ``\\n`` without a final one, posted with no
content type. The publisher retries a batch not answered 2xx for up to 180 s, then keeps it and stops at that
batch. So a malformed body gets a 4xx with a machine-readable code and changes nothing, while a record that the
manifest does not declare, that is not valid or whose week is outside the window is dropped, counted per
application for operators and named in a 200 answer (``partial_success``), and the rest is stored; a batch sent
again is stored once.
"""

from __future__ import annotations

import datetime
import gzip
import http.client
import json
import stat
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from consentry.manifest import Manifest, load_manifest
from consentry.wire import Command, Report, encode
from consentry.wire.bins import duration_bucket
from consentry.wire.schema import UNKNOWN_DURATION
from consentry_server.app import create_app
from consentry_server.cli import main
from consentry_server.config import Settings
from consentry_server.ingest.seed_formats.batch_key import batch_key_path, batch_reporter
from consentry_server.ingest.seed_formats.dfx import MAX_LINE_LENGTH, MAX_RECORDS, parse_records, record_day, to_reports
from consentry_server.ingest.seed_formats.endpoint import DayWindow
from consentry_server.storage import open_storage
from support.bodies import chunked, gzip_bomb
from support.processes import ADMIN_TOKEN, RunningServer, serving
from support.seed_reports import as_first_report_unknown, first_report_unknown_records

DFX = Path(__file__).parent / "seed_formats" / "dfx.toml"
ROUTE = "/dfx/v1/commands"
JSON = {"content-type": "application/json"}
BATCH = "5b0ba7ee-52e0-4bb7-a9ad-4c9b2ff11e2c"
OTHER_BATCH = "0e9c8f4b-7d3e-4c41-9f7a-2d1f5e6a8b90"
THIRD_BATCH = "9a1d2c3b-4e5f-4a6b-8c7d-0e1f2a3b4c5d"


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def ago(days: int) -> str:
    return (utc_today() - datetime.timedelta(days=days)).isoformat()


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


def before_parsing() -> dict[str, object]:
    """The record of a run that failed before dfx read its command line (``inner_main`` returned an error before
    ``set_command_and_arguments``, ``set_platform`` and ``set_week``): ``Telemetry::default()``'s empty command and
    platform, no week, exit code 255 (``main``), the elapsed time set as always."""
    return record(
        "",
        platform="",
        week=None,
        exit_code=255,
        execution_time_ms=12,
        identity_type=None,
        network_type=None,
        project_canisters=None,
    )


def batch(records: list[dict[str, object]], batch_id: str = BATCH, first: int = 0) -> bytes:
    """What ``add_batch_and_sequence_to_batch`` makes: each line re-serialised with batch and sequence added."""
    lines = [
        json.dumps({**item, "batch": batch_id, "sequence": first + index}, sort_keys=True, separators=(",", ":"))
        for index, item in enumerate(records)
    ]
    return "\n".join(lines).encode()


def declared() -> list[dict[str, object]]:
    """Runs whose every parameter the manifest declares with a value it allows (dfx's own unit tests: ``dfx deploy``
    sends no parameter; flags are sent with a null value; values from a list of possible values as given)."""
    return [
        record("deploy"),
        record("deploy", ("mode", "upgrade"), execution_time_ms=48_000),
        record("start", ("background", None), ("clean", None), execution_time_ms=5200),
        record("build", ("check", None), exit_code=255, execution_time_ms=300),
    ]


def session() -> list[dict[str, object]]:
    """A few days of a developer, as dfx records them: clap's argument ids, positional ones and argument groups
    (``canister_name``, ``NetworkOpt``, ``network-select``) included, which the manifest does not declare."""
    return [
        record("new", ("project_name", None), ("type", "motoko"), ("frontend", "sveltekit")),
        record("start", ("background", None), ("clean", None), execution_time_ms=5200),
        record(
            "deploy",
            ("network", None),
            ("NetworkOpt", None),
            ("network-select", None),
            ("mode", "upgrade"),
            execution_time_ms=48_000,
        ),
        record("canister call", ("canister_name", None), ("method_name", None), ("output", "idl")),
        record("canister call", ("canister_name", None), ("method_name", None), ("output", "idl")),
        record(
            "canister call",
            ("canister_name", None),
            ("method_name", None),
            ("network", None),
            exit_code=255,
            execution_time_ms=300,
        ),
        record("identity new", ("new_identity", None), ("storage_mode", "plaintext")),
        # an installed extension adds project templates to --type's possible values (project_templates::populate)
        record("new", ("project_name", None), ("type", "extension-template"), ("dry_run", None)),
    ]


@pytest.fixture
def dfx() -> Manifest:
    return load_manifest(DFX)


@pytest.fixture
def storage(storage, dfx):
    """The conftest's storage, with the dfx-like manifest registered too."""
    assert storage.register_manifest(dfx)
    return storage


def application(settings: Settings, storage, mode: str):
    """The application over the registered manifests, storing reports in a thread or in a storing process."""
    return create_app(settings, storage) if mode == "thread" else create_app(settings)


@pytest.fixture(params=["thread", "process"])
def mode(request) -> str:
    return request.param


@pytest.fixture
def client(mode, settings, storage) -> Iterator[TestClient]:
    with TestClient(application(settings, storage, mode)) as test_client:
        yield test_client


def post(client: TestClient, body: bytes | Iterator[bytes], headers: dict[str, str] | None = None):
    """Post as dfx does: no content type (httpx adds none for raw content)."""
    response = client.post(ROUTE, content=body, headers=headers or {})
    if not headers:
        assert "content-type" not in response.request.headers
    return response


def stored(answer: dict[str, object]) -> dict[str, object]:
    """The answer without what it says was dropped."""
    return {key: value for key, value in answer.items() if key != "partial_success"}


def dropped(answer: dict[str, object]) -> dict[str, int]:
    partial = answer["partial_success"]
    assert isinstance(partial, dict)
    return partial["dropped"]


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
def test_a_fully_declared_batch_is_stored_whole_and_nothing_is_dropped(client, storage):
    response = post(client, batch(declared()))

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "stored", "reports": 1, "days": 1, "records": 4}  # no partial_success
    week = monday().isoformat()
    assert counters(storage, "command_runs") == {
        ("command_runs", "deploy", week): (2, 1),
        ("command_runs", "start", week): (1, 1),
        ("command_runs", "build", week): (1, 1),
    }
    assert counters(storage, "command_failed") == {("command_failed", "build", week): (1, 1)}
    assert counters(storage, "command_param") == {
        ("command_param", '["build","check","given"]', week): (1, 1),
        ("command_param", '["deploy","ic","not given"]', week): (2, 1),
        ("command_param", '["deploy","mode","not given"]', week): (1, 1),
        ("command_param", '["deploy","mode","upgrade"]', week): (1, 1),
        ("command_param", '["deploy","network","not given"]', week): (2, 1),
        ("command_param", '["deploy","yes","not given"]', week): (2, 1),
        ("command_param", '["start","background","given"]', week): (1, 1),
        ("command_param", '["start","clean","given"]', week): (1, 1),
    }
    [row] = storage.export("dfx")
    assert (row["level"], row["day"], row["app_version"], row["facts"]) == (
        "basic",
        monday().isoformat(),
        "0.25.0",
        {"system.os": "linux", "first_report": "unknown"},  # dfx cannot say whether a run is an install's first
    )


def test_a_batch_as_dfx_sends_it_is_stored_and_undeclared_parameters_are_left_out(client, storage, dump):
    response = post(client, batch(session()))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert stored(answer) == {"status": "stored", "reports": 2, "days": 2, "records": 8}
    # Every record is kept; the parameters the manifest does not declare are dropped: project_name x2,
    # NetworkOpt, network-select, canister_name x3, method_name x3, new_identity. The template that is not an
    # allowed value of --type is kept as "given" and counted too.
    assert dropped(answer) == {"param_not_in_manifest": 11, "param_value_not_allowed": 1}
    message = answer["partial_success"]["message"]
    assert "records[0].parameters: 'project_name' is not a parameter of 'new' in the manifest" in message
    assert "records[7].parameters: 'extension-template' is not an allowed value of 'type'" in message
    assert storage.report_count() == 2  # one report per level (basic, full), each on the week's Monday
    week = monday().isoformat()
    assert counters(storage, "command_runs") == {
        ("command_runs", "new", week): (2, 1),
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
        ("command_duration", '["new","1-10s"]', week): (2, 1),
        ("command_duration", '["start","1-10s"]', week): (1, 1),
    }
    assert counters(storage, "command_param") == {
        ("command_param", '["canister/call","network","given"]', week): (1, 1),
        ("command_param", '["canister/call","network","not given"]', week): (2, 1),
        ("command_param", '["canister/call","output","idl"]', week): (2, 1),
        ("command_param", '["canister/call","output","not given"]', week): (1, 1),
        ("command_param", '["deploy","ic","not given"]', week): (1, 1),
        ("command_param", '["deploy","mode","upgrade"]', week): (1, 1),
        ("command_param", '["deploy","network","given"]', week): (1, 1),  # dfx hides the value: given
        ("command_param", '["deploy","yes","not given"]', week): (1, 1),
        ("command_param", '["identity/new","storage_mode","plaintext"]', week): (1, 1),
        ("command_param", '["new","dry_run","given"]', week): (1, 1),
        ("command_param", '["new","dry_run","not given"]', week): (1, 1),
        ("command_param", '["new","frontend","not given"]', week): (1, 1),
        ("command_param", '["new","frontend","sveltekit"]', week): (1, 1),
        ("command_param", '["new","type","given"]', week): (1, 1),  # the value not allowed
        ("command_param", '["new","type","motoko"]', week): (1, 1),
        ("command_param", '["start","background","given"]', week): (1, 1),
        ("command_param", '["start","clean","given"]', week): (1, 1),
    }
    rows = {row["level"]: row for row in storage.export("dfx")}
    assert rows["basic"]["facts"] == {"system.os": "linux", "first_report": "unknown"}
    assert rows["full"]["facts"] == {"first_report": "unknown"}  # the full level collects no system field
    assert rows["basic"]["app_version"] == "0.25.0"
    kept = repr(dump())
    for name in ("extension-template", "project_name", "canister_name", "method_name", "NetworkOpt", "keyring"):
        assert name not in kept
    assert "project-local" not in kept


def test_the_same_batch_sent_twice_is_stored_once(client, dump):
    body = batch(session())
    first = post(client, body).json()
    assert first["status"] == "stored"
    before = dump()

    response = post(client, body)

    assert response.status_code == 200
    assert response.json() == {**first, "status": "duplicate"}  # the same drops, named again
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
    assert stored(response.json()) == {"status": "stored", "reports": 2, "days": 2, "records": 8}
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
    response = post(client, batch(declared()), {"content-type": content_type})
    assert response.status_code == 200, response.text
    assert storage.report_count() == 1


def test_a_final_newline_and_crlf_line_ends_are_accepted(client, storage):
    body = batch(declared()).replace(b"\n", b"\r\n") + b"\r\n"
    assert post(client, body).json() == {"status": "stored", "reports": 1, "days": 1, "records": 4}
    assert storage.report_count() == 1


def test_a_gzip_compressed_batch_is_accepted(client, storage):
    response = post(client, gzip.compress(batch(declared())), {"content-encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert storage.report_count() == 1


@pytest.mark.parametrize(
    ("platform", "os"),
    [
        ("linux", "linux"),
        ("wsl", "linux"),  # dfx's own name for Linux under WSL_DISTRO_NAME
        ("macos", "macos"),  # std::env::consts::OS
        ("windows", "windows"),
        ("freebsd", "freebsd"),
        ("ios", "other"),
        ("solaris", "other"),
    ],
)
def test_the_platform_becomes_the_binned_os(client, storage, platform, os):
    assert post(client, batch([record(platform=platform)])).status_code == 200
    [row] = storage.export("dfx")
    assert row["facts"] == {"system.os": os, "first_report": "unknown"}


@pytest.mark.parametrize("milliseconds", [0, 999, 1000, 59_999, 600_000, 7_200_000, 10**12])
def test_the_execution_time_becomes_the_clients_duration_bucket(client, storage, milliseconds):
    assert post(client, batch([record(execution_time_ms=milliseconds)])).json()["status"] == "stored"
    bucket = duration_bucket(milliseconds / 1000)
    assert counters(storage, "command_duration") == {
        ("command_duration", f'["deploy","{bucket}"]', monday().isoformat()): (1, 1)
    }


def test_a_null_execution_time_is_a_run_of_unknown_duration(client, storage):
    # CommandRecord.execution_time_ms is Option<u128> (telemetry.elapsed.map(...)): null when no time was set.
    # serde reads a missing Option field as None too, so a record without the key is the same.
    without = record()
    del without["execution_time_ms"]
    records = [record(execution_time_ms=None), without, record(execution_time_ms=None, exit_code=255), record()]

    response = post(client, batch(records))

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "stored", "reports": 1, "days": 1, "records": 4}  # nothing dropped
    week = monday().isoformat()
    assert counters(storage, "command_runs") == {("command_runs", "deploy", week): (4, 1)}
    assert counters(storage, "command_duration") == {
        ("command_duration", f'["deploy","{UNKNOWN_DURATION}"]', week): (3, 1),
        ("command_duration", '["deploy","1-10s"]', week): (1, 1),
    }
    assert counters(storage, "command_failed") == {("command_failed", "deploy", week): (1, 1)}


@pytest.mark.parametrize(("exit_code", "kept"), [(0, 0), (1, 1), (255, 255), (-1, 255), (2**31 - 1, 255)])
def test_exit_codes_are_kept_and_those_outside_0_to_255_stored_as_255(client, storage, exit_code, kept):
    assert post(client, batch([record(exit_code=exit_code)])).json()["status"] == "stored"
    [name] = [name for kind, name, _ in counters(storage, "command") if kind == "command"]
    assert json.loads(name)[3] == kept


# ---- days ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("week", [iso_week(1), iso_week(1).replace("-", "-W"), iso_week(1).replace("-", "-w")])
def test_dfxs_week_is_stored_on_its_monday(client, storage, week):
    # dfx records the ISO week of the run and no day (Telemetry::set_week), so its runs stay on the Monday.
    assert post(client, batch([record(week=week)])).json()["status"] == "stored"
    [row] = storage.export("dfx")
    assert row["day"] == monday(1).isoformat()


def test_a_day_given_is_kept_as_that_day_and_dfxs_weeks_stay_on_their_monday(client, storage):
    records = [
        record(week=ago(1)),
        record(week=ago(2)),
        record("build", week=ago(2)),
        record(week=iso_week(1)),  # what dfx itself sends
    ]

    response = post(client, batch(records))

    assert response.json() == {"status": "stored", "reports": 1, "days": 3, "records": 4}
    assert sorted(row["day"] for row in storage.export("dfx")) == [monday(1).isoformat(), ago(2), ago(1)]
    assert counters(storage, "command_runs") == {
        ("command_runs", "deploy", ago(1)): (1, 1),
        ("command_runs", "deploy", ago(2)): (1, 1),
        ("command_runs", "build", ago(2)): (1, 1),
        ("command_runs", "deploy", monday(1).isoformat()): (1, 1),
    }


@pytest.mark.parametrize(
    ("week", "day"),
    [
        ("2026-10", datetime.date(2026, 3, 2)),
        ("2026-53", datetime.date(2026, 12, 28)),  # 2026 is an ISO year of 53 weeks
        ("2027-01", datetime.date(2027, 1, 4)),
        ("2026-01", datetime.date(2025, 12, 29)),  # chrono's iso_week().year() is the ISO year
        ("2026-W10", datetime.date(2026, 3, 2)),
        ("2026-03-04", datetime.date(2026, 3, 4)),
    ],
)
def test_the_day_of_a_week_or_a_date(week, day):
    assert record_day(week, datetime.date(2026, 12, 3)) == day


@pytest.mark.parametrize("week", ["2025-53", "2026-00", "2026-60", "2026-02-30", "last week", "202610", "2026-1-1"])
def test_what_is_neither_a_week_nor_a_date_is_no_day(week):
    with pytest.raises(ValueError, match=r"."):
        record_day(week, datetime.date(2026, 12, 3))


def test_a_week_that_began_for_the_sender_but_not_yet_for_the_server_is_kept(storage, settings):
    # dfx takes the week of its local time (Local::now().naive_local().iso_week()): east of UTC, a run early on
    # Monday is in the next week while the server's date (UTC) is still Sunday. future_days (1) lets it in.
    sunday = datetime.date(2026, 12, 6)
    window = DayWindow.of(settings, sunday)
    records = [record(week="2026-50"), record(week="2026-51")]  # Mondays 2026-12-07 and 2026-12-14

    mapped = to_reports(parse_records(batch(records).decode()), storage.catalog, b"k" * 32, window)

    assert [report.days for report in mapped.reports] == [(datetime.date(2026, 12, 7),)]
    assert mapped.drops.counts == {("dfx", "day_in_future"): 1}


def test_a_record_without_a_week_is_put_in_the_week_it_arrives(client, storage):
    without = record()
    del without["week"]
    assert post(client, batch([record(week=None), without])).json()["status"] == "stored"
    assert [row["day"] for row in storage.export("dfx")] == [monday().isoformat()]


def test_records_of_several_weeks_and_versions(client, storage):
    records = [record(week=iso_week(2)), record(week=iso_week(1)), record(version="0.26.0-beta.1", week=iso_week(1))]
    response = post(client, batch(records))
    assert response.json() == {"status": "stored", "reports": 2, "days": 3, "records": 3}
    rows = sorted((row["app_version"], row["day"]) for row in storage.export("dfx"))
    assert rows == [
        ("0.25.0", monday(2).isoformat()),
        ("0.25.0", monday(1).isoformat()),
        ("0.26.0-beta.1", monday(1).isoformat()),
    ]


def test_the_stored_batch_is_stored_and_aggregated_exactly_as_the_same_native_report(client, storage, dfx, tmp_path):
    records = [
        record("deploy", ("mode", "auto")),
        record("deploy", ("mode", "auto")),
        record("deploy", ("mode", "auto"), execution_time_ms=None),
        record("build", exit_code=1),
    ]
    assert post(client, batch(records)).json()["status"] == "stored"
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
            Command(day=day, name="deploy", duration=UNKNOWN_DURATION, exit_code=0, count=1, params=deploy),
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
        assert first_report_unknown_records(unreceived) == [{**row, "received": None} for row in exported]
        native_tables, tables = native_storage.aggregate(), storage.aggregate()
        assert {row.new_installs for row in tables.installs} == {None}  # dfx cannot say whether a run is new
        assert as_first_report_unknown(native_tables) == as_first_report_unknown(tables)
    finally:
        native_storage.close()


# ---- records dropped, the rest stored --------------------------------------------------------------------------
def then(**changes: object) -> Callable[[], bytes]:
    """A good record, then one with ``changes`` (a value of ``...`` removes the key), in one batch."""

    def body() -> bytes:
        bad = {key: value for key, value in record(**changes).items() if value is not ...}
        return batch([record("build"), bad])

    return body


@dataclass(frozen=True)
class Drop:
    body: Callable[[], bytes]
    reason: str


DROPPED = {
    # ---- fields of one record, missing or not what dfx writes
    **{
        f"missing_{key}": Drop(then(**{key: ...}), "invalid_record")
        for key in ("version", "command", "platform", "parameters", "exit_code")
    },
    "version_with_a_space": Drop(then(version="0.25 beta"), "invalid_record"),
    "version_a_number": Drop(then(version=25), "invalid_record"),
    "command_empty": Drop(then(command=""), "invalid_record"),
    "command_a_list": Drop(then(command=["canister", "call"]), "invalid_record"),
    "command_of_129_characters": Drop(then(command="c" * 129), "invalid_record"),
    "platform_a_number": Drop(then(platform=7), "invalid_record"),
    "platform_null": Drop(then(platform=None), "invalid_record"),
    "parameters_an_object": Drop(then(parameters={"mode": "auto"}), "invalid_record"),
    "parameter_not_an_object": Drop(then(parameters=["--network=ic"]), "invalid_record"),
    "parameter_without_a_name": Drop(then(parameters=[{"value": None, "source": "command-line"}]), "invalid_record"),
    "parameter_value_a_number": Drop(then(parameters=[{"name": "mode", "value": 3}]), "invalid_record"),
    "parameter_value_a_list": Drop(then(parameters=[{"name": "mode", "value": ["auto"]}]), "invalid_record"),
    "300_parameters": Drop(then(parameters=[{"name": "yes", "value": None}] * 300), "invalid_record"),
    "exit_code_a_string": Drop(then(exit_code="0"), "invalid_record"),
    "exit_code_true": Drop(then(exit_code=True), "invalid_record"),
    "exit_code_null": Drop(then(exit_code=None), "invalid_record"),
    "exit_code_not_an_i32": Drop(then(exit_code=3221225477), "invalid_record"),
    "execution_time_negative": Drop(then(execution_time_ms=-5), "invalid_record"),
    "execution_time_huge": Drop(then(execution_time_ms=10**16), "invalid_record"),
    "execution_time_a_string": Drop(then(execution_time_ms="1840"), "invalid_record"),
    "execution_time_true": Drop(then(execution_time_ms=True), "invalid_record"),
    # ---- weeks
    "week_out_of_range": Drop(then(week="2026-60"), "invalid_record"),
    "week_53_of_a_52_week_year": Drop(then(week="2025-53"), "invalid_record"),
    "week_in_words": Drop(then(week="last week"), "invalid_record"),
    "week_a_number": Drop(then(week=202610), "invalid_record"),
    "week_a_date_not_in_the_calendar": Drop(then(week="2026-02-30"), "invalid_record"),
    "future_week": Drop(then(week=f"{utc_today().year + 1}-10"), "day_in_future"),
    "future_day": Drop(then(week=(utc_today() + datetime.timedelta(days=5)).isoformat()), "day_in_future"),
    "ancient_week": Drop(then(week="2019-05"), "day_too_old"),
    # ---- commands the manifest does not declare
    "command_of_a_newer_dfx": Drop(then(command="canister logs"), "command_not_in_manifest"),
    "extension_run": Drop(
        then(command="extension run", parameters=[{"name": "name", "value": None, "source": "command-line"}]),
        "command_not_in_manifest",
    ),
    "sql_in_command": Drop(then(command="deploy';DROP TABLE reports;--"), "command_not_in_manifest"),
    "nul_in_command": Drop(then(command="deploy\x00"), "command_not_in_manifest"),
}


@pytest.mark.parametrize("case", DROPPED.values(), ids=DROPPED.keys())
def test_a_bad_record_is_dropped_and_named_in_the_answer_and_the_good_one_stored(client, storage, dump, case):
    response = post(client, case.body())

    assert response.status_code == 200, response.text  # dfx keeps a batch answered otherwise, and stops there
    answer = response.json()
    assert dropped(answer) == {case.reason: 1}
    assert answer["partial_success"]["message"].startswith("records[1].")  # where: the second line
    assert len(response.content) < 2048
    assert stored(answer) == {"status": "stored", "reports": 1, "days": 1, "records": 2}
    assert counters(storage, "command_runs") == {("command_runs", "build", monday().isoformat()): (1, 1)}
    assert storage.report_count() == 1
    assert "DROP TABLE" not in repr(dump())


def test_a_run_that_failed_before_dfx_read_its_command_line_is_dropped(client, storage):
    response = post(client, batch([*declared(), before_parsing()]))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert stored(answer) == {"status": "stored", "reports": 1, "days": 1, "records": 5}
    assert dropped(answer) == {"invalid_record": 1}
    assert answer["partial_success"]["message"].startswith("records[4].command: is missing or not a valid string")
    assert sum(total for total, _ in counters(storage, "command_runs").values()) == 4


def test_new_commands_and_extension_runs_are_dropped_so_dfxs_publisher_gets_every_batch_through(client, storage):
    # dfx's transmit_any_batches posts its batches one after another and stops at the first that is not answered
    # 2xx, keeping it and every batch after it. A release newer than the manifest (a command it does not declare)
    # and an extension's command, which dfx records as "extension run" (e2e/tests-dfx/telemetry.bash), must not
    # hold the batches back.
    newer = [record("canister logs", ("canister", None)), *declared()]
    extension = [record("extension run", ("name", None)), record("deploy")]
    batches = [batch(newer, BATCH), batch(extension, OTHER_BATCH), batch(session(), THIRD_BATCH)]
    sent, answers = 0, []
    for body in batches:
        response = post(client, body)
        if not response.is_success:
            break
        sent += 1
        answers.append(response.json())

    assert sent == 3
    assert [dropped(answer).get("command_not_in_manifest") for answer in answers] == [1, 1, None]
    assert [answer["status"] for answer in answers] == ["stored", "stored", "stored"]
    week = monday().isoformat()
    assert counters(storage, "command_runs")[("command_runs", "deploy", week)] == (4, 3)


def test_weeks_older_than_the_retention_window_are_dropped_and_the_rest_stored(client, storage, settings):
    # A batch that kept failing, or a log kept while telemetry was "local" and then switched on, holds weeks
    # older than the retention window: those records are dropped, and the 200 lets dfx delete the batch.
    weeks = settings.raw_retention_days // 7 + 2
    response = post(client, batch([record(week=iso_week(weeks)), record(week=iso_week(weeks)), record()]))

    assert response.status_code == 200
    answer = response.json()
    assert stored(answer) == {"status": "stored", "reports": 1, "days": 1, "records": 3}
    assert dropped(answer) == {"day_too_old": 2}
    assert counters(storage, "command_runs") == {("command_runs", "deploy", monday().isoformat()): (1, 1)}


def test_a_batch_of_nothing_declared_is_answered_200_and_stores_nothing(client, dump):
    response = post(client, batch([record("extension run", ("name", None)), before_parsing()]))

    assert response.status_code == 200  # else dfx would keep this batch, and every one after it, for good
    answer = response.json()
    assert stored(answer) == {"status": "empty", "reports": 0, "days": 0, "records": 2}
    assert dropped(answer) == {"command_not_in_manifest": 1, "invalid_record": 1}
    assert dump() == {"reports": [], "counters": [], "facts": []}


def test_refusals_are_counted_by_code_and_drops_per_application_for_operators(mode, settings, storage, capsys):
    with TestClient(application(settings, storage, mode)) as client:
        assert post(client, batch(session())[:-25]).status_code == 400  # cut off: refused whole
        assert post(client, batch(session())).status_code == 200  # 11 parameters, 1 value
        assert post(client, batch([record("canister logs"), record()], OTHER_BATCH)).status_code == 200
        assert post(client, batch([before_parsing(), record(week="2019-05")], THIRD_BATCH)).status_code == 200
        refused = stats(client, settings)["refused"]
    # closing the application wrote the request log; a new one reads it as an operator would
    with TestClient(application(settings, storage, mode)) as client:
        after = stats(client, settings)

    assert refused == {"invalid_body": 1}
    expected = {
        "command_not_in_manifest": 1,
        "day_too_old": 1,
        "invalid_record": 1,
        "param_not_in_manifest": 11,
        "param_value_not_allowed": 1,
    }
    assert after["dropped"] == {"dfx": expected}
    assert storage.dropped() == after["dropped"]
    assert main(["apps", "list", "--db", settings.database, "--public-db", str(settings.public_path)]) == 0
    listing = capsys.readouterr().out.splitlines()
    at = listing.index("dfx  (1 version(s))")
    reasons = ", ".join(f"{reason} {n}" for reason, n in expected.items())
    assert listing[at + 1] == f"  dropped from uploads in the request log kept: {reasons}"


# ---- refused whole ---------------------------------------------------------------------------------------------
def lines(*extra: bytes) -> Callable[[], bytes]:
    """A good batch, then ``extra`` lines as they are."""
    return lambda: b"\n".join([batch([record("build")]), *extra])


def replaced(old: bytes, new: bytes) -> Callable[[], bytes]:
    return lambda: batch([record("build"), record()]).replace(old, new, 1)


def line(**changes: object) -> Callable[[], bytes]:
    """A good batch, then a record with ``changes`` to its batch and sequence (``...`` removes the key)."""

    def body() -> bytes:
        bad = {**record(), "batch": BATCH, "sequence": 1, **changes}
        return lines(json.dumps({key: value for key, value in bad.items() if value is not ...}).encode())()

    return body


@dataclass(frozen=True)
class Bad:
    body: Callable[[], bytes]
    status: int
    code: str
    headers: dict[str, str] | None = None
    stream: bool = False


BAD = {
    # ---- not newline-delimited JSON objects
    "truncated_last_line": Bad(lambda: batch(session())[:-25], 400, "invalid_body"),
    "truncated_in_a_string": Bad(lambda: batch(session())[:-9], 400, "invalid_body"),
    "malformed_json_line": Bad(lines(b'{"tool":"dfx",'), 400, "invalid_body"),
    "empty_body": Bad(lambda: b"", 400, "invalid_body"),
    "only_blank_lines": Bad(lambda: b"\n\n  \n", 400, "invalid_body"),
    "a_json_array_of_records": Bad(lambda: json.dumps([record()]).encode(), 400, "invalid_body"),
    "a_line_that_is_a_string": Bad(lines(b'"deploy"'), 400, "invalid_body"),
    "a_line_that_is_null": Bad(lines(b"null"), 400, "invalid_body"),
    "a_line_that_is_a_number": Bad(lines(b"7"), 400, "invalid_body"),
    "utf16": Bad(lambda: batch([record()]).decode().encode("utf-16"), 400, "invalid_body"),
    "non_utf8": Bad(lambda: batch([record()]).replace(b"linux", b"l\xefnux"), 400, "invalid_body"),
    "deep_nesting": Bad(lines(b"[" * 30_000 + b"]" * 30_000), 400, "invalid_body"),
    "deep_nesting_objects": Bad(lines(b'{"a":' * 10_000 + b"1" + b"}" * 10_000), 400, "invalid_body"),
    "duplicate_keys": Bad(replaced(b'"exit_code":0', b'"exit_code":0,"exit_code":1'), 400, "invalid_body"),
    "nan": Bad(replaced(b'"execution_time_ms":1840', b'"execution_time_ms":NaN'), 400, "invalid_body"),
    "execution_time_a_float": Bad(
        replaced(b'"execution_time_ms":1840', b'"execution_time_ms":18.4'), 400, "invalid_body"
    ),
    "execution_time_of_4000_digits": Bad(
        replaced(b'"execution_time_ms":1840', b'"execution_time_ms":' + b"9" * 4000), 400, "invalid_body"
    ),
    # ---- what ties the records into batches, and names the application
    "missing_batch": Bad(line(batch=...), 400, "invalid_body"),
    "batch_a_number": Bad(line(batch=5), 400, "invalid_body"),
    "batch_with_odd_characters": Bad(lambda: batch([record()], batch_id="a b;c"), 400, "invalid_body"),
    "missing_sequence": Bad(line(sequence=...), 400, "invalid_body"),
    "sequence_negative": Bad(line(sequence=-1), 400, "invalid_body"),
    "sequence_a_string": Bad(line(sequence="1"), 400, "invalid_body"),
    "missing_tool": Bad(line(tool=...), 400, "invalid_body"),
    "tool_a_number": Bad(line(tool=7), 400, "invalid_body"),
    "unknown_tool": Bad(line(tool="npm"), 400, "unknown_app"),
    "sql_in_tool": Bad(line(tool="x';DROP TABLE reports;--"), 400, "unknown_app"),
    "conflicting_duplicate": Bad(
        lambda: batch([record("build")]) + b"\n" + batch([record("deploy")]), 400, "conflicting_record"
    ),
    "batch_with_a_gap": Bad(lambda: batch([record()]) + b"\n" + batch([record()], first=2), 400, "incomplete_batch"),
    "batch_not_from_zero": Bad(lambda: batch([record(), record()], first=1), 400, "incomplete_batch"),
    # ---- sizes and transport
    "too_many_records": Bad(lambda: b"{}\n" * (MAX_RECORDS + 1), 400, "too_many_records"),
    "huge_line": Bad(
        replaced(b'"cycles_host":null', b'"cycles_host":"' + b"x" * MAX_LINE_LENGTH + b'"'), 400, "line_too_long"
    ),
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
def stored_before(client) -> None:
    """A batch already stored, so the raw tables are not empty when a bad request arrives."""
    assert post(client, batch(session(), OTHER_BATCH)).json()["status"] == "stored"


@pytest.mark.usefixtures("stored_before")
@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_a_malformed_request_is_refused_whole_with_a_code_and_changes_nothing(client, storage, dump, bad):
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


def test_the_good_records_of_the_tables_are_themselves_accepted(client, storage):
    # Guards the tables: each bad body differs from an accepted one only by what it names.
    for body in (then()(), lines()(), line()(), replaced(b"build", b"build")()):
        response = post(client, body)
        assert response.status_code == 200, response.text
        assert "partial_success" not in response.json()
    assert counters(storage, "command_runs") == {
        ("command_runs", "build", monday().isoformat()): (1, 1),
        ("command_runs", "deploy", monday().isoformat()): (1, 1),
    }


# ---- over real HTTP --------------------------------------------------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """``consentry-server serve`` on a free port of 127.0.0.1, with SQLite in a temporary folder."""
    with serving(tmp_path / "server") as server:
        yield server


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

    status, answer = send_without_content_type(server.url, body)
    assert (status, stored(answer)) == (200, {"status": "stored", "reports": 2, "days": 2, "records": 8})
    assert send_without_content_type(server.url, body)[1]["status"] == "duplicate"  # dfx retries whole batches
    status, answer = send_without_content_type(server.url, batch([record("canister logs"), record()], OTHER_BATCH))
    assert (status, dropped(answer)) == (200, {"command_not_in_manifest": 1})
    status, answer = send_without_content_type(server.url, batch(session(), THIRD_BATCH)[:-25])
    assert (status, answer["error"]["code"]) == (400, "invalid_body")

    request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
        server.url + "/admin/v1/export/dfx", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        exported = [json.loads(line) for line in response.read().splitlines()]
    assert sorted(row["level"] for row in exported) == ["basic", "basic", "full"]
    assert {row["day"] for row in exported} == {monday().isoformat()}
    assert server.admin("/admin/v1/stats")["refused"] == {"invalid_body": 1}  # type: ignore[index]
