"""``POST /v1/traces`` and ``POST /v1/metrics``: the OTLP/HTTP receiver, in front of the native ingest pipeline.

The checks that belong to the request come first, in the order of cost, as for native reports: the source's
rate limit (:meth:`~consentry_server.ingest.routes.Ingest.admit_source`, which also forgets the address), the content
type, the size as received and after decompression, the decoding. Then the export is mapped to native reports
(:mod:`~consentry_server.ingest.otlp.spans`, :mod:`~consentry_server.ingest.otlp.metrics`,
:mod:`~consentry_server.ingest.otlp.reports`) and each goes through
:meth:`~consentry_server.ingest.routes.Ingest.store`: validated and stored like any native report.

Answers, as the OTLP specification asks: 200 with an ``Export*ServiceResponse``, whose ``partial_success``
counts the items refused and says why; 400 when nothing in the export could be accepted (the failure is
permanent: sending it again cannot help); 413, 415, 429 and 503 (with ``Retry-After``) as for native reports.
When the storer is busy before anything was stored, the answer is 503 and the exporter retries; once some of
the export is stored, the rest is refused in ``partial_success`` instead, so that a retry cannot count the
stored part twice.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consentry_server.ingest.accept import decompress, utc_today
from consentry_server.ingest.catalog import Catalog
from consentry_server.ingest.manifests import Registry
from consentry_server.ingest.otlp.messages import (
    JSON,
    PROTOBUF,
    decode_request,
    encode_message,
    request_media,
    status_response,
)
from consentry_server.ingest.otlp.metrics import map_metrics
from consentry_server.ingest.otlp.reports import DayReports, plan_reports
from consentry_server.ingest.otlp.spans import map_spans
from consentry_server.ingest.otlp.tally import DayWindow, Tally
from consentry_server.ingest.routes import Ingest, Source, read_body
from consentry_server.ingest.validate import Rejection

__all__ = ["PATHS", "Receiver", "Signal", "routes"]


_Lookup = Callable[[str], Catalog | None]


def _trace_response(rejected: int, message: str) -> Message:
    if not rejected:
        return ExportTraceServiceResponse()
    partial = ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
    return ExportTraceServiceResponse(partial_success=partial)


def _metrics_response(rejected: int, message: str) -> Message:
    if not rejected:
        return ExportMetricsServiceResponse()
    partial = ExportMetricsPartialSuccess(rejected_data_points=rejected, error_message=message)
    return ExportMetricsServiceResponse(partial_success=partial)


@dataclass(frozen=True)
class Signal:
    """What differs between traces and metrics: the path, the messages, the mapping to a tally."""

    path: str
    request: Callable[[], Message]
    mapping: Callable[[Any, _Lookup, DayWindow, Tally], None]
    response: Callable[[int, str], Message]

    def answer(self, tally: Tally, media: str) -> Response:
        """200 with the export response; ``partial_success`` says how many items were refused, and why."""
        return Response(encode_message(self.response(tally.rejected, tally.summary()), media), media_type=media)


_TRACES = Signal("/v1/traces", ExportTraceServiceRequest, map_spans, _trace_response)
_METRICS = Signal("/v1/metrics", ExportMetricsServiceRequest, map_metrics, _metrics_response)
#: The paths of the OTLP/HTTP receiver.
PATHS = (_TRACES.path, _METRICS.path)


@dataclass
class Receiver:
    """The two OTLP/HTTP endpoints over the native ingest (``ingest``) and the registered manifests."""

    ingest: Ingest
    registry: Registry
    today: Callable[[], datetime.date] = utc_today

    async def traces(self, request: Request) -> Response:
        """``POST /v1/traces``."""
        return await self._export(request, _TRACES)

    async def metrics(self, request: Request) -> Response:
        """``POST /v1/metrics``."""
        return await self._export(request, _METRICS)

    async def _export(self, request: Request, signal: Signal) -> Response:
        content_type = request.headers.get("content-type")
        media = PROTOBUF if (content_type or "").split(";")[0].strip().lower() == PROTOBUF else JSON
        received = 0
        try:
            source = self.ingest.admit_source(request)
            media = request_media(content_type)
            body = await read_body(request, self.ingest.settings.max_body_bytes)
            received = len(body)
            encoding = request.headers.get("content-encoding")
            tally, planned = await run_in_threadpool(self._map, signal, media, body, encoding)
            await self._store(planned, tally, source)
        except Rejection as rejection:
            return self._refuse(rejection, signal, media, received)
        self._count(tally)
        if tally.rejected and not tally.accepted:
            code = tally.refused.most_common(1)[0][0]
            return self._refuse(Rejection(400, code, "", tally.summary()), signal, media, received)
        return signal.answer(tally, media)

    def _map(self, signal: Signal, media: str, body: bytes, encoding: str | None) -> tuple[Tally, list[DayReports]]:
        """Decompress, decode and map one export (in a worker thread: it is work, and may read manifests)."""
        data = decompress(body, encoding, self.ingest.settings.max_report_bytes)
        message = decode_request(data, media, signal.request())
        today = self.today()
        settings = self.ingest.settings
        window = DayWindow.around(today, retention_days=settings.raw_retention_days, future_days=settings.future_days)
        tally = Tally()
        signal.mapping(message, self.registry.get, window, tally)
        return tally, plan_reports(tally, today=today, window=window, max_bytes=settings.max_report_bytes)

    async def _store(self, planned: list[DayReports], tally: Tally, source: Source) -> None:
        """Store each day's reports; past the first report stored, a busy storer refuses the rest in ``tally``."""
        stored = False
        for index, day in enumerate(planned):
            try:
                for level, body in day.bodies:
                    await self.ingest.store(level, body, source=source, first_report_known=False)
                    stored = True
            except Rejection as rejection:
                busy = rejection.status in (429, 503)
                if busy and not stored:
                    raise
                tally.refuse_day(day.group, day.day, rejection.code, rejection.message)
                if busy:
                    for rest in planned[index + 1 :]:
                        tally.refuse_day(rest.group, rest.day, rejection.code, rejection.message)
                    return

    def _count(self, tally: Tally) -> None:
        """Count refused items by reason and dropped attributes for operators (``GET /admin/v1/stats``)."""
        for reason, items in tally.refused.items():
            self.ingest.drops.add(f"otlp_{reason}", items)
        if tally.dropped_attributes:
            self.ingest.drops.add("otlp_attribute_dropped", tally.dropped_attributes)

    def _refuse(self, rejection: Rejection, signal: Signal, media: str, size: int) -> Response:
        """A refused request: counted and logged as native ingest does, answered with a Status."""
        self.ingest.count_refusal(rejection, signal.path, size)
        return status_response(rejection, media)


def routes(ingest: Ingest, registry: Registry) -> list[Route]:
    """The routes of the OTLP/HTTP receiver, to add to the application's."""
    receiver = Receiver(ingest, registry)
    return [
        Route(_TRACES.path, receiver.traces, methods=["POST"]),
        Route(_METRICS.path, receiver.metrics, methods=["POST"]),
    ]
