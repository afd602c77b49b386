"""consentry.otel: each report the server accepted, exported to OpenTelemetry as exactly what was sent.

With the real SDK throughout: its in-memory span exporter and metric reader, and once its OTLP/HTTP exporter
posting protobuf to a small collector on 127.0.0.1.
"""

from __future__ import annotations

import datetime
import gzip
import http.server
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import consentry
import consentry.wire
from consentry import Manifest, Recorder, otel
from consentry._local.session import AppSession
from consentry.manifest import loads_manifest
from consentry.otel import OtelTransport
from consentry.testing import FixedClock, MemoryTransport
from consentry.transport import Response, TransportError
from consentry.wire.schema import DURATIONS
from consentry_examples.napari_like import EXAMPLE as NAPARI_EXAMPLE


class Collector:
    """The SDK's in-memory span exporter and metric reader, behind the providers an OtelTransport emits into."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)

    def transport(self, inner: Any = None) -> OtelTransport:
        return OtelTransport(
            inner=inner or MemoryTransport(), tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def points(self) -> list[tuple[str, int, dict[str, object]]]:
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            (metric.name, point.value, dict(point.attributes or {}))
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            for point in metric.data.data_points  # type: ignore[union-attr]
        ]


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    yield found
    found.tracer_provider.shutdown()
    found.meter_provider.shutdown()


def record_a_day(manifest: Manifest, home, environ, clock: FixedClock, level: str) -> Recorder:
    """Consent, then a day of use, flushed; the clock then moves to the next day, so its reports are due."""
    consentry.set_consent(manifest, "on", level, home=home, environ=environ, clock=clock)
    recorder = consentry.init(
        manifest, app_version="1.2.0", home=home, environ=environ, clock=clock, background=False, flush_at_exit=False
    )
    assert isinstance(recorder, Recorder)
    return recorder


def next_day(recorder: Recorder, clock: FixedClock) -> None:
    recorder.close()
    clock.advance(datetime.timedelta(days=1))


def a_day_of_view(manifest: Manifest, home, environ, clock: FixedClock) -> AppSession:
    """A day with one ``view`` command at the basic level, then the next day's session, its reports prepared."""
    recorder = record_a_day(manifest, home, environ, clock, "basic")
    with recorder.command("view"):
        pass
    next_day(recorder, clock)
    session = AppSession.open(manifest, home=home, environ=environ, clock=clock)
    session.prepare_reports()
    return session


def scalars(document: object) -> set[object]:
    """Every key and value in a JSON document."""
    if isinstance(document, dict):
        return {item for key, value in document.items() for item in ({key} | scalars(value))}
    if isinstance(document, list):
        return {item for value in document for item in scalars(value)}
    return {document}


