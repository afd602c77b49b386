"""3D Slicer's Telemetry extension: ``POST /telemetry`` and ``POST /telemetry/{app}``.

The extension (``Slicer/SlicerTelemetry``, ``Telemetry/Telemetry.py``) keeps one CSV row per (component, event,
day) and uploads the rows as they are, read back with :class:`csv.DictReader`::

    [{"component": "SegmentEditor", "event": "effect/threshold", "day": "2026-03-02", "times": "3"}, ...]

``times`` is therefore a string (a number is taken too). The body does not name the application, and the
extension posts to a fixed URL ending in ``/telemetry``: that route stores into the application of the
``slicer_app`` setting; ``/telemetry/{app}`` names it in the path.

A row maps onto the application's manifest as ``logUsageEvent(component, event)`` does: the event
``component/event`` of the application (``SegmentEditor/effect/threshold``), else, when ``component`` is a
registered extension (plugin) of the application, that extension's own event ``event``. Repeated rows of one
(component, event, day) are summed. The upload becomes one native report per level and run of up to 31 days,
all with one fresh random reporter id: each upload counts as one reporter on each of its days. The extension
sends no application or extension version; both are reported as ``other``.
"""

from __future__ import annotations

import collections
import datetime
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from consentry.wire import Plugin, Report
from consentry.wire.schema import APP_NAME, MAX_COUNT, OTHER
from consentry_server.acceptance import check_content_type
from consentry_server.catalog import Catalog
from consentry_server.ingest import Ingest
from consentry_server.registry import Registry
from consentry_server.seed_formats.endpoint import answer, chunks, decode_text, parse_json, read_upload, store_reports
from consentry_server.validate import Rejection

__all__ = ["KEYS", "MAX_ENTRIES", "Entry", "parse_entries", "routes", "to_reports"]

#: The keys of every row, and the only ones.
KEYS = ("component", "event", "day", "times")
#: Most rows one upload may carry (a year of 130 events a day).
MAX_ENTRIES = 50_000
_NAME_LENGTH = 128
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TIMES = re.compile(r"^[0-9]{1,10}$")
_ROUTE = "/telemetry"


@dataclass(frozen=True)
class Entry:
    """One row of an upload: how many ``times`` ``component`` logged ``event`` on ``day``."""

    component: str
    event: str
    day: datetime.date
    times: int


def _invalid(field: str, message: str) -> Rejection:
    return Rejection(400, "invalid_entry", field, message)


def _name(row: Mapping[str, object], key: str, field: str) -> str:
    value = row[key]
    if not isinstance(value, str) or not value or len(value) > _NAME_LENGTH:
        raise _invalid(f"{field}.{key}", f"must be a non-empty string of at most {_NAME_LENGTH} characters")
    return value


def _day(value: object, field: str) -> datetime.date:
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise _invalid(field, "must be a day as YYYY-MM-DD")
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise _invalid(field, f"{value} is not a calendar date") from None


def _times(value: object, field: str) -> int:
    """A count from a string of digits (as the CSV holds it) or an integer: 0 to the wire format's largest."""
    if isinstance(value, str) and _TIMES.fullmatch(value):
        value = int(value)
    if type(value) is not int:
        raise _invalid(field, "must be a whole number, as a number or a string of digits")
    if not 0 <= value <= MAX_COUNT:
        raise _invalid(field, f"must be between 0 and {MAX_COUNT}")
    return value


def parse_entries(document: object) -> list[Entry]:
    """The rows of a parsed upload, each checked for shape (not yet against a manifest)."""
    if not isinstance(document, list):
        raise Rejection(400, "invalid_body", "", "the body must be a JSON array of {component, event, day, times}")
    if len(document) > MAX_ENTRIES:
        raise Rejection(400, "too_many_entries", "", f"an upload may carry at most {MAX_ENTRIES} rows")
    entries = []
    for index, row in enumerate(document):
        field = f"[{index}]"
        if not isinstance(row, dict):
            raise _invalid(field, "must be an object {component, event, day, times}")
        missing = [key for key in KEYS if key not in row]
        if missing:
            raise _invalid(f"{field}.{missing[0]}", "is missing")
        unknown = [key for key in row if key not in KEYS]
        if unknown:
            raise _invalid(f"{field}.{unknown[0][:64]}", "is not a field of the Telemetry extension's rows")
        entries.append(
            Entry(
                component=_name(row, "component", field),
                event=_name(row, "event", field),
                day=_day(row["day"], f"{field}.day"),
                times=_times(row["times"], f"{field}.times"),
            )
        )
    return entries


Target = tuple[str, str | None, str]  # level, plugin (None: the application's own event), event name


