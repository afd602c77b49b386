"""dfx (the Internet Computer SDK) command records: ``POST /dfx/v1/commands``.

dfx appends one JSON record per command run to a log, and its publisher sends a batch of them as newline-
delimited JSON, with the batch's random id and each record's line number added, with no content type, and
the whole batch again if the server does not answer 2xx (``src/dfx/src/lib/telemetry.rs``)::

    {"tool":"dfx","version":"0.25.0","command":"canister call","platform":"linux","week":"2026-10",
     "parameters":[{"name":"output","value":"idl","source":"command-line"}],"exit_code":0,
     "execution_time_ms":1840,"replica_error_call_site":null,...,"batch":"<uuid>","sequence":0}

The mapping onto native reports:

- ``tool`` names the registered application; ``version`` is its version;
- ``command`` is a command of its manifest, its words joined by ``/`` (``canister call`` is ``canister/call``);
- ``parameters``: a parameter the manifest does not declare is dropped; a declared one is reported with its
  value when the manifest allows that value, else as given (dfx sends ``null`` for values it hides); declared
  parameters not sent are reported as not given. Dropped parameters and values are counted for operators;
- ``execution_time_ms`` becomes the client's duration bucket; ``exit_code`` is kept (0-255; others as 255);
- ``platform`` becomes the binned ``os`` system field, where the command's level collects it;
- ``week`` (ISO year and week, ``YYYY-WW``; ``YYYY-Www`` and a date ``YYYY-MM-DD`` are taken too) becomes the
  Monday of that week; a record without one is put in the week it arrives;
- every other field (replica errors, identity, network, canisters, the parameters' ``source``) is discarded.

Each batch (with tool and version) becomes one reporter, whose id is a keyed hash of the batch id
(:mod:`.batch_key`), and one native report per level and run of up to 31 weeks. A retried batch therefore
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
from consentry.spans import duration_bucket
from consentry.wire import Command, Report
from consentry.wire.schema import APP_NAME, VERSION
from consentry_server.acceptance import utc_today
from consentry_server.catalog import Catalog
from consentry_server.ingest import Ingest
from consentry_server.registry import Registry
from consentry_server.seed_formats.batch_key import batch_key_path, batch_reporter, load_batch_key
from consentry_server.seed_formats.endpoint import (
    answer,
    chunks,
    decode_text,
    parse_json,
    read_upload,
    store_reports,
)
from consentry_server.validate import Rejection

__all__ = ["MAX_LINE_LENGTH", "MAX_RECORDS", "Mapped", "Record", "parse_records", "routes", "to_reports", "week_start"]

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

#: Reasons counted in the drop counter (``GET /admin/v1/stats``) for what the manifest does not allow.
PARAM_DROPPED = "dfx_param_not_in_manifest"
VALUE_DROPPED = "dfx_param_value_not_allowed"


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
    execution_time_ms: int
    batch: str
    sequence: int


def _invalid(field: str, message: str) -> Rejection:
    return Rejection(400, "invalid_record", field, message)


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


def _record(document: object, field: str) -> Record:
    if not isinstance(document, dict):
        raise _invalid(field, "must be a JSON object")
    week = document.get("week")
    if week is not None and not isinstance(week, str):
        raise _invalid(f"{field}.week", "must be an ISO week as YYYY-WW, or null")
    return Record(
        tool=_text(document, "tool", field),
        version=_text(document, "version", field, VERSION.regex),
        command=_text(document, "command", field),
        platform=_text(document, "platform", field),
        week=week,
        parameters=_parameters(document.get("parameters"), f"{field}.parameters"),
        exit_code=_integer(document, "exit_code", field, -(2**31), 2**31 - 1),
        execution_time_ms=_integer(document, "execution_time_ms", field, 0, _MAX_MILLISECONDS),
        batch=_text(document, "batch", field, _BATCH),
        sequence=_integer(document, "sequence", field, 0, _MAX_SEQUENCE),
    )


def parse_records(text: str) -> list[tuple[int, Record]]:
    """The records of a newline-delimited body, with their indexes; each batch whole, duplicates dropped."""
    lines = [(index, line) for index, line in enumerate(text.split("\n")) if line.strip()]
    if not lines:
        raise Rejection(400, "invalid_body", "", "the body holds no records")
    if len(lines) > MAX_RECORDS:
        raise Rejection(400, "too_many_records", "", f"a request may carry at most {MAX_RECORDS} records")
    records: dict[tuple[str, int], tuple[int, Record]] = {}
    for index, line in lines:
        field = f"records[{index}]"
        if len(line) > MAX_LINE_LENGTH:
            raise Rejection(400, "line_too_long", field, f"a record may be at most {MAX_LINE_LENGTH} characters")
        record = _record(parse_json(line, code="invalid_record", field=field), field)
        key = (record.batch, record.sequence)
        if key in records and records[key][1] != record:
            message = "another record of this batch has the same sequence number"
            raise Rejection(400, "conflicting_record", f"{field}.sequence", message)
        records.setdefault(key, (index, record))
    sequences: dict[str, list[int]] = collections.defaultdict(list)
    for batch, sequence in records:
        sequences[batch].append(sequence)
    for batch, numbers in sequences.items():
        if sorted(numbers) != list(range(len(numbers))):
            index = min(records[batch, number][0] for number in numbers)
            message = "a request must hold whole batches: sequence numbers from 0, without gaps"
            raise Rejection(400, "incomplete_batch", f"records[{index}].sequence", message)
    return sorted(records.values(), key=lambda item: item[0])


def week_start(week: str | None, today: datetime.date) -> datetime.date:
    """The Monday of ``week`` (``YYYY-WW``, ``YYYY-Www``, or a date in it); of ``today``'s week if ``None``."""
    if week is None:
        day = today
    elif match := _WEEK.fullmatch(week):
        try:
            return datetime.date.fromisocalendar(int(match[1]), int(match[2]), 1)
        except ValueError:
            raise ValueError(f"{week} is not an ISO week") from None
    elif _DATE.fullmatch(week):
        day = datetime.date.fromisoformat(week)
    else:
        raise ValueError("must be an ISO week as YYYY-WW")
    return day - datetime.timedelta(days=day.weekday())


