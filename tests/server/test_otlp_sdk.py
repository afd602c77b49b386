"""The real OpenTelemetry SDK and OTLP/HTTP exporter, sending to a real ``consentry-server serve --otlp-port``.

The resource, the spans and their attributes are what StripePy's telemetry sends (its ``telemetry.py``): the
spans are recorded by the SDK, then exported by the SDK's own exporter (protobuf, gzip) or encoded by the SDK's
own encoder as OTLP/JSON and posted over HTTP. What the server keeps is read from its database once it stopped.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from consentry_server.config import Settings
from consentry_server.storage import open_storage
from support.paths import SLICER, STRIPEPY
from support.processes import ADMIN_TOKEN, Started, script, start, stop

pytestmark = pytest.mark.slow

INSTANCE_ID = "0c8d7a52-5b1e-4d43-9a61-3f0e2b7c9d11"
HOST_NAME = "hpc-node-17.cluster.example.org"
MESSAGE = "No such file: /home/alice/data/ENCFF993FGR.hic"


@dataclass
class OtlpServer:
    """A ``consentry-server serve`` process with its OTLP port."""

    url: str
    otlp_url: str
    database: Path
    started: Started


@pytest.fixture
def otlp_server(tmp_path: Path) -> Iterator[OtlpServer]:
    """``serve --port 0 --otlp-port 0`` on 127.0.0.1, with stripepy-like and slicer-like registered."""
    data = tmp_path / "server"
    database = data / "consentry.sqlite3"
    db = ["--db", f"sqlite:///{database}", "--public-db", str(data / "public.sqlite3")]
    command = [script("consentry-server"), "apps", "add", *db, str(STRIPEPY), str(SLICER)]
    subprocess.run(command, check=True, timeout=120, capture_output=True)
    env = {**os.environ, "CONSENTRY_ADMIN_TOKEN": ADMIN_TOKEN}
    serve = [script("consentry-server"), "serve", *db, "--host", "127.0.0.1", "--port", "0", "--otlp-port", "0"]
    started = start(serve, env, r"OTLP/HTTP receiver listening on (http://127\.0\.0\.1:\d+)")
    try:
        main = re.search(r"Consentry server listening on (http://127\.0\.0\.1:\d+)", "".join(started.output))
        assert main is not None
        yield OtlpServer(main.group(1), started.match.group(1), database, started)
    finally:
        stop(started)


def stripepy_resource() -> Resource:
    """The resource StripePy builds (``_generate_telemetry_resource``), with what an SDK may add besides."""
    return Resource.create(
        {
            "host.arch": "x86_64",
            "process.runtime.name": "CPython",
            "process.runtime.version": "3.13.5",
            "process.runtime.description": "GCC 12.2.0",
            "service.name": "stripepy-like",
            "service.version": "1.2.1",
            "service.instance.id": INSTANCE_ID,
            "host.name": HOST_NAME,
            "os.type": "linux",
            "os.version": "6.11.0-1015-azure",
            "dependency.numpy.version": "2.3.1",
            "dependency.hictkpy.version": "1.3.0",
            "dependency.structlog.version": "25.4.0",
        }
    )


def record_runs() -> Sequence[ReadableSpan]:
    """Three runs as StripePy records them: two ``call`` and a failed ``download``, plus a stray child span."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=stripepy_resource())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("stripepy")
    for resolution in (10000, 25000):
        span = tracer.start_span("call", record_exception=False, set_status_on_exception=False)
        span.set_attributes(
            {
                "params.format": "mcool",
                "params.resolution": resolution,
                "params.nproc": 8,
                "params.contact_map": "/home/alice/data/4DNFI9GMP2J8.mcool",
                "params.genomic_belt": 5000000,
            }
        )
        span.set_status(Status(StatusCode.OK))
        span.end()
    with tracer.start_as_current_span("download", record_exception=False, set_status_on_exception=False) as span:
        span.set_attribute("params.name", "ENCFF993FGR")
        try:
            Path("/nonexistent/consentry-otlp-test").read_bytes()
        except FileNotFoundError as error:
            span.set_status(Status(StatusCode.ERROR, MESSAGE))
            span.record_exception(error, {"exception.message": MESSAGE})  # and its stack trace: both dropped
        with tracer.start_as_current_span("HTTP GET"):  # an instrumentation's span, which is no command
            pass
    provider.shutdown()
    return memory.get_finished_spans()


def stored_rows(database: Path, app: str) -> list[dict[str, object]]:
    storage = open_storage(Settings(database=f"sqlite:///{database}", public_database=str(database.parent / "p")))
    try:
        return list(storage.export(app))
    finally:
        storage.close()


def everything_stored(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file())


