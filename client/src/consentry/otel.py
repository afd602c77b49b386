"""Also export the reports Consentry sends to an OpenTelemetry collector (the ``otel`` extra).

For projects that already run a collector, as StripePy does: install ``consentry[otel]`` and give
:func:`consentry.init` (or :func:`consentry.cli_tool`) an :class:`OtelTransport`::

    from consentry.otel import OtelTransport

    telemetry = consentry.init(MANIFEST, transport=OtelTransport("https://telemetry.example.org:4318"))

It is a :class:`~consentry.transport.Transport`: each report goes to the Consentry server as before (through
:class:`~consentry.transport.HttpTransport`, or the ``inner`` transport given), and only once the server has accepted it
is that same report, decoded from the very bytes that were sent (those ``consentry preview`` showed), turned into
OTLP: each command record becomes a span, each count a counter data point. A report that is not sent (no
consent, a kill switch, CI, ``ask`` mode without approval) is not exported either, and nothing is added: the
only attributes are the report's own fields.

Where to: the collector must be on the host the level's reports go to (the host the consent screen names, and
the one an organisation blocks to block the level); a report for another host is not exported. The OTLP
requests are made by the OpenTelemetry SDK's own exporter: the one place where the client's network traffic
does not go through :mod:`consentry.transport`. It is bounded by ``timeout`` and never raises; the SDK's
complaints go to the ``opentelemetry`` loggers, which get a ``NullHandler`` so that an application that
configured no logging prints nothing. Projects that run the SDK already may pass their own ``tracer_provider``
and ``meter_provider`` instead of an endpoint (then where the data goes is theirs to make match the consent
screen).

Timestamps: a report says which day and which duration bucket, never when; a span starts at midnight UTC of its
day and lasts the lower bound of its bucket, and ``consentry.day`` and ``consentry.command.duration`` carry the
truth. Reports sent from a host's background thread are exported; reports sent by the detached uploader or by
``consentry upload`` are not (they know nothing of the host's transport).
"""

from __future__ import annotations

import datetime
import time
import urllib.parse

from consentry import __version__
from consentry._guard import guard, logger

# The host builds its transport at start-up, consent or not: the network, the wire format and the SDK are
# imported when there is something to send.
TYPE_CHECKING = False  # not imported from typing: see pyproject.toml
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from opentelemetry.metrics import Counter, Meter, MeterProvider
    from opentelemetry.trace import TracerProvider

    from consentry.transport import Request, Response, Transport
    from consentry.wire import Report

__all__ = ["INSTALL_HINT", "OtelTransport", "emit"]

INSTALL_HINT = "pip install 'consentry[otel]'"
#: The lower bound of each duration bucket of the wire schema (DURATIONS), in seconds: a span's length.
_LOWER_BOUNDS = {"<1s": 0, "1-10s": 1, "10-60s": 10, "1-10min": 60, "10-60min": 600, "1h+": 3600}
_Attributes = dict[str, str | bool | int]


def _midnight_ns(day: datetime.date) -> int:
    return int(datetime.datetime.combine(day, datetime.time(), datetime.timezone.utc).timestamp()) * 1_000_000_000


