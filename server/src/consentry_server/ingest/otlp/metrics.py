"""From OTLP metrics to event counts: a counter named as one of the manifest's events counts that event.

Only monotonic sums with delta temporality are counts of what happened in their interval; each data point adds
its value to the event's count on the UTC day of the point's time. Names are compared without regard to case,
as OpenTelemetry compares instrument names (its Python SDK sends them lower-cased). A cumulative sum repeats
what earlier exports already said (summing them would count the same events again), and gauges, histograms and
summaries are no counts at all: their data points are refused, and so are those of metrics the manifest does
not declare as events. Data point attributes and exemplars (which carry trace and span ids) are never kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric, NumberDataPoint

from consentry.manifest import Manifest
from consentry.wire.schema import MAX_COUNT
from consentry_server.ingest.catalog import Catalog
from consentry_server.ingest.otlp.resource import describe_resource
from consentry_server.ingest.otlp.spans import utc_day
from consentry_server.ingest.otlp.tally import DayWindow, Group, Refused, Tally

__all__ = ["data_points", "event_name", "map_metrics"]

_KINDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def data_points(metric: Metric) -> int:
    """How many data points ``metric`` carries, whatever its kind."""
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind in _KINDS else 0


def _count(point: NumberDataPoint) -> int:
    if point.WhichOneof("value") == "as_int":
        value: float = point.as_int
    elif point.WhichOneof("value") == "as_double":
        value = point.as_double
    else:
        raise Refused("bad_value", "a data point has no value")
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise Refused("bad_value", "a count must be a whole number, zero or more")
    return min(int(value), MAX_COUNT)


def event_name(manifest: Manifest, metric: str) -> str | None:
    """The declared event ``metric`` counts: instrument names are case-insensitive (SDKs send them lower-cased)."""
    if metric in manifest.events:
        return metric
    matches = [event for event in manifest.events if event.lower() == metric.lower()]
    return matches[0] if len(matches) == 1 else None


def _counter(metric: Metric, manifest: Manifest) -> tuple[str, Sequence[NumberDataPoint]]:
    """The event ``metric`` counts and its data points, if it is a delta counter of one; else :class:`Refused`."""
    event = event_name(manifest, metric.name)
    if event is None:
        raise Refused("metric_not_in_manifest", f"{manifest.name!r} declares no event {metric.name!r}")
    delta = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    if metric.WhichOneof("data") != "sum" or not metric.sum.is_monotonic or metric.sum.aggregation_temporality != delta:
        raise Refused("not_a_delta_counter", f"{metric.name!r} is not a monotonic sum with delta temporality")
    return event, metric.sum.data_points


def _add(group: Group, tally: Tally, metric: Metric, window: DayWindow) -> None:
    try:
        event, points = _counter(metric, group.source.catalog.latest)
    except Refused as refused:
        tally.refuse(refused.reason, data_points(metric), refused.detail)
        return
    for point in points:
        try:
            day = window.check(utc_day(point.time_unix_nano), "a data point")
            count = _count(point)
        except Refused as refused:
            tally.refuse(refused.reason, 1, refused.detail)
            continue
        group.add_event(day, event, count)
        tally.dropped_attributes += len(point.attributes)


def map_metrics(
    request: ExportMetricsServiceRequest,
    lookup: Callable[[str], Catalog | None],
    window: DayWindow,
    tally: Tally,
) -> None:
    """Add the data points of ``request`` to ``tally``: each one counts an event of its source, or is refused."""
    for resource_metrics in request.resource_metrics:
        metrics = [metric for scope_metrics in resource_metrics.scope_metrics for metric in scope_metrics.metrics]
        source = describe_resource(resource_metrics.resource, lookup)
        if isinstance(source, str):
            points = sum(data_points(metric) for metric in metrics)
            tally.refuse("unknown_service", points, f"service {source!r} is not registered on this server")
            continue
        group = tally.group(source)
        for metric in metrics:
            _add(group, tally, metric, window)