def test_the_sdk_exporter_sends_stripepy_runs_that_are_stored_as_native_reports(otlp_server):
    spans = record_runs()
    trace_ids = {format(span.context.trace_id, "032x") for span in spans}
    span_ids = {format(span.context.span_id, "016x") for span in spans}

    exporter = OTLPSpanExporter(endpoint=otlp_server.otlp_url + "/v1/traces", compression=Compression.Gzip, timeout=10)
    try:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()

    assert stop(otlp_server.started) == 0
    [row] = stored_rows(otlp_server.database, "stripepy-like")
    assert row["level"] == "basic"
    assert row["app_version"] == "1.2.1"
    assert row["first_report"] is False
    assert row["facts"] == {
        "system.os": "linux",
        "system.arch": "x86_64",
        "system.python": "3.13",
        "dependency.numpy": "2.3.1",
        "dependency.hictkpy": "1.3.0",
        "first_report": "unknown",  # an export cannot say whether it is an install's first
    }
    runs = {entry["name"]: entry["n"] for entry in row["counters"] if entry["kind"] == "command_runs"}
    assert runs == {"call": 2, "download": 1}
    commands = sorted(json.loads(entry["name"]) for entry in row["counters"] if entry["kind"] == "command")
    assert [(name, dict(params), exit_code, exception) for name, params, _, exit_code, exception in commands] == [
        (
            "call",
            {"format": "mcool", "resolution": "10000", "nproc": True, "force": False, "normalization": False},
            0,
            None,
        ),
        (
            "call",
            {"format": "mcool", "resolution": "25000", "nproc": True, "force": False, "normalization": False},
            0,
            None,
        ),
        ("download", {"name": "ENCFF993FGR", "unit-test": False}, 1, "FileNotFoundError"),
    ]
    stored = everything_stored(otlp_server.database.parent)
    for secret in [*trace_ids, *span_ids, INSTANCE_ID, HOST_NAME, MESSAGE, "Traceback", "/home/alice", "GCC 12.2.0"]:
        assert secret.encode() not in stored, secret


def hex_ids(node: object) -> object:
    """OTLP/JSON's ids: protobuf's JSON mapping writes bytes in base64, OTLP/JSON wants trace and span ids in hex."""
    if isinstance(node, dict):
        return {
            key: base64.b64decode(item).hex() if key in ("traceId", "spanId", "parentSpanId") else hex_ids(item)
            for key, item in node.items()
        }
    if isinstance(node, list):
        return [hex_ids(item) for item in node]
    return node


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - our own server
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_otlp_json_from_the_sdks_encoder_is_accepted_on_both_ports(otlp_server):
    spans = record_runs()
    message = encode_spans(spans)
    document = hex_ids(json.loads(json_format.MessageToJson(message, use_integers_for_enums=True)))
    body = json.dumps(document).encode()
    assert re.search(r'"traceId": "[0-9a-f]{32}"', body.decode())

    for base in (otlp_server.otlp_url, otlp_server.url):
        status, headers, answer = post(
            base + "/v1/traces", gzip.compress(body), {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )
        assert status == 200, answer
        assert headers["content-type"] == "application/json"
        # The instrumentation's span is no command of stripepy-like: refused, and said so.
        partial = json.loads(answer)["partialSuccess"]
        assert partial["rejectedSpans"] == "1"
        assert "command_not_in_manifest" in partial["errorMessage"]

    status, _, _ = post(otlp_server.otlp_url + "/v1/reports/basic", b"{}", {"Content-Type": "application/json"})
    assert status == 404  # the OTLP port serves the OTLP routes only
    with urllib.request.urlopen(otlp_server.otlp_url + "/healthz", timeout=10) as response:  # noqa: S310
        assert response.status == 200

    assert stop(otlp_server.started) == 0
    rows = stored_rows(otlp_server.database, "stripepy-like")
    assert len(rows) == 2
    assert len({row["reporter"] for row in rows}) == 2  # one reporter per export


def test_delta_counters_from_the_sdk_become_event_counts(otlp_server):
    delta = {Counter: AggregationTemporality.DELTA}
    reader = InMemoryMetricReader(preferred_temporality=delta)
    resource = Resource.create({"service.name": "slicer-like", "service.version": "5.8.0", "os.type": "windows"})
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    loads = provider.get_meter("slicer").create_counter("SampleData/load")
    loads.add(3)
    loads.add(2, {"sample": "/home/alice/MRHead.nrrd"})
    data = reader.get_metrics_data()
    provider.shutdown()

    exporter = OTLPMetricExporter(
        endpoint=otlp_server.otlp_url + "/v1/metrics", preferred_temporality=delta, timeout=10
    )
    try:
        assert exporter.export(data) == MetricExportResult.SUCCESS
    finally:
        exporter.shutdown()

    assert stop(otlp_server.started) == 0
    today = datetime.datetime.now(datetime.timezone.utc).date()
    rows = {row["level"]: row for row in stored_rows(otlp_server.database, "slicer-like")}
    assert set(rows) == {"basic", "full"}
    assert {row["day"] for row in rows.values()} <= {
        today.isoformat(),
        (today - datetime.timedelta(days=1)).isoformat(),
    }
    assert rows["basic"]["facts"] == {"system.os": "windows", "first_report": "unknown"}
    assert [(c["kind"], c["name"], c["n"]) for c in rows["full"]["counters"]] == [("event", "SampleData/load", 5)]
    assert b"/home/alice" not in everything_stored(otlp_server.database.parent)