def test_each_sent_report_is_exported_from_the_bytes_that_were_previewed(stripepy, home, environ, clock, collector):
    recorder = record_a_day(stripepy, home, environ, clock, "basic")
    with recorder.command("call", format="hic", resolution="10000", nproc=8, output="/home/alice/out"):
        pass
    recorder.record_command("plot", {"plot-type": "stripe-hist"}, duration=12.0, exit_code=1, exception="ValueError")
    recorder.exception(MemoryError)
    next_day(recorder, clock)
    session = AppSession.open(stripepy, home=home, environ=environ, clock=clock)
    session.prepare_reports()
    previewed = [item.read() for item in session.outbox.pending()]  # what `consentry preview` shows
    transport = collector.transport()
    assert session.upload(transport, force=True).sent == 1
    assert transport.exported == 1
    [sent] = previewed
    report = consentry.wire.decode(sent)

    spans = {span.name: span for span in collector.spans.get_finished_spans()}
    assert set(spans) == {"call", "plot"}
    call = dict(spans["call"].attributes or {})
    assert {key: value for key, value in call.items() if key.startswith("consentry.param.")} == {
        "consentry.param.force": False,
        "consentry.param.format": "hic",
        "consentry.param.normalization": False,
        "consentry.param.nproc": True,
        "consentry.param.resolution": "10000",
    }
    assert call["consentry.command.count"] == 1
    assert call["consentry.command.duration"] == "<1s"
    assert spans["call"].status.is_ok
    plot = dict(spans["plot"].attributes or {})
    assert (plot["process.exit.code"], plot["exception.type"], plot["consentry.command.duration"]) == (
        1,
        "ValueError",
        "10-60s",
    )
    assert not spans["plot"].status.is_ok
    assert spans["plot"].status.description is None  # never a message
    day = report.days[0]
    midnight = datetime.datetime.combine(day, datetime.time(), datetime.timezone.utc).timestamp()
    assert spans["plot"].start_time == int(midnight) * 10**9
    assert spans["plot"].end_time - spans["plot"].start_time == 10 * 10**9  # the lower bound of "10-60s"

    points = collector.points()
    assert ("consentry.exceptions", 1) in [(name, value) for name, value, _ in points]
    [(_, _, about)] = [point for point in points if point[0] == "consentry.reports"]
    assert about["consentry.reporter"] == report.reporter
    assert {
        key[len("consentry.system.") :]: value for key, value in about.items() if ".system." in key
    } == report.system

    # Nothing more than the report: every exported value is one of its values.
    exported = [value for span in spans.values() for value in (span.attributes or {}).values()]
    exported += [value for _, value, attributes in points for value in [value, *attributes.values()]]
    assert set(exported) <= scalars(json.loads(sent))
    assert "alice" not in repr(exported)


def test_counts_plugins_data_and_activity_become_counter_points(napari, home, environ, clock, collector):
    recorder = record_a_day(napari, home, environ, clock, "full")
    recorder.count("napari:layer:add_image", 3)
    recorder.count("napari:window:file:save_layers")
    blobs = next(plugin for plugin in NAPARI_EXAMPLE.plugins if plugin.name == "napari-blobs")
    recorder.plugin(blobs, "0.3.1").count("detect", 2)
    recorder.data("image", [0] * 10)
    recorder.add_run()
    recorder.tick_activity()
    next_day(recorder, clock)
    session = AppSession.open(napari, home=home, environ=environ, clock=clock)
    session.prepare_reports()
    levels = [consentry.wire.decode(item.read()).level for item in session.outbox.pending()]
    transport = collector.transport()
    assert session.upload(transport, force=True).sent == len(levels) == transport.exported
    points = {
        (name, tuple(sorted((k, v) for k, v in attributes.items() if k in KEYS))): value
        for name, value, attributes in collector.points()
    }
    assert points[("consentry.events", (("consentry.event", "napari:layer:add_image"),))] == 3
    assert points[("consentry.events", (("consentry.event", "napari:window:file:save_layers"),))] == 1
    assert (
        points[("consentry.plugin.events", (("consentry.event", "detect"), ("consentry.plugin", "napari-blobs")))] == 2
    )
    assert points[("consentry.plugins", (("consentry.plugin", "napari-blobs"),))] == 1
    assert points[("consentry.data", (("consentry.data.kind", "image"),))] == 1
    assert points[("consentry.runs", ())] == 1
    assert points[("consentry.active_time", ())] == 10
    assert [value for name, value, _ in collector.points() if name == "consentry.reports"] == [1] * len(levels)
    assert collector.spans.get_finished_spans() == ()


KEYS = {"consentry.event", "consentry.plugin", "consentry.data.kind"}


