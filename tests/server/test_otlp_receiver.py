"""``POST /v1/traces`` and ``/v1/metrics`` in process: what an export becomes, what it never leaves behind.

Requests are built as OTLP/JSON documents and sent as protobuf (the default) or as JSON. The manifests are
the examples' (``stripepy-like`` for spans, ``slicer-like`` for counters), registered by the conftest.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.testclient import TestClient

from consentry.manifest import load_manifest
from consentry.wire import Command, Report, encode
from consentry_server.app import create_app
from consentry_server.cli import build_parser
from consentry_server.commit.storer import Overloaded
from consentry_server.config import ConfigError, Settings, load_settings
from consentry_server.ingest import otlp
from consentry_server.ingest.accept import rate_limiter
from consentry_server.ingest.manifests import Registry
from consentry_server.ingest.routes import DropCounter, Ingest
from consentry_server.publish.release import publish
from consentry_server.storage import PublicStore, open_storage
from consentry_server.storage.base import AggregateTables, RequestLog, StoreOutcome
from support.paths import STRIPEPY
from support.seed_reports import as_first_report_unknown

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"
INSTANCE_ID = "627cc493-f310-47de-96bd-71410b7dec09"
MESSAGE = "cannot open /home/alice/private/ENCFF993FGR.hic"
STACK_TRACE = 'Traceback (most recent call last):\n  File "/home/alice/stripepy/cli/call.py", line 42'
HOST_NAME = "alice-laptop.example.org"


# ---- building requests ---------------------------------------------------------------------------------------
def value(item: object) -> dict[str, object]:
    """An OTLP/JSON AnyValue."""
    if isinstance(item, bool):
        return {"boolValue": item}
    if isinstance(item, int):
        return {"intValue": str(item)}
    if isinstance(item, float):
        return {"doubleValue": item}
    return {"stringValue": item}


def attributes(**items: object) -> list[dict[str, object]]:
    """OTLP/JSON attributes; ``__`` in a name stands for ``.`` (``service__name`` is ``service.name``)."""
    return [{"key": key.replace("__", "."), "value": value(item)} for key, item in items.items()]


def stripepy_resource(**extra: object) -> dict[str, object]:
    """The resource StripePy's OpenTelemetry set-up describes itself with, for the stripepy-like example."""
    items: dict[str, object] = {
        "service__name": "stripepy-like",
        "service__version": "1.2.0",
        "service__instance__id": INSTANCE_ID,
        "host__name": HOST_NAME,
        "host__arch": "x86_64",
        "os__type": "linux",
        "os__version": "6.11.0-1015-azure",
        "process__runtime__name": "CPython",
        "process__runtime__version": "3.13.5",
        "process__runtime__description": "GCC 12.2.0",
        "telemetry__sdk__language": "python",
        **extra,
    }
    items["dependency.numpy.version"] = "2.3.1"
    items["dependency.h5py.version"] = "3.14.0"
    items["dependency.pandas.version"] = "2.3.1"
    return {"attributes": attributes(**items)}


def noon(day: datetime.date) -> int:
    """Noon UTC of ``day``, in nanoseconds since the epoch."""
    moment = datetime.datetime.combine(day, datetime.time(12), tzinfo=datetime.timezone.utc)
    return int(moment.timestamp()) * 1_000_000_000


def span(
    command: str,
    day: datetime.date,
    /,
    *,
    seconds: float = 42.0,
    status: int = 1,
    events: list[dict[str, object]] | None = None,
    **params: object,
) -> dict[str, object]:
    """A span as StripePy sends it: parameters as ``params.*`` attributes."""
    start = noon(day)
    return {
        "traceId": TRACE_ID,
        "spanId": SPAN_ID,
        "name": command,
        "kind": 1,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + int(seconds * 1e9)),
        "attributes": [{"key": f"params.{key}", "value": value(item)} for key, item in params.items()],
        "events": events or [],
        "status": {"code": status, "message": MESSAGE if status == 2 else ""},
    }


