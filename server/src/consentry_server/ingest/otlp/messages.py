"""OTLP/HTTP bodies: the two encodings of requests, and the answers in the encoding of the request.

Requests are binary protobuf (``application/x-protobuf``) or OTLP/JSON (``application/json``), decoded with
the ``opentelemetry-proto`` messages and ``google.protobuf.json_format``. OTLP/JSON differs from protobuf's
JSON mapping in one way that matters here: trace and span ids are hex, not base64. They are never read, so they
are removed before decoding instead of being converted. Unknown fields are ignored, as OTLP/JSON requires.

Answers: an ``Export*ServiceResponse`` on success (with ``partial_success`` when some items were refused), a
``google.rpc.Status`` on failure, in the request's encoding.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from starlette.responses import Response

from consentry_server.ingest.accept import check_content_type
from consentry_server.ingest.validate import Rejection, bounded_text

__all__ = ["JSON", "PROTOBUF", "decode_request", "encode_message", "request_media", "status_response"]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: Deepest nesting decoded (OTLP's own messages nest about ten deep; the rest is attribute values in values).
_MAX_DEPTH = 64
#: Fields that hold trace and span ids (spans, links, exemplars), in both of JSON's spellings.
_IDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
#: gRPC status codes for the HTTP statuses this receiver answers with.
_GRPC_CODES = {400: 3, 404: 5, 413: 8, 415: 3, 429: 8, 503: 14}

_M = TypeVar("_M", bound=Message)


def _status_class() -> Callable[..., Message]:
    """``google.rpc.Status`` (code, message; no details), in a pool of its own so it clashes with no other copy.

    Typed as a callable taking the fields as keywords: protobuf's stubs (types-protobuf 7.35) no longer declare
    the keyword constructor on ``Message`` itself, only on generated classes, and this one is built at run time.
    """
    field = descriptor_pb2.FieldDescriptorProto
    status = descriptor_pb2.DescriptorProto(
        name="Status",
        field=[
            field(name="code", number=1, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL, json_name="code"),
            field(name="message", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL, json_name="message"),
        ],
    )
    document = descriptor_pb2.FileDescriptorProto(
        name="consentry_server/ingest/otlp/status.proto", package="google.rpc", syntax="proto3", message_type=[status]
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(document)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


_STATUS = _status_class()


def request_media(content_type: str | None) -> str:
    """The encoding of a request (:data:`PROTOBUF` or :data:`JSON`); 415 for anything else."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == PROTOBUF:
        return PROTOBUF
    if media == JSON:
        check_content_type(content_type)  # a charset other than UTF-8 is refused
        return JSON
    raise Rejection(415, "unsupported_media_type", "", f"Content-Type must be {PROTOBUF} or {JSON}, got {media!r}")


def _without_ids(document: object) -> object:
    """``document`` with every trace and span id removed (in place; without recursion, whatever the depth)."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in _IDS.intersection(node):
                del node[key]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return document


def _object(document: object) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise TypeError("an export request is a JSON object")
    return document


@functools.cache
def _fields(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """The message-typed fields of ``descriptor``, by both of their JSON spellings."""
    fields = {}
    for field in descriptor.fields:
        if field.message_type is not None and not field.message_type.full_name.startswith("google.protobuf."):
            fields[field.name] = fields[field.json_name] = field
    return fields


def _check_messages(document: dict[str, Any], descriptor: Any) -> None:  # noqa: ANN401 - the C or Python class
    """Refuse a value that is not a JSON object where a message is expected (without recursion).

    ``json_format`` reads any iterable as a message: a list item that is a string or an array (``"x"``,
    ``[]``) would otherwise become an empty message, and an export of nothing but those would be answered 200.
    """
    stack: list[tuple[dict[str, Any], Any, str]] = [(document, descriptor, "")]
    while stack:
        node, node_descriptor, path = stack.pop()
        fields = _fields(node_descriptor)
        for key, value in node.items():
            field = fields.get(key)
            if field is None or value is None:
                continue  # not a message (json_format checks it), unknown (ignored), or absent
            repeated = _repeated(field) and isinstance(value, list)
            for index, item in enumerate(value if repeated else [value]):
                where = f"{path}{key}[{index}]" if repeated else f"{path}{key}"
                if not isinstance(item, dict):
                    raise TypeError(f"{where} must be an object, not {type(item).__name__}")
                stack.append((item, field.message_type, where + "."))


def _repeated(field: FieldDescriptor) -> bool:
    try:
        return field.is_repeated
    except AttributeError:  # protobuf before 5.29 has only the label (which 7 removed)
        return bool(field.label == FieldDescriptor.LABEL_REPEATED)  # type: ignore[attr-defined]


def decode_request(data: bytes, media: str, message: _M) -> _M:
    """Decode ``data`` into ``message`` (an empty request message); 400 ``invalid_otlp`` if it is not one."""
    try:
        if media == PROTOBUF:
            message.ParseFromString(data)
        else:
            document = _without_ids(json.loads(data.decode("utf-8")))
            checked = _object(document)
            _check_messages(checked, message.DESCRIPTOR)
            json_format.ParseDict(checked, message, ignore_unknown_fields=True, max_recursion_depth=_MAX_DEPTH)
    except (DecodeError, json_format.ParseError, ValueError, RecursionError, TypeError) as error:
        what = "protobuf" if media == PROTOBUF else "OTLP/JSON"
        raise Rejection(400, "invalid_otlp", "", f"the body is not a valid {what} export request: {error}") from None
    return message


def encode_message(message: Message, media: str) -> bytes:
    """``message`` in the encoding ``media``."""
    if media == PROTOBUF:
        return message.SerializeToString()
    return json_format.MessageToJson(message, indent=None).encode("utf-8")


def status_response(rejection: Rejection, media: str) -> Response:
    """The answer to a refused request: a ``google.rpc.Status`` with the reason, bounded, and ``Retry-After``."""
    status = _STATUS(code=_GRPC_CODES.get(rejection.status, 2), message=bounded_text(str(rejection), 500))
    headers = {"Retry-After": str(rejection.retry_after)} if rejection.retry_after else None
    media = media if media in (PROTOBUF, JSON) else JSON
    return Response(encode_message(status, media), status_code=rejection.status, headers=headers, media_type=media)