@pytest.mark.parametrize("situation", ["never asked", "said no", "withdrawn", "ask mode", "CI", "kill switch"])
def test_nothing_is_exported_without_consent(stripepy, home, environ, clock, collector, situation):
    if situation != "never asked":
        recorder = record_a_day(stripepy, home, environ, clock, "basic")
        with recorder.command("view"):
            pass
        next_day(recorder, clock)
    if situation == "said no":
        consentry.set_consent(stripepy, "off", home=home, environ=environ, clock=clock)
    if situation == "withdrawn":
        AppSession.open(stripepy, home=home, environ=environ, clock=clock).prepare_reports()
        consentry.set_consent(stripepy, "off", home=home, environ=environ, clock=clock)
    if situation == "ask mode":
        consentry.set_consent(stripepy, "ask", "basic", home=home, environ=environ, clock=clock)
    env = {**environ, **{"CI": {"CI": "true"}, "kill switch": {"DO_NOT_TRACK": "1"}}.get(situation, {})}
    session = AppSession.open(stripepy, home=home, environ=env, clock=clock)
    session.prepare_reports()
    inner = MemoryTransport()
    transport = collector.transport(inner)
    session.upload(transport, force=True)
    assert inner.requests == []
    assert transport.exported == 0
    assert collector.spans.get_finished_spans() == ()
    assert collector.points() == []


@pytest.mark.parametrize(
    "answer",
    [Response(400, {}, b'{"error": {"code": "unknown_event"}}'), Response(503), TransportError("unreachable")],
    ids=["refused", "server error", "no answer"],
)
def test_a_report_the_server_did_not_accept_is_not_exported(stripepy, home, environ, clock, collector, answer):
    session = a_day_of_view(stripepy, home, environ, clock)
    transport = collector.transport(MemoryTransport([answer]))
    assert session.upload(transport, force=True).sent == 0
    assert transport.exported == 0
    assert collector.spans.get_finished_spans() == ()


def test_every_duration_bucket_has_a_span_length():
    assert list(otel._LOWER_BOUNDS) == list(DURATIONS)
    assert sorted(otel._LOWER_BOUNDS.values()) == list(otel._LOWER_BOUNDS.values())


def test_the_transport_needs_an_endpoint_or_both_providers(collector):
    for arguments in (
        {},
        {"tracer_provider": collector.tracer_provider},
        {"endpoint": "https://otel.example.org", "meter_provider": collector.meter_provider},
        {"endpoint": "ftp://otel.example.org"},
        {"endpoint": "otel.example.org:4318"},
    ):
        with pytest.raises(ValueError, match=r"OtelTransport needs|not an OTLP"):
            OtelTransport(**arguments)


