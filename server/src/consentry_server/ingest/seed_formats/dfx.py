"""dfx (the Internet Computer SDK) command records: ``POST /dfx/v1/commands``.

dfx (``dfinity/sdk``, ``src/dfx/src/lib/telemetry.rs``) appends one JSON record per command run to a log. Its
publisher renames the log into a batch, re-serialises each line with the batch's random id (a UUID) and the line's
number added (``add_batch_and_sequence``; the keys come out in alphabetical order), joins the lines with newlines
(none after the last) and posts them with no content type::

    {"batch":"<uuid>","command":"canister call","execution_time_ms":1840,"exit_code":0,...,
     "parameters":[{"name":"output","source":"command-line","value":"idl"}],"platform":"linux",...,
     "sequence":0,"tool":"dfx","version":"0.25.0","week":"2026-10"}

It retries a batch that is not answered 2xx (any 4xx too) with backoff for up to 180 s, then keeps it and sends
no other batch in that round (it stops at the first batch that fails); a later run of dfx tries again. So, as for
:mod:`.slicer`: what is needed to read the request as batches of records is its structure, and a fault there
refuses the whole request; any other fault is one record's, which is dropped and counted (:mod:`.endpoint`), and
the rest is stored. Refused whole (:func:`parse_records`, :func:`to_reports`): a body that is not UTF-8 or holds no
record, too many records or too long a line, a line that is not a strict JSON object (cut off, a fraction, ``NaN``,
a duplicate key, too deep) or lacks a valid ``batch``, ``sequence`` or ``tool``, two different records under one
batch and sequence number, a batch with a gap, a ``tool`` that is not registered. Dropped (:func:`read_record`,
:func:`to_reports`): a record whose other fields are missing or invalid (``invalid_record``), whose command the
manifest does not declare (``command_not_in_manifest``), or whose day native ingest would refuse
(``day_in_future``, ``day_too_old``).

The mapping onto native reports:

- ``tool`` names the registered application; ``version`` is its version;
- ``command`` is a command of its manifest, its words joined by ``/`` (``canister call`` is ``canister/call``);
- ``parameters``: a parameter the manifest does not declare is left out of the record (``param_not_in_manifest``);
  a declared one is reported with its value when the manifest allows that value, else as given (dfx sends
  ``null`` for the values it hides; a value sent that the manifest does not allow is ``param_value_not_allowed``);
  declared parameters not sent are reported as not given. These count parameters, and the record is kept;
- ``execution_time_ms`` becomes the client's duration bucket; ``null`` (dfx's ``Option``: no duration measured)
  or absent is the bucket ``unknown``; ``exit_code`` is kept (0-255; others as 255);
- ``platform`` becomes the binned ``os`` system field, where the command's level collects it;
- ``week``: dfx writes the ISO year and week of the run (local time, ``YYYY-WW``) and no day, so its runs are
  stored on the Monday of their week (``YYYY-Www`` is taken too); a date ``YYYY-MM-DD``, from a sender that knows
  the day, is stored on that day; a record whose ``week`` is null or absent (dfx writes null for a run that
  failed before it read its command line) is put in the week it arrives;
- every other field (replica errors, identity, network, canisters, the parameters' ``source``) is discarded.

Each batch (with tool and version) becomes one reporter, whose id is a keyed hash of the batch id
(:mod:`.batch_key`), and one native report per level and run of up to 31 days. A retried batch therefore
makes the same reports, which native ingest stores once. A request must hold whole batches: the sequence
numbers of each batch present must run from 0 without gaps; a record sent twice in one request counts once.
"""

from __future__ import annotations

import collections
import datetime
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from consentry.manifest import CommandSpec
from consentry.wire import Command, Report
from consentry.wire.bins import duration_bucket
from consentry.wire.schema import APP_NAME, UNKNOWN_DURATION, VERSION
from consentry_server.ingest.catalog import Catalog
from consentry_server.ingest.manifests import Registry
from consentry_server.ingest.routes import Ingest
from consentry_server.ingest.seed_formats.batch_key import batch_key_path, batch_reporter, load_batch_key
from consentry_server.ingest.seed_formats.endpoint import (
    DayWindow,
    Dropped,
    Drops,
    answer,
    chunks,
    decode_text,
    parse_json,
    read_upload,
    store_reports,
)
from consentry_server.ingest.validate import Rejection

__all__ = [
    "MAX_LINE_LENGTH",
    "MAX_RECORDS",
    "Line",
    "Mapped",
    "Record",
    "parse_records",
    "read_record",
    "record_day",
    "routes",
    "to_reports",
]