def _target(entry: Entry, field: str, catalog: Catalog) -> Target:
    """Where ``logUsageEvent(component, event)`` lands in the manifests, or 400 if it is not declared."""
    manifest = catalog.latest
    name = f"{entry.component}/{entry.event}"
    spec = manifest.events.get(name)
    if spec is not None and spec.component in (None, entry.component):
        return spec.level, None, name
    plugin = catalog.plugins.get(entry.component)
    if plugin is not None:
        plugin_event = plugin.events.get(entry.event)
        if plugin_event is None:
            message = f"extension {entry.component!r} declares no event {entry.event!r}"
            raise Rejection(400, "event_not_in_manifest", f"{field}.event", message)
        return plugin_event.level, plugin.name, entry.event
    components = {spec.component or spec.name.partition("/")[0] for spec in manifest.events.values()}
    if entry.component in components:
        message = f"{catalog.app!r} declares no event {name!r}"
        raise Rejection(400, "event_not_in_manifest", f"{field}.event", message)
    message = f"{entry.component!r} is neither a component of {catalog.app!r} nor a registered extension of it"
    raise Rejection(400, "component_not_in_manifest", f"{field}.component", message)


def to_reports(entries: Sequence[Entry], catalog: Catalog, reporter: str) -> list[Report]:
    """The native reports of an upload: one per level and run of up to 31 days, all from ``reporter``.

    Rows of the same (component, event, day) are summed; rows of zero times are left out, as native reports
    leave out zero counts.
    """
    totals: dict[Target, collections.Counter[datetime.date]] = collections.defaultdict(collections.Counter)
    for index, entry in enumerate(entries):
        target = _target(entry, f"[{index}]", catalog)
        totals[target][entry.day] += entry.times
        if totals[target][entry.day] > MAX_COUNT:
            raise _invalid(f"[{index}].times", f"the rows of this event and day add up to more than {MAX_COUNT}")
    manifest = catalog.latest
    reports = []
    for level in manifest.level_names:
        mine = {target: days for target, days in totals.items() if target[0] == level}
        used = [day for days in mine.values() for day, n in days.items() if n]
        for run in chunks(used):
            counts: dict[datetime.date, dict[str, int]] = {}
            plugin_counts: dict[str, dict[datetime.date, dict[str, int]]] = {}
            for (_, plugin, event), days in mine.items():
                for day in run:
                    if days[day]:
                        into = counts if plugin is None else plugin_counts.setdefault(plugin, {})
                        into.setdefault(day, {})[event] = days[day]
            plugins = tuple(Plugin(name, OTHER, plugin_counts[name]) for name in sorted(plugin_counts))
            report = Report(
                app=manifest.name,
                app_version=OTHER,
                level=level,
                consent_version=manifest.consent_version,
                reporter=reporter,
                first_report=False,
                days=run,
                counts=counts,
                plugins=plugins,
            )
            reports.append(report)
    return reports


@dataclass
class SlicerTelemetry:
    """The two routes of the Telemetry extension's uploads."""

    ingest: Ingest
    registry: Registry

    async def default(self, request: Request) -> JSONResponse:
        """``POST /telemetry``: into the application of the ``slicer_app`` setting."""
        app = self.ingest.settings.slicer_app
        return await answer(self.ingest, _ROUTE, lambda received: self._upload(request, app, received))

    async def named(self, request: Request) -> JSONResponse:
        """``POST /telemetry/{app}``."""
        app = request.path_params["app"]
        return await answer(self.ingest, _ROUTE, lambda received: self._upload(request, app, received))

    async def _upload(self, request: Request, app: str | None, received: list[int]) -> dict[str, object]:
        source = self.ingest.admit_source(request)
        if app is None:
            message = "no default application is configured (slicer_app); post to /telemetry/{app}"
            raise Rejection(404, "no_default_app", "", message)
        catalog = self.registry.get(app) if APP_NAME.regex.fullmatch(app) else None
        if catalog is None:
            raise Rejection(404, "unknown_app", "app", f"{app[:64]!r} is not registered on this server")
        content_type = request.headers.get("content-type")
        if content_type is not None:  # the extension always sends application/json; others may send none
            check_content_type(content_type)
        data = await read_upload(request, self.ingest.settings, received)
        entries = parse_entries(parse_json(decode_text(data), code="invalid_body", field=""))
        reports = to_reports(entries, catalog, secrets.token_hex(16))
        return await store_reports(self.ingest, reports, {app: catalog}, source=source)


def routes(ingest: Ingest, registry: Registry) -> list[Route]:
    """``POST /telemetry`` and ``POST /telemetry/{app}``."""
    handler = SlicerTelemetry(ingest, registry)
    return [
        Route(_ROUTE, handler.default, methods=["POST"]),
        Route(_ROUTE + "/{app}", handler.named, methods=["POST"]),
    ]
