"""Bad OTLP input gets a 4xx with a ``google.rpc.Status`` in the request's encoding, and changes nothing.

Each request of the table differs from an accepted one (the first test) only by what the row names. Hostile
attribute names and values that do not make a request bad are dropped, and the last tests check that none of
them is stored.
"""

from __future__ import annotations

import datetime
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from support.bodies import chunked, gzip_bomb

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
NANOS = 1_000_000_000
SQL = "x'); DROP TABLE reports; --"
HUGE = "A" * 200_000


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def noon(days_from_today: int) -> int:
    day = utc_today() + datetime.timedelta(days=days_from_today)
    return int(datetime.datetime.combine(day, datetime.time(12), tzinfo=datetime.timezone.utc).timestamp()) * NANOS


def text(key: str, item: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=item))


def request(
    *,
    service: str = "stripepy-like",
    name: str = "call",
    start: int | None = None,
    end: int | None = None,
    extra: list[KeyValue] | None = None,
) -> ExportTraceServiceRequest:
    """A valid export of one ``call`` span of yesterday, but for what is given."""
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    resource_spans.resource.attributes.extend([text("service.name", service), text("os.type", "linux")])
    item = resource_spans.scope_spans.add().spans.add()
    item.trace_id, item.span_id, item.name = bytes(range(16)), bytes(range(8)), name
    item.start_time_unix_nano = noon(-1) if start is None else start
    item.end_time_unix_nano = item.start_time_unix_nano + 5 * NANOS if end is None else end
    item.attributes.extend([text("params.format", "hic"), *(extra or [])])
    return message


def metrics(kind: str = "sum", *, temporality: int = 1, monotonic: bool = True, count: float | str = 3) -> Message:
    document: dict[str, object] = {"dataPoints": [{"timeUnixNano": str(noon(-1)), "asDouble": count}]}
    if kind == "sum":
        document.update(aggregationTemporality=temporality, isMonotonic=monotonic)
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "slicer-like"}}]}
    metric = {"name": "SampleData/load", kind: document}
    body = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [metric]}]}]}
    return json_format.ParseDict(body, ExportMetricsServiceRequest())


def deep_value(depth: int) -> AnyValue:
    """An attribute value nested ``depth`` arrays deep, encoded by hand (protobuf refuses to build it)."""
    data = AnyValue(string_value="x").SerializeToString()
    for _ in range(depth):
        array = b"\x0a" + _varint(len(data)) + data  # ArrayValue.values
        data = b"\x2a" + _varint(len(array)) + array  # AnyValue.array_value
    return data


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        out.append((number & 0x7F) | (0x80 if number > 0x7F else 0))
        number >>= 7
        if not number:
            return bytes(out)


def with_deep_attribute(depth: int) -> bytes:
    """A valid export whose span carries one more attribute, nested ``depth`` deep, encoded by hand."""
    message = request()
    deep = deep_value(depth)
    attribute = b"\x0a\x06nested" + b"\x12" + _varint(len(deep)) + deep  # KeyValue{key, value}
    item = message.resource_spans[0].scope_spans[0].spans[0].SerializeToString()
    item += b"\x4a" + _varint(len(attribute)) + attribute  # Span.attributes (field 9)
    scope = b"\x12" + _varint(len(item)) + item  # ScopeSpans.spans (field 2)
    resource = message.resource_spans[0].resource.SerializeToString()
    resource_spans = b"\x0a" + _varint(len(resource)) + resource + b"\x12" + _varint(len(scope)) + scope
    return b"\x0a" + _varint(len(resource_spans)) + resource_spans


def protobuf(message: Message) -> bytes:
    return message.SerializeToString()


def as_json(message: Message) -> bytes:
    return json_format.MessageToJson(message).encode()


@dataclass(frozen=True)
class Bad:
    body: Callable[[], bytes]
    status: int
    code: str
    media: str = PROTOBUF
    headers: dict[str, str] | None = None
    path: str = "/v1/traces"
    stream: bool = False


def deep_json_kvlist(depth: int) -> bytes:
    nested: dict[str, object] = {"stringValue": "x"}
    for _ in range(depth):
        nested = {"kvlistValue": {"values": [{"key": "k", "value": nested}]}}
    document = json.loads(as_json(request()))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append({"key": "deep", "value": nested})
    return json.dumps(document).encode()


def json_with(
    edit: Callable[[dict[str, Any]], object], message: Callable[[], Message] = request
) -> Callable[[], bytes]:
    """The valid request as OTLP/JSON, changed in place by ``edit``."""

    def body() -> bytes:
        document = json.loads(as_json(message()))
        edit(document)
        return json.dumps(document).encode()

    return body


def first_span(document: dict[str, Any]) -> dict[str, Any]:
    return document["resourceSpans"][0]["scopeSpans"][0]


