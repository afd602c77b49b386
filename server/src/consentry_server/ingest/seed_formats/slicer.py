"""3D Slicer's Telemetry extension: ``POST /telemetry`` and ``GET /telemetry`` (and ``/telemetry/{app}``).

The extension (``Slicer/_SlicerTelemetry``, ``Telemetry/Telemetry.py``) keeps one CSV row per (component, event,
day) and uploads the rows as they are, read back with :class:`csv.DictReader`::

    [{"component": "SegmentEditor", "event": "effect/threshold", "day": "2026-03-02", "times": "3"}, ...]

``times`` is therefore a string (a number is taken too). It clears its file only once an upload is answered
without error (Qt) or with 200 (``requests``), else sends the same rows again with the next week's. The body does
not name the application, and the extension posts to one URL (its ``TelemetrySendUrl`` setting, by default one
ending in ``/telemetry``): that route stores into the application of the ``slicer_app`` setting;
``/telemetry/{app}`` names it in the path.

The 3D Slicer thread proposes a query-string form too (post #61, one request per collection period)::

    GET /telemetry?app=Slicer&app_version=5.6.2&collection_start_date=20240402&collection_end_date=20240415
        &app_startup=28&module_DICOM_activate=12&extension_LungCTAnalyzer_AISegmentation=18

Every parameter but the four named ones is a counter ``<component>_<event>`` (after a ``module_`` or
``extension_`` prefix), counted on ``collection_end_date``; ``app`` names the application (compared without
case) and ``app_version`` is the report's application version. The query is read strictly
(:func:`query_pairs`): each parameter ``name=value``, both non-empty, percent-encoded UTF-8, each named once,
at most :data:`MAX_QUERY_BYTES`; anything else is refused whole, as a malformed body is.

A row maps onto the application's manifest as ``logUsageEvent(component, event)`` does: the event
``component/event`` of the application (``SegmentEditor/effect/threshold``), else, when ``component`` is a
registered extension (plugin) of the application, that extension's own event ``event``. Repeated rows of one
(component, event, day) are summed. A malformed upload is refused whole; a row that the manifest does not declare,
that is not valid, or whose day native ingest would refuse is dropped and counted (:mod:`.endpoint`). The upload
becomes one native report per level and run of up to 31 days, all with one fresh random reporter id: each
upload counts as one reporter on each of its days. The POST rows carry no version (nor does the extension's
URL or any header it sets): the application's and each extension's versions are ``other``; the query-string
form's ``app_version`` is the application's version, and its extensions' are ``other``.

Browsers mark the requests a web page makes them send (``Sec-Fetch-Site``): one marked as coming from another
site is refused (403 ``cross_site_request``), so that no page can have its visitors' browsers send counts. The
extension (Qt or ``requests``) sends no such header.
"""

from __future__ import annotations

import collections
import datetime
import re
import secrets
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consentry.wire import Plugin, Report
from consentry.wire.schema import APP_NAME, MAX_COUNT, OTHER, VERSION
from consentry_server.ingest.accept import check_content_type
from consentry_server.ingest.catalog import Catalog
from consentry_server.ingest.manifests import Registry
from consentry_server.ingest.routes import Ingest, Source
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
    "KEYS",
    "MAX_ENTRIES",
    "MAX_QUERY_BYTES",
    "QUERY_KEYS",
    "Entry",
    "parse_entries",
    "parse_query",
    "query_pairs",
    "routes",
    "to_reports",
]

#: The keys of every row, and the only ones.
KEYS = ("component", "event", "day", "times")
#: The parameters of the query-string form that are not counters.
QUERY_KEYS = ("app", "app_version", "collection_start_date", "collection_end_date")
#: Most rows one upload may carry (a year of 130 events a day).
MAX_ENTRIES = 50_000
#: Longest query string of the query-string form, in bytes as sent (414 above): twice the request line that nginx,
#: which the thread proposes in front of the collector, accepts by default; a few hundred counters.
MAX_QUERY_BYTES = 16 * 1024
_NAME_LENGTH = 128
_DAY = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
_COMPACT_DAY = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})$")
_TIMES = re.compile(r"^[0-9]{1,10}$")
_PREFIXES = ("module_", "extension_")
_QUERY_TEXT = re.compile(rb"^[!-~]*$")  # printable ASCII: a URL's query carries anything else percent-encoded
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_ROUTE = "/telemetry"
_BROWSER_SITES = ("same-origin", "none")  # Sec-Fetch-Site values of requests a page of another site did not make


@dataclass(frozen=True)
class Entry:
    """One row of an upload: how many ``times`` ``component`` logged ``event`` on ``day``."""

    component: str
    event: str
    day: datetime.date
    times: int