class _Counters:
    """The counters of one meter, created on first use."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter
        self._counters: dict[str, Counter] = {}

    def add(self, name: str, value: int, attributes: _Attributes, unit: str = "1") -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = self._meter.create_counter(name, unit=unit)
        counter.add(value, attributes)


def emit(report: Report, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
    """Turn ``report`` into spans and counter data points through the given providers (any OpenTelemetry SDK)."""
    counters = _Counters(meter_provider.get_meter("consentry", __version__))
    _emit(report, tracer_provider, counters)


def _emit(report: Report, tracer_provider: TracerProvider, counters: _Counters) -> None:
    from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: PLC0415 - the extra, only when used

    base: _Attributes = {"consentry.app": report.app, "consentry.app_version": report.app_version}
    base["consentry.level"] = report.level
    for day in report.days:
        about: _Attributes = {**base, "consentry.day": day.isoformat(), "consentry.reporter": report.reporter}
        about["consentry.first_report"] = report.first_report
        about.update({f"consentry.system.{name}": value for name, value in report.system.items()})
        about.update({f"consentry.dependency.{name}": value for name, value in report.dependencies.items()})
        counters.add("consentry.reports", 1, about, "{report}")
    for day, counts in report.counts.items():
        for event, n in counts.items():
            counters.add("consentry.events", n, {**base, "consentry.day": day.isoformat(), "consentry.event": event})
    for day, exceptions in report.exceptions.items():
        for kind, n in exceptions.items():
            counters.add("consentry.exceptions", n, {**base, "consentry.day": day.isoformat(), "exception.type": kind})
    for day, activity in report.activity.items():
        dated = {**base, "consentry.day": day.isoformat()}
        counters.add("consentry.runs", activity.runs, dated, "{run}")
        counters.add("consentry.active_time", activity.active_minutes, dated, "min")
    for plugin in report.plugins:
        named = {**base, "consentry.plugin": plugin.name, "consentry.plugin_version": plugin.version}
        counters.add("consentry.plugins", 1, named, "{plugin}")
        for day, counts in plugin.counts.items():
            for event, n in counts.items():
                point = {**named, "consentry.day": day.isoformat(), "consentry.event": event}
                counters.add("consentry.plugin.events", n, point)
    for data in report.data:
        point = {**base, "consentry.day": data.day.isoformat(), "consentry.data.kind": data.kind}
        point.update({"consentry.data.class": data.class_name, "consentry.data.dtype": data.dtype})
        point.update({"consentry.data.ndim": data.ndim, "consentry.data.size": data.size})
        counters.add("consentry.data", data.count, point)
    tracer = tracer_provider.get_tracer("consentry", __version__)
    for command in report.commands:
        attributes: _Attributes = {**base, "consentry.day": command.day.isoformat()}
        attributes.update({"consentry.command": command.name, "consentry.command.duration": command.duration})
        attributes.update({"consentry.command.count": command.count, "process.exit.code": command.exit_code})
        attributes.update({f"consentry.param.{name}": value for name, value in command.params.items()})
        if command.exception is not None:
            attributes["exception.type"] = command.exception
        start = _midnight_ns(command.day)
        span = tracer.start_span(command.name, kind=SpanKind.INTERNAL, attributes=attributes, start_time=start)
        if command.exit_code or command.exception is not None:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=start + _LOWER_BOUNDS.get(command.duration, 0) * 1_000_000_000)


def _quiet_sdk_logs() -> None:
    """Keep the SDK's warnings off stderr when the application configured no logging (they still propagate)."""
    import logging  # noqa: PLC0415 - only when exporting

    sdk = logging.getLogger("opentelemetry")
    if not any(isinstance(handler, logging.NullHandler) for handler in sdk.handlers):
        sdk.addHandler(logging.NullHandler())