#: Longest record line, in characters (dfx's are a few hundred).
MAX_LINE_LENGTH = 64 * 1024
#: Most records one request may carry.
MAX_RECORDS = 20_000
_MAX_PARAMETERS = 256
_MAX_SEQUENCE = 10**9
_MAX_MILLISECONDS = 10**15
_TEXT = 128
_BATCH = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_WEEK = re.compile(r"^([0-9]{4})-[Ww]?([0-9]{1,2})$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
#: dfx's ``platform`` (Rust's ``std::env::consts::OS``, or ``wsl``) to the binned ``os`` field; others are "other".
_PLATFORMS = {
    "linux": "linux",
    "wsl": "linux",
    "macos": "macos",
    "darwin": "macos",
    "windows": "windows",
    "freebsd": "freebsd",
}
_ROUTE = "/dfx/v1/commands"

#: Reasons counted (per application, ``GET /admin/v1/stats``) for parameters and values the manifest does not
#: allow; the record itself is kept.
_PARAM_DROPPED = "param_not_in_manifest"
_VALUE_DROPPED = "param_value_not_allowed"


@dataclass(frozen=True)
class Line:
    """A record line as read: its index in the body, the tool, batch and sequence, and the whole record."""

    index: int
    tool: str
    batch: str
    sequence: int
    document: Mapping[str, object]

    @property
    def field(self) -> str:
        """Where it is, in refusals and drops: ``records[<index>]``."""
        return f"records[{self.index}]"


@dataclass(frozen=True)
class Record:
    """One command record, as far as Consentry reads it."""

    tool: str
    version: str
    command: str
    platform: str
    week: str | None
    parameters: tuple[tuple[str, str | None], ...]
    exit_code: int
    execution_time_ms: int | None
    batch: str
    sequence: int


def _refused(field: str, message: str) -> Rejection:
    return Rejection(400, "invalid_body", field, message)


def _invalid(field: str, message: str) -> Dropped:
    return Dropped("invalid_record", field, message)


def _text(record: Mapping[str, object], key: str, field: str, pattern: re.Pattern[str] | None = None) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= _TEXT or (pattern and not pattern.fullmatch(value)):
        raise _invalid(f"{field}.{key}", "is missing or not a valid string")
    return value


def _integer(record: Mapping[str, object], key: str, field: str, low: int, high: int) -> int:
    value = record.get(key)
    if type(value) is not int or not low <= value <= high:
        raise _invalid(f"{field}.{key}", f"must be a whole number from {low} to {high}")
    return value


def _parameters(value: object, field: str) -> tuple[tuple[str, str | None], ...]:
    if not isinstance(value, list):
        raise _invalid(field, "must be an array of {name, value, source}")
    if len(value) > _MAX_PARAMETERS:
        raise _invalid(field, f"at most {_MAX_PARAMETERS} parameters")
    out = []
    for index, parameter in enumerate(value):
        name = parameter.get("name") if isinstance(parameter, dict) else None
        given = parameter.get("value") if isinstance(parameter, dict) else None
        if not isinstance(name, str) or not 0 < len(name) <= _TEXT or not isinstance(given, (str, type(None))):
            raise _invalid(f"{field}[{index}]", "must be {name: string, value: string or null, source}")
        out.append((name, given))
    return tuple(out)


def _line(index: int, text: str) -> Line:
    """A line read as a record with a batch, a sequence number and a tool; refused (400) if it is not one."""
    field = f"records[{index}]"
    if len(text) > MAX_LINE_LENGTH:
        raise Rejection(400, "line_too_long", field, f"a record may be at most {MAX_LINE_LENGTH} characters")
    document = parse_json(text, code="invalid_body", field=field)
    if not isinstance(document, dict):
        raise _refused(field, "must be a JSON object")
    batch, sequence, tool = document.get("batch"), document.get("sequence"), document.get("tool")
    if not isinstance(batch, str) or not _BATCH.fullmatch(batch):
        raise _refused(f"{field}.batch", "is missing or not a batch id (1-128 letters, digits, . _ : -)")
    if type(sequence) is not int or not 0 <= sequence <= _MAX_SEQUENCE:
        raise _refused(f"{field}.sequence", f"must be a whole number from 0 to {_MAX_SEQUENCE}")
    if not isinstance(tool, str) or not 0 < len(tool) <= _TEXT:
        raise _refused(f"{field}.tool", "is missing or not a valid string")
    return Line(index, tool, batch, sequence, document)


def parse_records(text: str) -> list[Line]:
    """The record lines of a newline-delimited body, in order; each batch whole, duplicates dropped.

    Refused whole (400): no record, too many, a line that is not a JSON object with a batch id, a sequence number
    and a tool, two different records under one batch and sequence number, a batch with a gap.
    """
    lines = [(index, line) for index, line in enumerate(text.split("\n")) if line.strip()]
    if not lines:
        raise Rejection(400, "invalid_body", "", "the body holds no records")
    if len(lines) > MAX_RECORDS:
        raise Rejection(400, "too_many_records", "", f"a request may carry at most {MAX_RECORDS} records")
    records: dict[tuple[str, int], Line] = {}
    for index, text_line in lines:
        line = _line(index, text_line)
        key = (line.batch, line.sequence)
        if key in records and records[key].document != line.document:
            message = "another record of this batch has the same sequence number"
            raise Rejection(400, "conflicting_record", f"{line.field}.sequence", message)
        records.setdefault(key, line)
    sequences: dict[str, list[int]] = collections.defaultdict(list)
    for batch, sequence in records:
        sequences[batch].append(sequence)
    for batch, numbers in sequences.items():
        if sorted(numbers) != list(range(len(numbers))):
            first = min((records[batch, number] for number in numbers), key=lambda line: line.index)
            message = "a request must hold whole batches: sequence numbers from 0, without gaps"
            raise Rejection(400, "incomplete_batch", f"{first.field}.sequence", message)
    return sorted(records.values(), key=lambda line: line.index)


def read_record(line: Line) -> Record:
    """The fields of ``line``'s record that Consentry reads, or :class:`Dropped` (``invalid_record``)."""
    document, field = line.document, line.field
    week = document.get("week")
    if week is not None and not isinstance(week, str):
        raise _invalid(f"{field}.week", "must be an ISO week as YYYY-WW, or null")
    milliseconds = document.get("execution_time_ms")
    return Record(
        tool=line.tool,
        version=_text(document, "version", field, VERSION.regex),
        command=_text(document, "command", field),
        platform=_text(document, "platform", field),
        week=week,
        parameters=_parameters(document.get("parameters"), f"{field}.parameters"),
        exit_code=_integer(document, "exit_code", field, -(2**31), 2**31 - 1),
        execution_time_ms=None
        if milliseconds is None
        else _integer(document, "execution_time_ms", field, 0, _MAX_MILLISECONDS),
        batch=line.batch,
        sequence=line.sequence,
    )


def record_day(week: str | None, today: datetime.date) -> datetime.date:
    """The day a record is stored on; :class:`ValueError` if ``week`` is none of these.

    The Monday of its week ``YYYY-WW`` (or ``YYYY-Www``), the date itself if it is one (``YYYY-MM-DD``), the
    Monday of ``today``'s week if there is none.
    """
    if week is None:
        return today - datetime.timedelta(days=today.weekday())
    if match := _WEEK.fullmatch(week):
        try:
            return datetime.date.fromisocalendar(int(match[1]), int(match[2]), 1)
        except ValueError:
            raise ValueError(f"{week} is not an ISO week") from None
    if _DATE.fullmatch(week):
        try:
            return datetime.date.fromisoformat(week)
        except ValueError:
            raise ValueError(f"{week} is not a calendar date") from None
    raise ValueError("must be an ISO week as YYYY-WW")


@dataclass
class Mapped:
    """The native reports of a request, and what was dropped from it."""

    reports: list[Report]
    catalogs: dict[str, Catalog]
    drops: Drops = field(default_factory=Drops)


def _params(spec: CommandSpec, record: Record, drops: Drops, field: str) -> dict[str, str | bool]:
    """Every declared parameter: its value if the manifest allows it, else given (True) or not given (False)."""
    sent = dict(record.parameters)
    for name, value in sent.items():
        if name not in spec.params:
            message = f"{name[:64]!r} is not a parameter of {spec.name!r} in the manifest"
            drops.add(record.tool, Dropped(_PARAM_DROPPED, f"{field}.parameters", message))
        elif value is not None and value not in spec.params[name]:
            message = f"{value[:64]!r} is not an allowed value of {name!r}: stored as given"
            drops.add(record.tool, Dropped(_VALUE_DROPPED, f"{field}.parameters", message))
    params: dict[str, str | bool] = {}
    for name, allowed in spec.params.items():
        value = sent.get(name)
        params[name] = value if value is not None and value in allowed else name in sent
    return params


def _command_run(line: Line, catalog: Catalog, window: DayWindow) -> tuple[Record, CommandSpec, datetime.date]:
    """The record of ``line``, its command in the manifest and its day, or :class:`Dropped`."""
    record = read_record(line)
    spec = catalog.latest.commands.get("/".join(record.command.split()))
    if spec is None:
        message = f"{record.command[:64]!r} is not a command of {record.tool!r}'s manifest"
        raise Dropped("command_not_in_manifest", f"{line.field}.command", message)
    try:
        day = record_day(record.week, window.today)
    except ValueError as error:
        raise _invalid(f"{line.field}.week", str(error)) from None
    return record, spec, window.check(day, f"{line.field}.week")


_Group = tuple[str, str, str]  # tool, batch, version: one reporter
_Run = tuple[datetime.date, str, tuple[tuple[str, str | bool], ...], str, int]  # a Command's key without its count


def to_reports(
    lines: Sequence[Line],
    catalog_of: Callable[[str], Catalog | None],
    key: bytes,
    window: DayWindow,
) -> Mapped:
    """The native reports of ``lines``: one reporter per batch and version, one report per level and run of days.

    A record that is not valid, names a command the manifest does not declare, or falls on a day native ingest
    would refuse is dropped (into :attr:`Mapped.drops`); a tool that is not registered refuses the request.
    """
    mapped = Mapped([], {})
    runs: dict[tuple[_Group, str], collections.Counter[_Run]] = collections.defaultdict(collections.Counter)
    platforms: dict[tuple[_Group, str], str] = {}
    for line in lines:
        catalog = mapped.catalogs.get(line.tool)
        if catalog is None and APP_NAME.regex.fullmatch(line.tool):
            catalog = catalog_of(line.tool)
        if catalog is None:
            message = f"{line.tool[:64]!r} is not registered on this server"
            raise Rejection(400, "unknown_app", f"{line.field}.tool", message)
        mapped.catalogs[line.tool] = catalog
        try:
            record, spec, day = _command_run(line, catalog, window)
        except Dropped as dropped:
            mapped.drops.add(line.tool, dropped)
            continue
        exit_code = record.exit_code if 0 <= record.exit_code <= 255 else 255  # noqa: PLR2004 - exit statuses
        params = tuple(sorted(_params(spec, record, mapped.drops, line.field).items()))
        milliseconds = record.execution_time_ms
        duration = UNKNOWN_DURATION if milliseconds is None else duration_bucket(milliseconds / 1000)
        group = (record.tool, record.batch, record.version)
        runs[group, spec.level][day, spec.name, params, duration, exit_code] += 1
        platforms[group, spec.level] = _PLATFORMS.get(record.platform.lower(), "other")
    for (group, level), counted in runs.items():
        manifest = mapped.catalogs[group[0]].latest
        system = {"os": platforms[group, level]} if "os" in manifest.level(level).system else {}
        reporter = batch_reporter(key, *group)
        for days in chunks([run[0] for run in counted]):
            merged = tuple(
                Command(day=day, name=name, duration=duration, exit_code=exit_code, count=n, params=dict(params))
                for (day, name, params, duration, exit_code), n in counted.items()
                if day in days
            )
            mapped.reports.append(
                Report(
                    app=manifest.name,
                    app_version=group[2],
                    level=level,
                    consent_version=manifest.consent_version,
                    reporter=reporter,
                    first_report=False,
                    days=days,
                    system=system,
                    commands=merged,
                )
            )
    return mapped


@dataclass
class _DfxCommands:
    """``POST /dfx/v1/commands``: any content type or none, gzip or not."""

    ingest: Ingest
    registry: Registry
    _key: bytes | None = None

    def key(self) -> bytes:
        """The batch key, read (or made) on first use."""
        if self._key is None:
            try:
                self._key = load_batch_key(batch_key_path(self.ingest.settings))
            except OSError as error:
                message = f"the server cannot read its batch key ({error.strerror or error}); try again later"
                raise Rejection(503, "storage_unavailable", "", message, retry_after=60) from None
        return self._key

    async def endpoint(self, request: Request) -> JSONResponse:
        """Store a request's batches (less what is dropped), or refuse the whole request."""
        return await answer(self.ingest, _ROUTE, lambda received: self._upload(request, received))

    async def _upload(self, request: Request, received: list[int]) -> dict[str, object]:
        source = self.ingest.admit_source(request)
        data = await read_upload(request, self.ingest.settings, received)
        lines = parse_records(decode_text(data))
        window = DayWindow.of(self.ingest.settings)
        mapped = to_reports(lines, self.registry.get, self.key(), window)
        result = await store_reports(
            self.ingest,
            mapped.reports,
            mapped.catalogs,
            source=source,
            drops=mapped.drops,
            route=_ROUTE,
            received=received,
            today=window.today,
        )
        return {**result, "records": len(lines)}


def routes(ingest: Ingest, registry: Registry) -> list[Route]:
    """``POST /dfx/v1/commands``."""
    return [Route(_ROUTE, _DfxCommands(ingest, registry).endpoint, methods=["POST"])]