def _invalid(field: str, message: str) -> Dropped:
    return Dropped("invalid_entry", field, message)


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _NAME_LENGTH:
        raise _invalid(field, f"must be a non-empty string of at most {_NAME_LENGTH} characters")
    return value


def _date(value: object, *, compact: bool = False) -> datetime.date:
    """A day written ``YYYY-MM-DD`` (or ``YYYYMMDD`` if ``compact``); :class:`ValueError` otherwise."""
    match = None
    if isinstance(value, str):
        match = _DAY.fullmatch(value) or (_COMPACT_DAY.fullmatch(value) if compact else None)
    if match is None:
        raise ValueError("must be a day as YYYY-MM-DD" + (" or YYYYMMDD" if compact else ""))
    try:
        return datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError(f"{value} is not a calendar date") from None


def _times(value: object, field: str) -> int:
    """A count from a string of digits (as the CSV holds it) or an integer: 0 to the wire format's largest."""
    if isinstance(value, str) and _TIMES.fullmatch(value):
        value = int(value)
    if type(value) is not int:
        raise _invalid(field, "must be a whole number, as a number or a string of digits")
    if not 0 <= value <= MAX_COUNT:
        raise _invalid(field, f"must be between 0 and {MAX_COUNT}")
    return value


def _entry(row: Mapping[str, object], field: str) -> Entry:
    """One row of the extension's file, or :class:`Dropped` if it is not one."""
    missing = [key for key in KEYS if key not in row]
    if missing:
        raise _invalid(f"{field}.{missing[0]}", "is missing")
    unknown = [key for key in row if key not in KEYS]
    if unknown:
        raise _invalid(f"{field}.{unknown[0][:64]}", "is not a field of the Telemetry extension's rows")
    try:
        day = _date(row["day"])
    except ValueError as error:
        raise _invalid(f"{field}.day", str(error)) from None
    return Entry(
        component=_name(row["component"], f"{field}.component"),
        event=_name(row["event"], f"{field}.event"),
        day=day,
        times=_times(row["times"], f"{field}.times"),
    )


def parse_entries(document: object, app: str, drops: Drops) -> list[tuple[str, Entry]]:
    """The valid rows of a parsed upload (with where each was), the others dropped into ``drops``.

    Refused whole (400) unless it is a JSON array of at most :data:`MAX_ENTRIES` objects.
    """
    if not isinstance(document, list):
        raise Rejection(400, "invalid_body", "", "the body must be a JSON array of {component, event, day, times}")
    if len(document) > MAX_ENTRIES:
        raise Rejection(400, "too_many_entries", "", f"an upload may carry at most {MAX_ENTRIES} rows")
    entries = []
    for index, row in enumerate(document):
        if not isinstance(row, dict):
            raise Rejection(400, "invalid_body", f"[{index}]", "must be an object {component, event, day, times}")
        try:
            entries.append((f"[{index}]", _entry(row, f"[{index}]")))
        except Dropped as dropped:
            drops.add(app, dropped)
    return entries


def _components(catalog: Catalog) -> set[str]:
    """The components the application's events name, and its registered extensions."""
    events = catalog.latest.events.values()
    return {spec.component or spec.name.partition("/")[0] for spec in events} | set(catalog.plugins)


def _counter(name: str, components: set[str], field: str) -> tuple[str, str]:
    """``(component, event)`` of a counter named ``[module_|extension_]<component>_<event>``.

    The component is the first part before an underscore that is a known component, else the part before the
    first underscore (which then names no component of the application, and is dropped as such).
    """
    rest = next((name[len(prefix) :] for prefix in _PREFIXES if name.startswith(prefix)), name)
    cuts = [index for index, character in enumerate(rest) if character == "_"]
    if not cuts:
        raise _invalid(field, "a counter is named <component>_<event>")
    cut = next((index for index in cuts if rest[:index] in components), cuts[0])
    return rest[:cut], rest[cut + 1 :]


def _query_date(items: Mapping[str, str], key: str) -> datetime.date | None:
    if key not in items:
        return None
    try:
        return _date(items[key], compact=True)
    except ValueError as error:
        raise Rejection(400, "invalid_query", key, str(error)) from None


def _unquote(part: bytes, field: str) -> str:
    """One name or value of the query, ``+`` a space, escapes undone, as UTF-8 text (else 400)."""
    try:
        return urllib.parse.unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise Rejection(400, "invalid_query", field, "is not percent-encoded UTF-8") from None