# ---- the real OTLP/HTTP exporter -----------------------------------------------------------------------------------
class OtlpCollector(http.server.ThreadingHTTPServer):
    """A collector on 127.0.0.1 that keeps every request: path, headers (lower case) and the decompressed body."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.status = status
        super().__init__(("127.0.0.1", 0), OtlpHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class OtlpHandler(http.server.BaseHTTPRequestHandler):
    server: OtlpCollector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.server.received.append((self.path, headers, body))
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's naming
        pass


@pytest.fixture
def otlp() -> Iterator[OtlpCollector]:
    server = OtlpCollector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def local_manifest(url: str) -> Manifest:
    return loads_manifest(
        textwrap.dedent(
            f"""
            manifest_version = 1
            [app]
            name = "otlp-app"
            consent_text = "otlp-app counts its runs and its exports."
            [levels.basic]
            description = "Which commands run, and how often PNG export is used."
            endpoint = "{url}/v1/reports/basic"
            system = ["os", "python"]
            [[events]]
            name = "export.png"
            level = "basic"
            purpose = "How often PNG export is used."
            [[commands]]
            name = "render"
            level = "basic"
            purpose = "How often scenes are rendered, and at which quality."
            [commands.params]
            quality = ["draft", "final"]
            """
        )
    )


@pytest.mark.slow
def test_the_sdks_otlp_exporter_posts_what_init_sends_from_its_thread(home, environ, otlp):
    manifest = local_manifest(otlp.url)
    yesterday = FixedClock(datetime.datetime(2026, 11, 17, 12, tzinfo=datetime.timezone.utc))
    recorder = record_a_day(manifest, home, environ, yesterday, "basic")
    with recorder.command("render", quality="final"):
        pass
    recorder.count("export.png", 4)
    recorder.close()
    inner = MemoryTransport()
    transport = OtelTransport(otlp.url, inner=inner, timeout=10)
    today = FixedClock(datetime.datetime(2026, 11, 18, 12, tzinfo=datetime.timezone.utc))
    recorder = consentry.init(
        manifest, app_version="1.2.0", home=home, environ=environ, clock=today, transport=transport, flush_at_exit=False
    )
    deadline = time.monotonic() + 30
    while len(otlp.received) < 2 and time.monotonic() < deadline:  # the recorder's thread uploads, then exports
        time.sleep(0.02)
    recorder.close()
    assert len(inner.requests) == 1
    assert transport.exported == 1
    received = {path: (headers, body) for path, headers, body in otlp.received}
    assert set(received) == {"/v1/traces", "/v1/metrics"}
    assert received["/v1/traces"][0]["content-type"] == "application/x-protobuf"

    traces = ExportTraceServiceRequest.FromString(received["/v1/traces"][1])
    [resource_spans] = traces.resource_spans
    resource = {item.key: item.value.string_value for item in resource_spans.resource.attributes}
    assert resource == {"service.name": "otlp-app", "service.version": "1.2.0"}  # nothing from the environment
    [span] = [span for scope in resource_spans.scope_spans for span in scope.spans]
    attributes = {item.key: item.value for item in span.attributes}
    assert span.name == "render"
    assert attributes["consentry.param.quality"].string_value == "final"
    assert attributes["consentry.day"].string_value == "2026-11-17"

    metrics = ExportMetricsServiceRequest.FromString(received["/v1/metrics"][1])
    values = {
        metric.name: [point.as_int for point in metric.sum.data_points]
        for resource_metrics in metrics.resource_metrics
        for scope in resource_metrics.scope_metrics
        for metric in scope.metrics
    }
    assert values == {"consentry.reports": [1], "consentry.events": [4]}


def test_a_collector_on_another_host_than_the_levels_gets_nothing(stripepy, home, environ, clock, otlp):
    session = a_day_of_view(stripepy, home, environ, clock)
    transport = OtelTransport(otlp.url, inner=MemoryTransport())  # stripepy-like reports go to its own host
    assert session.upload(transport, force=True).sent == 1
    assert transport.exported == 0
    assert otlp.received == []


UNREACHABLE = textwrap.dedent(
    """
    import datetime, socket, sys
    import consentry
    from consentry._local.session import AppSession
    from consentry.otel import OtelTransport
    from consentry.testing import FixedClock, MemoryTransport
    sys.path.insert(0, sys.argv[2])
    from test_otel_export import local_manifest

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    manifest = local_manifest(f"http://127.0.0.1:{port}")
    home, environ = sys.argv[1], {"CONSENTRY_POLICY_FILE": "/nonexistent/policy.json"}
    day = FixedClock(datetime.datetime(2026, 11, 17, 12, tzinfo=datetime.timezone.utc))
    consentry.set_consent(manifest, "on", "basic", home=home, environ=environ, clock=day)
    recorder = consentry.init(manifest, home=home, environ=environ, clock=day, background=False, flush_at_exit=False)
    recorder.count("export.png")
    recorder.close()
    day.advance(datetime.timedelta(days=1))
    session = AppSession.open(manifest, home=home, environ=environ, clock=day)
    session.prepare_reports()
    transport = OtelTransport(f"http://127.0.0.1:{port}", inner=MemoryTransport(), timeout=1)
    print("SENT", session.upload(transport, force=True).sent, transport.exported)
    """
)


@pytest.mark.slow
def test_an_unreachable_collector_costs_the_timeout_and_prints_nothing(home):
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", UNREACHABLE, str(home), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "SENT 1 0\n"  # the report was sent; its export was tried and failed
    assert done.stderr == ""  # the SDK's complaints stay in its loggers
    assert time.monotonic() - started < 30