BAD = {
    # ---- format
    "malformed_protobuf": Bad(lambda: b"\xff\xff\xff\xff garbage", 400, "invalid_otlp"),
    "truncated_protobuf": Bad(lambda: protobuf(request())[:-7], 400, "invalid_otlp"),
    "json_as_protobuf": Bad(lambda: as_json(request()), 400, "invalid_otlp"),
    "malformed_json": Bad(lambda: as_json(request())[:-3], 400, "invalid_otlp", JSON),
    "json_not_an_object": Bad(lambda: b"[]", 400, "invalid_otlp", JSON),
    "json_wrong_type": Bad(lambda: b'{"resourceSpans": 5}', 400, "invalid_otlp", JSON),
    "json_utf16": Bad(lambda: as_json(request()).decode().encode("utf-16"), 400, "invalid_otlp", JSON),
    "json_not_utf8": Bad(lambda: as_json(request()).replace(b"linux", b"l\xefnux"), 400, "invalid_otlp", JSON),
    # json_format reads any iterable as a message: these were empty messages, and the export answered 200 {}.
    "json_items_not_objects": Bad(lambda: b'{"resourceSpans": [[], "x", []]}', 400, "invalid_otlp", JSON),
    "json_metric_items_not_objects": Bad(
        lambda: b'{"resourceMetrics": [[], "xy"]}', 400, "invalid_otlp", JSON, path="/v1/metrics"
    ),
    "json_a_span_not_an_object": Bad(
        json_with(lambda doc: first_span(doc)["spans"].append("x")), 400, "invalid_otlp", JSON
    ),
    "json_an_attribute_not_an_object": Bad(
        json_with(lambda doc: first_span(doc)["spans"][0]["attributes"].append([])), 400, "invalid_otlp", JSON
    ),
    "json_resource_an_array": Bad(
        json_with(lambda doc: doc["resourceSpans"][0].update(resource=[])), 400, "invalid_otlp", JSON
    ),
    "json_data_point_a_string": Bad(
        json_with(
            lambda doc: doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"].append("1"),
            metrics,
        ),
        400,
        "invalid_otlp",
        JSON,
        path="/v1/metrics",
    ),
    "json_null_item": Bad(lambda: b'{"resourceSpans": [null]}', 400, "invalid_otlp", JSON),
    "json_deep_arrays": Bad(lambda: b"[" * 100_000 + b"]" * 100_000, 400, "invalid_otlp", JSON),
    "json_deep_kvlist": Bad(lambda: deep_json_kvlist(200), 400, "invalid_otlp", JSON),
    "protobuf_deep_anyvalue": Bad(lambda: with_deep_attribute(200), 400, "invalid_otlp"),
    # ---- transport
    "content_type_text_plain": Bad(lambda: protobuf(request()), 415, "unsupported_media_type", "text/plain"),
    "content_type_grpc": Bad(lambda: protobuf(request()), 415, "unsupported_media_type", "application/grpc"),
    "json_charset_latin1": Bad(
        lambda: as_json(request()), 415, "unsupported_charset", JSON, {"content-type": f"{JSON}; charset=latin-1"}
    ),
    "content_encoding_br": Bad(
        lambda: protobuf(request()), 415, "unsupported_encoding", headers={"content-encoding": "br"}
    ),
    "gzip_bomb": Bad(gzip_bomb, 413, "too_large", headers={"content-encoding": "gzip"}),
    "gzip_truncated": Bad(
        lambda: gzip.compress(protobuf(request()))[:-9], 400, "bad_gzip", headers={"content-encoding": "gzip"}
    ),
    "body_too_large": Bad(lambda: protobuf(request(extra=[text("big", HUGE * 3)])), 413, "too_large"),
    "body_too_large_chunked": Bad(
        lambda: protobuf(request(extra=[text("big", HUGE * 3)])), 413, "too_large", stream=True
    ),
    # ---- names
    "unknown_service": Bad(lambda: protobuf(request(service="not-registered")), 400, "unknown_service"),
    "sql_service_name": Bad(lambda: protobuf(request(service=SQL)), 400, "unknown_service"),
    "huge_service_name": Bad(lambda: as_json(request(service=HUGE)), 400, "unknown_service", JSON),
    "no_service_name": Bad(lambda: protobuf(request(service="")), 400, "unknown_service"),
    "span_without_name": Bad(lambda: protobuf(request(name="")), 400, "span_without_name"),
    "sql_span_name": Bad(lambda: protobuf(request(name=SQL)), 400, "command_not_in_manifest"),
    "huge_span_name": Bad(lambda: protobuf(request(name=HUGE)), 400, "command_not_in_manifest"),
    # ---- times
    "end_before_start": Bad(lambda: protobuf(request(end=noon(-1) - NANOS)), 400, "bad_timestamps"),
    "no_timestamps": Bad(lambda: protobuf(request(start=0, end=0)), 400, "bad_timestamps"),
    "future": Bad(lambda: protobuf(request(start=noon(5))), 400, "day_in_future"),
    "far_future": Bad(lambda: protobuf(request(start=2**64 - 10 * NANOS)), 400, "day_in_future"),
    "ancient": Bad(lambda: protobuf(request(start=noon(-400))), 400, "day_too_old"),
    "epoch": Bad(lambda: protobuf(request(start=1)), 400, "day_too_old"),
    "started_decades_ago": Bad(lambda: protobuf(request(start=1, end=noon(-1))), 400, "day_too_old"),
    # ---- metrics
    "metric_gauge": Bad(lambda: protobuf(metrics("gauge")), 400, "not_a_delta_counter", path="/v1/metrics"),
    "metric_cumulative": Bad(lambda: protobuf(metrics(temporality=2)), 400, "not_a_delta_counter", path="/v1/metrics"),
    "metric_not_monotonic": Bad(
        lambda: as_json(metrics(monotonic=False)), 400, "not_a_delta_counter", JSON, path="/v1/metrics"
    ),
    "metric_negative": Bad(lambda: protobuf(metrics(count=-2)), 400, "bad_value", path="/v1/metrics"),
    "metric_fraction": Bad(lambda: protobuf(metrics(count=0.5)), 400, "bad_value", path="/v1/metrics"),
    "metric_nan": Bad(lambda: protobuf(metrics(count="NaN")), 400, "bad_value", path="/v1/metrics"),
    "metric_malformed": Bad(lambda: b"\x0a\xff", 400, "invalid_otlp", path="/v1/metrics"),
}


