"""From OTLP spans to command runs, as the client's command spans record them.

A span is one run of the command named by the span's name, on the UTC day the span ended (its start and its
end must both fall on days native ingest accepts). A name of several words is the command whose name joins
them with ``/``, as the client's ``cli_tool`` names nested subcommands and the dfx adapter dfx's commands:
StripePy's ``plot cm`` is the manifest's ``plot/cm``. Its duration goes into the client's duration buckets, its
status gives the exit status (0 for OK and UNSET, 1 for ERROR, or ``process.exit.code`` / ``exit.code`` when
the span carries one from 0 to 255), an ``exception`` event gives the exception's class name (never its
message or stack trace). Span attributes named like a parameter the manifest declares for the command
(``format``, or ``params.format`` as StripePy sends them) become its parameters, through the same allow-list
as native spans (:func:`consentry.wire.bins.command_key`): a boolean is ``"true"`` or ``"false"`` where the
manifest allows that value. Every other attribute is dropped and counted. Trace and span ids, links, other
events and the status message are never read.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from consentry.manifest import CommandSpec, Manifest
from consentry.wire.bins import command_key
from consentry.wire.schema import EXCEPTION_NAME
from consentry_server.ingest.catalog import Catalog
from consentry_server.ingest.otlp.resource import attribute_map, describe_resource
from consentry_server.ingest.otlp.tally import DayWindow, Refused, Tally

__all__ = ["EXIT_CODE_ATTRIBUTES", "command_name", "exception_type", "map_spans", "utc_day"]

#: Span attributes that carry the exit status of the run: the semantic conventions' and a shorter spelling.
EXIT_CODE_ATTRIBUTES = ("process.exit.code", "exit.code")
_PARAM_PREFIX = "params."
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_MAX_TYPE = 1000
#: Longest span name looked up: a declared command's name has at most 128 characters, a few words a few more.
_MAX_NAME = 1000
_NANOSECONDS = 1_000_000_000


def utc_day(unix_nano: int) -> datetime.date:
    """The UTC day of a time in nanoseconds since the Unix epoch (OTLP's timestamps)."""
    return datetime.date(1970, 1, 1) + datetime.timedelta(days=unix_nano // (86_400 * _NANOSECONDS))


def exception_type(name: str) -> str:
    """The class name of an ``exception.type`` (``pkg.module.Error`` gives ``Error``); ``Other`` if it is no name."""
    if len(name) > _MAX_TYPE or not _DOTTED.fullmatch(name):
        return "Other"  # not a (qualified) class name: perhaps a message, which is never kept in part either
    name = name.rsplit(".", 1)[-1]
    return name if EXCEPTION_NAME.regex.fullmatch(name) else "Other"


def _scalar(value: AnyValue) -> object:
    """A span attribute's value as the client's allow-list takes it; arrays, maps and bytes mean "given"."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(value, kind)
    return value  # no scalar: only "given", even where "true" is an allowed value


def command_name(span_name: str) -> str | None:
    """The manifest's name of the command a span names: its words joined by ``/`` (``plot cm`` is ``plot/cm``)."""
    if len(span_name) > _MAX_NAME:
        return None
    return "/".join(span_name.split()) or None


def _exit_code(value: AnyValue) -> int | None:
    if value.WhichOneof("value") == "int_value" and 0 <= value.int_value <= 255:  # noqa: PLR2004
        return value.int_value
    return None


def _parameters(span: Span, spec: CommandSpec) -> tuple[dict[str, object], int | None, int]:
    """The declared parameters among the span's attributes, its exit code attribute, and how many were dropped."""
    params: dict[str, object] = {}
    exit_code = None
    dropped = 0
    for key, value in attribute_map(span.attributes).items():
        name = key.removeprefix(_PARAM_PREFIX)
        if name in spec.params and name not in params:
            params[name] = _scalar(value)
        elif key in EXIT_CODE_ATTRIBUTES and exit_code is None and (code := _exit_code(value)) is not None:
            exit_code = code
        else:
            dropped += 1
    return params, exit_code, dropped


def _exception(span: Span) -> str | None:
    found = None
    for event in span.events:
        if event.name == "exception":
            value = attribute_map(event.attributes).get("exception.type")
            if value is not None and value.WhichOneof("value") == "string_value":
                found = exception_type(value.string_value)
    return found


def _run(span: Span, manifest: Manifest, window: DayWindow) -> tuple[datetime.date, str, int]:
    """``(day, stored key, attributes dropped)`` of one span; :class:`Refused` if it cannot be a command run."""
    if not span.name.strip():
        raise Refused("span_without_name", "a span has no name")
    name = command_name(span.name)
    spec = manifest.commands.get(name) if name is not None else None
    if spec is None:
        named = "" if name in (None, span.name) else f" (span {span.name!r})"
        raise Refused("command_not_in_manifest", f"{manifest.name!r} declares no command {name or span.name!r}{named}")
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if not start or not end or end < start:
        raise Refused("bad_timestamps", "a span needs a start and an end time, the end not before the start")
    window.check(utc_day(start), "a span's start")  # a run of decades is no run
    day = window.check(utc_day(end), "a span")
    params, exit_code, dropped = _parameters(span, spec)
    if exit_code is None:
        exit_code = 1 if span.status.code == Status.STATUS_CODE_ERROR else 0
    key = command_key(
        spec, params, duration=(end - start) / _NANOSECONDS, exit_code=exit_code, exception=_exception(span)
    )
    return day, key, dropped


def map_spans(
    request: ExportTraceServiceRequest,
    lookup: Callable[[str], Catalog | None],
    window: DayWindow,
    tally: Tally,
) -> None:
    """Add the spans of ``request`` to ``tally``: each one a command run of its source, or refused with a reason."""
    for resource_spans in request.resource_spans:
        spans = [span for scope_spans in resource_spans.scope_spans for span in scope_spans.spans]
        source = describe_resource(resource_spans.resource, lookup)
        if isinstance(source, str):
            tally.refuse("unknown_service", len(spans), f"service {source!r} is not registered on this server")
            continue
        group = tally.group(source)
        for span in spans:
            try:
                day, key, dropped = _run(span, source.catalog.latest, window)
            except Refused as refused:
                tally.refuse(refused.reason, 1, refused.detail)
                continue
            group.add_command(day, key)
            tally.dropped_attributes += dropped