def query_pairs(query: bytes) -> list[tuple[str, str]]:
    """The parameters of a query string, in order; refused whole (400 ``invalid_query``) unless well formed.

    Well formed: printable ASCII, parameters ``name=value`` joined by ``&`` (empty ones between two ``&`` are
    skipped), name and value non-empty, every ``%`` followed by two hexadecimal digits, the escapes UTF-8, no
    name given twice. A parameter without ``=`` or without a value is what a URL cut short leaves: refused, as a
    truncated body is, rather than stored as a count it does not carry.
    """
    if not _QUERY_TEXT.fullmatch(query):
        raise Rejection(400, "invalid_query", "", "the query must be printable ASCII, anything else percent-encoded")
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, part in enumerate(query.split(b"&")):
        if not part:
            continue
        where = f"query[{index}]"
        raw_name, equals, raw_value = part.partition(b"=")
        if not equals or not raw_name or not raw_value:
            raise Rejection(400, "invalid_query", where, "a parameter is name=value, both non-empty (cut short?)")
        if _BAD_ESCAPE.search(part):
            raise Rejection(400, "invalid_query", where, "a % is not followed by two hexadecimal digits")
        name, value = _unquote(raw_name, where), _unquote(raw_value, where)
        if name in seen:
            raise Rejection(400, "invalid_query", f"query.{name[:64]}", "is given more than once")
        seen.add(name)
        pairs.append((name, value))
    return pairs


def parse_query(
    pairs: Sequence[tuple[str, str]], catalog: Catalog, drops: Drops
) -> tuple[str, list[tuple[str, Entry]]]:
    """The application version and the valid counters of the query-string form (:func:`query_pairs`).

    Refused whole (400 ``invalid_query``): a missing or invalid ``collection_end_date``, an invalid
    ``collection_start_date`` or one after it, an invalid ``app_version``. A counter whose name or count is not
    valid, or that the manifest does not declare, is dropped into ``drops``.
    """
    named = {key: value for key, value in pairs if key in QUERY_KEYS}
    counters = [(key, value) for key, value in pairs if key not in QUERY_KEYS]
    end = _query_date(named, "collection_end_date")
    if end is None:
        raise Rejection(400, "invalid_query", "collection_end_date", "is missing: the day the counts were taken")
    start = _query_date(named, "collection_start_date")
    if start is not None and start > end:
        raise Rejection(400, "invalid_query", "collection_start_date", "is after collection_end_date")
    version = named.get("app_version", OTHER)
    if not VERSION.regex.fullmatch(version):
        raise Rejection(400, "invalid_query", "app_version", "is not a version (letters, digits, . + ! _ -)")
    components = _components(catalog)
    entries = []
    for key, value in counters:
        field = f"query.{key[:64]}"
        try:
            component, event = _counter(_name(key, field), components, field)
            entry = Entry(_name(component, field), _name(event, field), end, _times(value, field))
        except Dropped as dropped:
            drops.add(catalog.app, dropped)
            continue
        entries.append((field, entry))
    return version, entries


_Target = tuple[str, str | None, str]  # level, plugin (None: the application's own event), event name


def _target(entry: Entry, field: str, catalog: Catalog) -> _Target:
    """Where ``logUsageEvent(component, event)`` lands in the manifests, or :class:`Dropped` if it is not declared."""
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
            raise Dropped("event_not_in_manifest", f"{field}.event", message)
        return plugin_event.level, plugin.name, entry.event
    components = {spec.component or spec.name.partition("/")[0] for spec in manifest.events.values()}
    if entry.component in components:
        raise Dropped("event_not_in_manifest", f"{field}.event", f"{catalog.app!r} declares no event {name!r}")
    message = f"{entry.component!r} is neither a component of {catalog.app!r} nor a registered extension of it"
    raise Dropped("component_not_in_manifest", f"{field}.component", message)