@pytest.fixture
def stored(client) -> None:
    """An export already stored, so the raw tables are not empty when a bad request arrives."""
    response = client.post("/v1/traces", content=protobuf(request()), headers={"content-type": PROTOBUF})
    assert response.status_code == 200, response.text


def status(response) -> Status:
    """The ``google.rpc.Status`` of a refusal, decoded in the answer's content type."""
    if response.headers["content-type"] == PROTOBUF:
        return Status.FromString(response.content)
    return json_format.Parse(response.content, Status())


def test_the_request_of_the_table_is_itself_accepted(client):
    # Guards the table: each bad row differs from this by what it names.
    for body, media in ((protobuf(request()), PROTOBUF), (as_json(request()), JSON)):
        response = client.post("/v1/traces", content=body, headers={"content-type": media})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == media
    response = client.post("/v1/metrics", content=protobuf(metrics()), headers={"content-type": PROTOBUF})
    assert response.status_code == 200, response.text


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_bad_input_is_refused_with_a_status_and_changes_nothing(client, storage, dump, bad):
    body = bad.body()
    headers = {"content-type": bad.media, **(bad.headers or {})}
    rows, before = storage.report_count(), dump()
    assert rows == 1

    response = client.post(bad.path, content=chunked(body) if bad.stream else body, headers=headers)

    assert response.status_code == bad.status, response.text[:500]
    expected_media = bad.media if bad.media in (PROTOBUF, JSON) else JSON
    assert response.headers["content-type"] == expected_media
    refusal = status(response)
    assert refusal.message.startswith(bad.code + ":"), refusal.message
    assert refusal.code != 0
    assert len(response.content) < 2048, f"a {len(response.content)}-byte answer"
    assert storage.report_count() == rows
    assert dump() == before


# ---- hostile, but not bad ------------------------------------------------------------------------------------
def hostile_attributes() -> list[KeyValue]:
    deep = AnyValue.FromString(deep_value(20))
    nested_map = AnyValue()
    nested_map.kvlist_value.values.add(key=SQL, value=AnyValue(string_value=SQL))
    return [
        text(SQL, SQL),
        text(HUGE[:5000], "value"),
        text("params.name", HUGE[:5000]),
        text("params.nproc", SQL),
        KeyValue(key="params.force", value=deep),
        KeyValue(key="params.normalization", value=nested_map),
        text("params.format", SQL),  # given twice: the first value counts
        KeyValue(key="bytes", value=AnyValue(bytes_value=b"\x00\xff" * 100)),
        KeyValue(key="", value=AnyValue(string_value="no key")),
    ]


def test_hostile_attributes_are_dropped_and_never_stored(client, storage, settings):
    body = protobuf(request(extra=hostile_attributes()))

    response = client.post("/v1/traces", content=body, headers={"content-type": PROTOBUF})

    assert response.status_code == 200, response.text
    [row] = storage.export("stripepy-like")
    stored = json.dumps(row)
    for hostile in (SQL, "DROP", HUGE[:100], "no key"):
        assert hostile not in stored
    [command] = [json.loads(entry["name"]) for entry in row["counters"] if entry["kind"] == "command"]
    # Declared parameters with values that are not allowed, or not plain values, are only "given".
    assert dict(command[1]) == {
        "format": "hic",
        "resolution": False,
        "nproc": True,
        "force": True,
        "normalization": True,
    }
    stats = client.get("/admin/v1/stats", headers={"authorization": f"Bearer {settings.admin_token}"}).json()
    # The SQL key, the huge key, "params.name" (a parameter of another command), "bytes" and "".
    assert stats["refused"]["otlp_attribute_dropped"] == 5