class OtelTransport:
    """A transport that sends reports as usual and exports each one the server accepted to OpenTelemetry.

    ``endpoint`` is the collector's OTLP/HTTP base URL (``/v1/traces`` and ``/v1/metrics`` are appended), on the
    host of the levels it serves; ``headers`` and ``timeout`` (seconds, for both requests together) go to the
    SDK's exporters. Or, instead of an endpoint, the ``tracer_provider`` and ``meter_provider`` to emit into.
    ``inner`` sends the reports themselves (default: :class:`~consentry.transport.HttpTransport`). Raises ``ValueError``
    for a malformed endpoint; sending never raises more than ``inner`` does. ``exported`` counts the reports
    exported so far (with an endpoint: those the collector accepted).
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        inner: Transport | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        providers = (tracer_provider, meter_provider)
        if (endpoint is None and None in providers) or (endpoint is not None and providers != (None, None)):
            raise ValueError("OtelTransport needs an endpoint, or both a tracer_provider and a meter_provider")
        self.host: str | None = None
        if endpoint is not None:
            url = urllib.parse.urlsplit(endpoint)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError(f"not an OTLP/HTTP endpoint: {endpoint!r}")
            self.host = url.hostname.lower()
        self.endpoint = endpoint.rstrip("/") if endpoint is not None else None
        self.inner = inner
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._counters: _Counters | None = None
        self.exported = 0

    def send(self, request: Request) -> Response:
        """Send ``request`` through the inner transport; once accepted, export the report it carried."""
        if self.inner is None:
            from consentry._send.upload import USER_AGENT  # noqa: PLC0415
            from consentry.transport import HttpTransport  # noqa: PLC0415 - see the imports

            self.inner = HttpTransport(user_agent=USER_AGENT)
        response = self.inner.send(request)
        if 200 <= response.status < 300:  # noqa: PLR2004 - accepted
            with guard():
                self._export(request)
        return response

    def _export(self, request: Request) -> None:
        try:
            import opentelemetry.sdk  # noqa: F401, PLC0415 - the extra, only when used
        except ImportError:
            logger.debug("consentry: not exported to OpenTelemetry, the SDK is missing (%s)", INSTALL_HINT)
            return
        if self.host is not None and (urllib.parse.urlsplit(request.url).hostname or "").lower() != self.host:
            logger.debug("consentry: not exported to OpenTelemetry, the report went to another host")
            return
        import gzip  # noqa: PLC0415 - see the imports

        from consentry.wire import decode  # noqa: PLC0415

        body = request.body
        if any(key.lower() == "content-encoding" and value == "gzip" for key, value in request.headers.items()):
            body = gzip.decompress(body)
        report = decode(body)
        _quiet_sdk_logs()
        if self.tracer_provider is not None and self.meter_provider is not None:
            if self._counters is None:
                self._counters = _Counters(self.meter_provider.get_meter("consentry", __version__))
            _emit(report, self.tracer_provider, self._counters)
            self.exported += 1
        elif self._push(report, min(self.timeout, request.timeout)):
            self.exported += 1

    def _push(self, report: Report, timeout: float) -> bool:
        """Emit into throwaway providers that keep everything in memory, then send it in two OTLP requests.

        Returns whether the collector accepted both.
        """
        from opentelemetry.exporter.otlp.proto.http import Compression  # noqa: PLC0415 - the extra, only when used
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: PLC0415
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
        from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult  # noqa: PLC0415
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult  # noqa: PLC0415
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: PLC0415
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON  # noqa: PLC0415

        # Resource(...) rather than Resource.create(...): no attributes from the environment or detectors.
        resource = Resource({"service.name": report.app, "service.version": report.app_version})
        spans = InMemorySpanExporter()
        reader = InMemoryMetricReader()
        tracer_provider = TracerProvider(sampler=ALWAYS_ON, resource=resource, shutdown_on_exit=False)
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        meter_provider = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
        try:
            emit(report, tracer_provider, meter_provider)
            finished = spans.get_finished_spans()
            metrics = reader.get_metrics_data()
        finally:
            tracer_provider.shutdown()
            meter_provider.shutdown()
        deadline = time.monotonic() + timeout
        options: dict[str, Any] = {"headers": self.headers, "compression": Compression.Gzip}
        accepted = True
        if finished:
            exporter = OTLPSpanExporter(endpoint=f"{self.endpoint}/v1/traces", timeout=timeout, **options)
            try:
                accepted = exporter.export(finished) is SpanExportResult.SUCCESS
            finally:
                exporter.shutdown()  # type: ignore[no-untyped-call]
        remaining = deadline - time.monotonic()
        if metrics is not None and remaining > 0:
            metric_exporter = OTLPMetricExporter(endpoint=f"{self.endpoint}/v1/metrics", timeout=remaining, **options)
            try:
                result = metric_exporter.export(metrics, timeout_millis=remaining * 1000)
                accepted = accepted and result is MetricExportResult.SUCCESS
            finally:
                metric_exporter.shutdown()
        return accepted and (metrics is not None or bool(finished)) and remaining > 0