def to_reports(
    entries: Iterable[tuple[str, Entry]],
    catalog: Catalog,
    reporter: str,
    window: DayWindow,
    drops: Drops,
    *,
    app_version: str = OTHER,
) -> list[Report]:
    """The native reports of an upload's rows: one per level and run of up to 31 days, all from ``reporter``.

    A row whose day native ingest would refuse, or that the manifest does not declare, or that would take a
    day's total past the largest count, is dropped into ``drops``. Rows of the same (component, event, day) are
    summed; rows of zero times are left out, as native reports leave out zero counts.
    """
    totals: dict[_Target, collections.Counter[datetime.date]] = collections.defaultdict(collections.Counter)
    for field, entry in entries:
        try:
            window.check(entry.day, f"{field}.day")
            target = _target(entry, field, catalog)
            if totals[target][entry.day] + entry.times > MAX_COUNT:
                raise _invalid(f"{field}.times", f"the rows of this event and day add up to more than {MAX_COUNT}")
        except Dropped as dropped:
            drops.add(catalog.app, dropped)
            continue
        totals[target][entry.day] += entry.times
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
                app_version=app_version,
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
class _SlicerTelemetry:
    """The routes of the Telemetry extension's uploads, and of the thread's query-string form."""

    ingest: Ingest
    registry: Registry

    async def default(self, request: Request) -> Response:
        """``POST /telemetry`` (the ``slicer_app`` setting's application) and ``GET /telemetry``."""
        return await self._dispatch(request, None)

    async def named(self, request: Request) -> Response:
        """``POST /telemetry/{app}`` and ``GET /telemetry/{app}``."""
        return await self._dispatch(request, request.path_params["app"])

    async def _dispatch(self, request: Request, app: str | None) -> Response:
        if request.method == "HEAD":  # Starlette answers HEAD with GET's handler: a HEAD must never count
            return Response(status_code=405, headers={"Allow": "GET, POST", "Cache-Control": "no-store"})
        if request.method == "GET":
            query = self._query
            return await answer(self.ingest, _ROUTE, lambda received: query(request, app, received), no_store=True)
        return await answer(self.ingest, _ROUTE, lambda received: self._upload(request, app, received))

    def _catalog(self, app: str | None) -> Catalog:
        if app is None:
            message = "no default application is configured (slicer_app); post to /telemetry/{app}"
            raise Rejection(404, "no_default_app", "", message)
        catalog = self.registry.get(app) if APP_NAME.regex.fullmatch(app) else None
        if catalog is None:
            raise Rejection(404, "unknown_app", "app", f"{app[:64]!r} is not registered on this server")
        return catalog

    @staticmethod
    def _not_cross_site(request: Request) -> None:
        """Refuse (403) what a browser says a page of another site made it send: counts no user chose to send."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site.lower() not in _BROWSER_SITES:
            message = "a browser sent this request for a page of another site"
            raise Rejection(403, "cross_site_request", "Sec-Fetch-Site", message)

    async def _upload(self, request: Request, app: str | None, received: list[int]) -> dict[str, object]:
        self._not_cross_site(request)
        source = self.ingest.admit_source(request)
        catalog = self._catalog(app or self.ingest.settings.slicer_app)
        content_type = request.headers.get("content-type")
        if content_type is not None:  # the extension always sends application/json; others may send none
            check_content_type(content_type)
        data = await read_upload(request, self.ingest.settings, received)
        drops = Drops()
        entries = parse_entries(parse_json(decode_text(data), code="invalid_body", field=""), catalog.app, drops)
        return await self._store(catalog, entries, drops, source=source, received=received, version=OTHER)

    async def _query(self, request: Request, app: str | None, received: list[int]) -> dict[str, object]:
        self._not_cross_site(request)
        source = self.ingest.admit_source(request)
        query: bytes = request.scope.get("query_string", b"")
        received.append(len(query))
        if len(query) > MAX_QUERY_BYTES:
            raise Rejection(414, "query_too_long", "", f"the query is longer than {MAX_QUERY_BYTES} bytes")
        pairs = query_pairs(query)
        named = next((value.lower() for key, value in pairs if key == "app"), None)
        if app is not None and named is not None and named != app.lower():
            message = f"the query names {named[:64]!r}, the path {app[:64]!r}"
            raise Rejection(400, "invalid_query", "app", message)
        catalog = self._catalog(app or named or self.ingest.settings.slicer_app)
        drops = Drops()
        version, entries = parse_query(pairs, catalog, drops)
        return await self._store(catalog, entries, drops, source=source, received=received, version=version)

    async def _store(
        self,
        catalog: Catalog,
        entries: list[tuple[str, Entry]],
        drops: Drops,
        *,
        source: Source,
        received: list[int],
        version: str,
    ) -> dict[str, object]:
        window = DayWindow.of(self.ingest.settings)
        reports = to_reports(entries, catalog, secrets.token_hex(16), window, drops, app_version=version)
        return await store_reports(
            self.ingest,
            reports,
            {catalog.app: catalog},
            source=source,
            drops=drops,
            route=_ROUTE,
            received=received,
            today=window.today,
        )


def routes(ingest: Ingest, registry: Registry) -> list[Route]:
    """``POST`` and ``GET`` ``/telemetry`` and ``/telemetry/{app}``."""
    handler = _SlicerTelemetry(ingest, registry)
    return [
        Route(_ROUTE, handler.default, methods=["GET", "POST"]),
        Route(_ROUTE + "/{app}", handler.named, methods=["GET", "POST"]),
    ]