@dataclass
class Mapped:
    """The native reports of a request, and what the manifests made it drop."""

    reports: list[Report]
    catalogs: dict[str, Catalog]
    drops: collections.Counter[str] = field(default_factory=collections.Counter)


def _params(spec: CommandSpec, record: Record, drops: collections.Counter[str]) -> dict[str, str | bool]:
    """Every declared parameter: its value if the manifest allows it, else given (True) or not given (False)."""
    sent = dict(record.parameters)
    for name, value in sent.items():
        if name not in spec.params:
            drops[PARAM_DROPPED] += 1
        elif value is not None and value not in spec.params[name]:
            drops[VALUE_DROPPED] += 1
    params: dict[str, str | bool] = {}
    for name, allowed in spec.params.items():
        value = sent.get(name)
        params[name] = value if value is not None and value in allowed else name in sent
    return params


Group = tuple[str, str, str]  # tool, batch, version: one reporter
Run = tuple[datetime.date, str, tuple[tuple[str, str | bool], ...], str, int]  # a Command's key without its count


def to_reports(
    records: Sequence[tuple[int, Record]],
    catalog_of: Callable[[str], Catalog | None],
    key: bytes,
    today: datetime.date,
) -> Mapped:
    """The native reports of ``records``: one reporter per batch and version, one report per level and run of weeks."""
    mapped = Mapped([], {})
    runs: dict[tuple[Group, str], collections.Counter[Run]] = collections.defaultdict(collections.Counter)
    platforms: dict[tuple[Group, str], str] = {}
    for index, record in records:
        field = f"records[{index}]"
        catalog = mapped.catalogs.get(record.tool)
        if catalog is None and APP_NAME.regex.fullmatch(record.tool):
            catalog = catalog_of(record.tool)
        if catalog is None:
            message = f"{record.tool[:64]!r} is not registered on this server"
            raise Rejection(400, "unknown_app", f"{field}.tool", message)
        mapped.catalogs[record.tool] = catalog
        name = "/".join(record.command.split())
        spec = catalog.latest.commands.get(name)
        if spec is None:
            message = f"{record.command[:64]!r} is not a command of {record.tool!r}'s manifest"
            raise Rejection(400, "command_not_in_manifest", f"{field}.command", message)
        try:
            day = week_start(record.week, today)
        except ValueError as error:
            raise _invalid(f"{field}.week", str(error)) from None
        exit_code = record.exit_code if 0 <= record.exit_code <= 255 else 255  # noqa: PLR2004 - exit statuses
        params = tuple(sorted(_params(spec, record, mapped.drops).items()))
        duration = duration_bucket(record.execution_time_ms / 1000)
        group = (record.tool, record.batch, record.version)
        runs[group, spec.level][day, name, params, duration, exit_code] += 1
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
class DfxCommands:
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
        """Store a request's batches, or refuse the whole request."""
        return await answer(self.ingest, _ROUTE, lambda received: self._upload(request, received))

    async def _upload(self, request: Request, received: list[int]) -> dict[str, object]:
        source = self.ingest.admit_source(request)
        data = await read_upload(request, self.ingest.settings, received)
        records = parse_records(decode_text(data))
        mapped = to_reports(records, self.registry.get, self.key(), utc_today())
        result = await store_reports(self.ingest, mapped.reports, mapped.catalogs, source=source)
        for reason, n in mapped.drops.items():
            self.ingest.drops.add(reason, n)
        return {**result, "records": len(records)}


def routes(ingest: Ingest, registry: Registry) -> list[Route]:
    """``POST /dfx/v1/commands``."""
    return [Route(_ROUTE, DfxCommands(ingest, registry).endpoint, methods=["POST"])]