def exception_event(day: datetime.date, kind: str = "stripepy.io.UnreadableFileError") -> dict[str, object]:
    return {
        "timeUnixNano": str(noon(day)),
        "name": "exception",
        "attributes": attributes(exception__type=kind, exception__message=MESSAGE, exception__stacktrace=STACK_TRACE),
    }


def traces(*spans: dict[str, object], resource: dict[str, object] | None = None) -> dict[str, object]:
    """An OTLP/JSON trace export of ``spans`` from one resource (StripePy's by default)."""
    scope = {"scope": {"name": "stripepy"}, "spans": list(spans)}
    return {"resourceSpans": [{"resource": resource or stripepy_resource(), "scopeSpans": [scope]}]}


def counter(name: str, *points: tuple[datetime.date, int], temporality: int = 1, **kind: object) -> dict[str, object]:
    """A metric: a monotonic delta sum unless ``kind`` says otherwise (``gauge={...}``)."""
    data_points = [
        {"timeUnixNano": str(noon(day)), "asInt": str(count), "attributes": attributes(path="/home/alice/x.nrrd")}
        for day, count in points
    ]
    body = kind or {"sum": {"dataPoints": data_points, "aggregationTemporality": temporality, "isMonotonic": True}}
    return {"name": name, **body}


def slicer_metrics(*metrics: dict[str, object]) -> dict[str, object]:
    resource = {"attributes": attributes(service__name="slicer-like", service__version="5.8.0", os__type="windows")}
    return {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": list(metrics)}]}]}


def as_protobuf(document: dict[str, object], message: Message) -> bytes:
    """The protobuf encoding of an OTLP/JSON document (whose hex ids protobuf's JSON mapping would misread)."""
    return json_format.ParseDict(_base64_ids(document), message).SerializeToString()


def _base64_ids(node: object) -> object:
    if isinstance(node, dict):
        return {
            key: base64.b64encode(bytes.fromhex(item)).decode() if key in ("traceId", "spanId") else _base64_ids(item)
            for key, item in node.items()
        }
    if isinstance(node, list):
        return [_base64_ids(item) for item in node]
    return node


def post(client: TestClient, document: dict[str, object], *, media: str = PROTOBUF, compress: bool = False):
    """Send ``document`` to the route of its signal, encoded as ``media``."""
    metrics = "resourceMetrics" in document
    path = "/v1/metrics" if metrics else "/v1/traces"
    if media == PROTOBUF:
        body = as_protobuf(document, ExportMetricsServiceRequest() if metrics else ExportTraceServiceRequest())
    else:
        body = json.dumps(document).encode()
    headers = {"content-type": media}
    if compress:
        body = gzip.compress(body)
        headers["content-encoding"] = "gzip"
    return client.post(path, content=body, headers=headers)


def answer(response, message: Message) -> Message:
    """The body of an answer, decoded in its own content type."""
    if response.headers["content-type"] == PROTOBUF:
        return message.FromString(response.content)
    return json_format.Parse(response.content, message)


@pytest.fixture
def yesterday(today: datetime.date) -> datetime.date:
    return today - datetime.timedelta(days=1)


def rows(storage, app: str = "stripepy-like") -> list[dict[str, object]]:
    return list(storage.export(app))


# ---- accepted exports ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("media", "compress"), [(PROTOBUF, False), (PROTOBUF, True), (JSON, False), (JSON, True)])
def test_a_stripepy_export_becomes_a_native_report(client, storage, yesterday, media, compress):
    export = traces(
        span("call", yesterday, seconds=42, format="hic", resolution=10000, nproc=8, contact_map="/home/a/x.hic"),
        span("call", yesterday, seconds=45, format="hic", resolution=10000, nproc=8, contact_map="/home/a/y.hic"),
        span("download", yesterday, seconds=0.4, status=2, events=[exception_event(yesterday)], name="ENCFF993FGR"),
    )

    response = post(client, export, media=media, compress=compress)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media
    assert not answer(response, ExportTraceServiceResponse()).HasField("partial_success")
    [row] = rows(storage)
    reporter = row.pop("reporter")
    assert re.fullmatch(r"[0-9a-f]{32}", str(reporter))
    del row["received"]
    assert row == {
        "app": "stripepy-like",
        "level": "basic",
        "day": yesterday.isoformat(),
        "app_version": "1.2.0",
        "first_report": False,
        "country": None,
        # Linux's os.version is a kernel release, not a distribution: left out. pandas is not in the manifest.
        "facts": {
            "system.os": "linux",
            "system.arch": "x86_64",
            "system.python": "3.13",
            "dependency.numpy": "2.3.1",
            "dependency.h5py": "3.14.0",
            "first_report": "unknown",  # an export cannot say whether it is an install's first
        },
        "counters": row["counters"],
    }
    commands = {entry["name"]: entry["n"] for entry in row["counters"] if entry["kind"] == "command"}
    call = '["call",[["force",false],["format","hic"],["normalization",false],["nproc",true],["resolution","10000"]]'
    assert commands == {
        call + ',"10-60s",0,null]': 2,
        '["download",[["name","ENCFF993FGR"],["unit-test",false]],"<1s",1,"UnreadableFileError"]': 1,
    }


def test_each_export_counts_as_one_more_reporter(client, storage, yesterday):
    export = traces(span("call", yesterday, format="cool"))
    assert post(client, export).status_code == 200
    assert post(client, export).status_code == 200

    reporters = {row["reporter"] for row in rows(storage)}
    assert len(reporters) == 2
    [installs] = [row for row in storage.aggregate().installs if row.period == "day" and row.app == "stripepy-like"]
    assert (installs.reporters, installs.new_installs) == (2, None)  # two runs; whether new is unknown


def test_resources_a_report_can_tell_apart_get_reporters_of_their_own(client, storage, yesterday):
    export = traces(span("call", yesterday))
    [resource_spans] = export["resourceSpans"]  # type: ignore[index]
    other = {**resource_spans, "resource": stripepy_resource(service__version="1.2.1")}
    same = {**resource_spans, "resource": stripepy_resource(host__name="another-host")}
    export["resourceSpans"] = [resource_spans, other, same]

    assert post(client, export).status_code == 200

    by_version: dict[object, set[object]] = {}
    for row in rows(storage):
        by_version.setdefault(row["app_version"], set()).add(row["reporter"])
    assert {version: len(reporters) for version, reporters in by_version.items()} == {"1.2.0": 1, "1.2.1": 1}
    commands = [entry["n"] for row in rows(storage) for entry in row["counters"] if entry["kind"] == "command_runs"]
    assert sorted(commands) == [1, 2]  # the host name told nothing apart: its two runs are one reporter's


def test_exit_code_attribute_and_error_status(client, storage, yesterday):
    failed = span("view", yesterday, status=2)
    coded = span("view", yesterday)
    coded["attributes"] = attributes(process__exit__code=3)
    out_of_range = span("view", yesterday, status=2)
    out_of_range["attributes"] = attributes(exit__code=4000)

    assert post(client, traces(failed, coded, out_of_range)).status_code == 200

    [row] = rows(storage)
    exits = sorted(json.loads(entry["name"])[3] for entry in row["counters"] if entry["kind"] == "command")
    assert exits == [1, 3]  # the two failures without a usable code are the same record, counted twice


def test_some_spans_refused_is_a_partial_success_with_reasons(client, storage, yesterday, settings):
    export = traces(span("call", yesterday), span("rm -rf", yesterday), span("", yesterday))
    export["resourceSpans"].append(  # type: ignore[attr-defined]
        {
            "resource": {"attributes": attributes(service__name="not-registered")},
            "scopeSpans": [{"spans": [span("call", yesterday)]}],
        }
    )

    for media in (PROTOBUF, JSON):
        response = post(client, export, media=media)
        assert response.status_code == 200
        partial = answer(response, ExportTraceServiceResponse()).partial_success
        assert partial.rejected_spans == 3
        for reason in ("command_not_in_manifest", "span_without_name", "unknown_service"):
            assert reason in partial.error_message
    assert len(rows(storage)) == 2
    stats = client.get("/admin/v1/stats", headers={"authorization": f"Bearer {settings.admin_token}"}).json()
    assert stats["refused"]["otlp_unknown_service"] == 2
    assert stats["refused"]["otlp_command_not_in_manifest"] == 2


def test_attributes_the_manifest_does_not_declare_are_dropped_and_counted(client, storage, yesterday, settings):
    run = span("plot", yesterday, **{"plot-type": "contact-map"})
    run["attributes"] += attributes(user__name="alice", input__path="/home/alice/a.mcool")  # type: ignore[operator]

    assert post(client, traces(run)).status_code == 200

    [row] = rows(storage)
    assert "alice" not in json.dumps(row)
    stats = client.get("/admin/v1/stats", headers={"authorization": f"Bearer {settings.admin_token}"}).json()
    assert stats["refused"]["otlp_attribute_dropped"] == 2


def test_an_empty_export_is_accepted_and_stores_nothing(client, storage):
    for document in ({}, {"resourceSpans": []}):
        response = post(client, document)
        assert response.status_code == 200
        assert answer(response, ExportTraceServiceResponse()) == ExportTraceServiceResponse()
    assert storage.report_count() == 0


# ---- metrics ---------------------------------------------------------------------------------------------------
def test_delta_counters_of_declared_events_become_event_counts(client, storage, yesterday, today):
    export = slicer_metrics(
        counter("SampleData/load", (yesterday, 3), (yesterday, 2), (today, 1)),
        counter("Volumes/enter", (yesterday, 0)),
    )

    response = post(client, export, media=JSON)

    assert response.status_code == 200, response.text
    assert not answer(response, ExportMetricsServiceResponse()).HasField("partial_success")
    found = {(row["day"], row["level"]): row for row in rows(storage, "slicer-like")}
    assert set(found) == {(day.isoformat(), level) for day in (yesterday, today) for level in ("basic", "full")}
    assert found[yesterday.isoformat(), "basic"]["facts"] == {"system.os": "windows", "first_report": "unknown"}
    assert found[yesterday.isoformat(), "basic"]["counters"] == []
    events = [(c["name"], c["n"]) for c in found[yesterday.isoformat(), "full"]["counters"] if c["kind"] == "event"]
    assert events == [("SampleData/load", 5)]
    assert len({row["reporter"] for row in found.values()}) == 1


def test_other_metrics_are_refused_in_partial_success(client, storage, yesterday):
    gauge = {"gauge": {"dataPoints": [{"timeUnixNano": str(noon(yesterday)), "asInt": "7"}]}}
    export = slicer_metrics(
        counter("SampleData/load", (yesterday, 1)),
        counter("Markups/enter", (yesterday, 4), (yesterday, 5), temporality=2),  # cumulative
        counter("Markups/enter", **gauge),
        counter("process.runtime.cpython.memory", (yesterday, 1)),
    )

    response = post(client, export)

    assert response.status_code == 200
    partial = answer(response, ExportMetricsServiceResponse()).partial_success
    assert partial.rejected_data_points == 4
    assert "not_a_delta_counter" in partial.error_message
    assert "metric_not_in_manifest" in partial.error_message
    assert [row["level"] for row in rows(storage, "slicer-like")] == ["basic", "full"]


# ---- under load ------------------------------------------------------------------------------------------------
def test_the_source_rate_limit_answers_429_with_retry_after_in_the_requests_encoding(settings, storage, yesterday):
    limited = replace(settings, source_burst=1, source_rate_per_minute=1)
    with TestClient(create_app(limited, storage), client=("203.0.113.7", 50000)) as client:
        assert post(client, traces(span("call", yesterday))).status_code == 200
        for media in (PROTOBUF, JSON):
            response = post(client, traces(span("call", yesterday)), media=media)
            assert response.status_code == 429
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["content-type"] == media
            assert answer(response, Status()).message.startswith("rate_limited")
    assert storage.report_count() == 1


class FakeStorer:
    """A storer that stores the first ``capacity`` reports (nowhere) and is then too busy."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.stored: list[tuple[str, bytes]] = []

    async def start(self) -> None:
        pass

    async def store(self, level, body, **_) -> StoreOutcome:
        if len(self.stored) >= self.capacity:
            raise Overloaded
        self.stored.append((level, body))
        return StoreOutcome("stored", 1)

    def log(self, entry: RequestLog) -> None:
        pass

    def forget_manifests(self, app: str) -> None:
        pass

    async def close(self) -> None:
        pass


@pytest.fixture
def busy(settings, storage) -> Iterator[tuple[TestClient, FakeStorer]]:
    """The receiver alone, over a storer that has room for one report."""
    storer, drops = FakeStorer(capacity=1), DropCounter()
    ingest = Ingest(settings, storer, drops, rate_limiter(settings))
    app = Starlette(routes=otlp.routes(ingest, Registry(storage)))
    with TestClient(app) as client:
        yield client, storer


def test_a_busy_storer_answers_503_while_nothing_was_stored(busy, yesterday):
    client, storer = busy
    storer.capacity = 0
    response = post(client, traces(span("call", yesterday)), media=JSON)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert json.loads(response.content)["message"].startswith("overloaded")


def test_once_part_is_stored_a_busy_storer_refuses_the_rest_in_partial_success(busy, yesterday, today):
    client, storer = busy
    export = traces(span("call", yesterday), span("call", today), span("view", today))

    response = post(client, export)

    # Answering 503 would make the exporter send it all again, and count the stored day twice.
    assert response.status_code == 200
    partial = answer(response, ExportTraceServiceResponse()).partial_success
    assert partial.rejected_spans == 2
    assert "overloaded" in partial.error_message
    assert len(storer.stored) == 1


# ---- the OTLP port ---------------------------------------------------------------------------------------------
def test_the_otlp_port_answers_only_the_otlp_routes(settings, storage, yesterday):
    app = otlp.only_otlp_on(create_app(settings, storage), 4318)
    with TestClient(app, base_url="http://testserver:4318") as on_otlp, TestClient(app) as on_main:
        assert on_otlp.get("/api/v1/apps").status_code == 404
        assert on_otlp.get("/admin/v1/stats").status_code == 404
        assert on_otlp.get("/healthz").status_code == 200
        assert post(on_otlp, traces(span("call", yesterday))).status_code == 200
        assert on_main.get("/api/v1/apps").status_code == 200
        assert post(on_main, traces(span("call", yesterday))).status_code == 200
    assert storage.report_count() == 2


def test_the_otlp_port_setting(tmp_path):
    config = tmp_path / "consentry.toml"
    config.write_text("otlp_port = 4318\n", encoding="utf-8")
    assert load_settings(config).otlp_port == 4318
    assert load_settings(None).otlp_port is None
    config.write_text("otlp_port = 70000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="otlp_port"):
        load_settings(config)
    config.write_text('otlp_port = "4318"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="otlp_port must be an integer"):
        load_settings(config)
    assert build_parser().parse_args(["serve", "--otlp-port", "4318"]).otlp_port == 4318


# ---- what is never kept ----------------------------------------------------------------------------------------
def every_row(path: Path) -> str:
    """Every row of every table of the SQLite file at ``path``, as text."""
    db = sqlite3.connect(path)
    try:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(repr(db.execute(f'SELECT * FROM "{table}"').fetchall()) for table in tables)  # noqa: S608
    finally:
        db.close()


def test_ids_messages_stack_traces_and_host_names_are_never_stored(client, storage, settings, yesterday):
    failed = span("call", yesterday, status=2, events=[exception_event(yesterday)], format="hic")
    failed["links"] = [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}]
    export = traces(span("call", yesterday, format="mcool"), failed)
    assert post(client, export).status_code == 200
    assert post(client, export, media=JSON).status_code == 200
    metrics = slicer_metrics(counter("SampleData/load", (yesterday, 2)))
    metrics["resourceMetrics"][0]["resource"]["attributes"] += attributes(service__instance__id=INSTANCE_ID)  # type: ignore[index]
    exemplar = {"timeUnixNano": str(noon(yesterday)), "asInt": "1", "traceId": TRACE_ID, "spanId": SPAN_ID}
    metrics["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"][0]["exemplars"] = [exemplar]  # type: ignore[index]
    assert post(client, metrics).status_code == 200
    assert post(client, metrics, media=JSON).status_code == 200
    assert storage.report_count() == 6

    forbidden = [TRACE_ID, SPAN_ID, "0af7651916cd43dd8448eb211c80319c", INSTANCE_ID, MESSAGE, STACK_TRACE]
    forbidden += ["/home/alice", HOST_NAME, "GCC 12.2.0"]
    text = every_row(Path(str(settings.sqlite_path)))
    for secret in forbidden:
        assert secret not in text
    raw = b"".join(path.read_bytes() for path in Path(str(settings.sqlite_path)).parent.glob("consentry.sqlite3*"))
    for secret in forbidden:
        assert secret.encode() not in raw
    for identifier in (TRACE_ID, SPAN_ID):
        assert bytes.fromhex(identifier) not in raw
        assert base64.b64encode(bytes.fromhex(identifier)) not in raw
    assert "UnreadableFileError" in text  # the exception's class name is what is kept


# ---- the same path as native reports ---------------------------------------------------------------------------
def test_otlp_reports_aggregate_and_publish_exactly_like_the_same_native_report(client, storage, tmp_path, yesterday):
    export = traces(
        span("call", yesterday, seconds=30, format="mcool", resolution=5000, force=True),
        span("call", yesterday, seconds=30, format="mcool", resolution=5000, force=True),
        span("view", yesterday, seconds=2, status=2, events=[exception_event(yesterday, "KeyError")]),
    )
    assert post(client, export).status_code == 200

    manifest = load_manifest(STRIPEPY)
    call = {"format": "mcool", "resolution": "5000", "force": True, "nproc": False, "normalization": False}
    native = Report(
        app="stripepy-like",
        app_version="1.2.0",
        level="basic",
        consent_version=manifest.consent_version,
        reporter="ab" * 16,
        first_report=False,
        days=(yesterday,),
        system={"os": "linux", "arch": "x86_64", "python": "3.13"},
        dependencies={"numpy": "2.3.1", "h5py": "3.14.0"},
        commands=(
            Command(yesterday, "call", "10-60s", 0, 2, call),
            Command(yesterday, "view", "1-10s", 1, 1, {"with-biodescriptors": False}, "KeyError"),
        ),
    )
    other = Settings(database=f"sqlite:///{tmp_path / 'native' / 'db.sqlite3'}", public_database=str(tmp_path / "p"))
    native_storage = open_storage(other)
    try:
        native_storage.register_manifest(manifest)
        with TestClient(create_app(other, native_storage)) as native_client:
            response = native_client.post("/v1/reports/basic", content=encode(native), headers={"content-type": JSON})
            assert response.json() == {"status": "stored", "days": 1}
        expected = native_storage.aggregate()
        expected_publication = publish(native_storage, PublicStore(tmp_path / "native.sqlite3"), threshold=1)
    finally:
        native_storage.close()

    tables = storage.aggregate()
    mine = AggregateTables(
        *(
            [row for row in rows if row.app == "stripepy-like"]
            for rows in (tables.installs, tables.counters, tables.values)
        )
    )
    assert {row.new_installs for row in mine.installs} == {None}  # an export cannot say whether it is new
    assert as_first_report_unknown(mine) == as_first_report_unknown(expected)
    publication = publish(storage, PublicStore(tmp_path / "otlp.sqlite3"), threshold=1)
    assert [row for row in publication.counters if row.app == "stripepy-like"] == list(expected_publication.counters)
    unknown = [replace(row, new_installs=None) for row in expected_publication.installs]
    assert [row for row in publication.installs if row.app == "stripepy-like"] == unknown
