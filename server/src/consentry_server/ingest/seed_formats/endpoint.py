"""What the seed-format routes share: read the upload, keep what is declared and valid, store native reports.

An adapter turns an upload into native :class:`~consentry.wire.Report` objects; from there they take the native
path. A malformed upload is refused whole (a :class:`~consentry_server.ingest.validate.Rejection`). Inside a well-formed
one, each row or record that the manifest does not declare, or that is not valid, is dropped (:class:`Dropped`)
and counted in :class:`Drops`, per application and reason: the senders keep an upload until it is answered 2xx
(the Slicer extension its file, dfx its batch, and dfx sends no later batch meanwhile), so one undeclared event
must not hold back the rest. Every report of the request is then checked against the registered manifests and
encoded here (:func:`~consentry_server.ingest.validate.encode_checked`, the checks the storer runs, and its size limit),
before any is stored; then each is handed to :meth:`Ingest.store <consentry_server.ingest.routes.Ingest.store>`, which
decodes, validates and stores it exactly as a report sent to ``POST /v1/reports/{level}``, and answers only once
it is committed. The answer says what was dropped (``partial_success``, as OTLP's answers do), and the request
log keeps one line per application and reason, which ``GET /admin/v1/stats`` and ``consentry-server apps list``
sum for operators.
"""

from __future__ import annotations

import collections
import datetime
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse

from consentry.wire import Report, WireError
from consentry.wire.schema import MAX_DAYS
from consentry_server.config import Settings
from consentry_server.ingest.accept import decode_text, decompress, parse_json, utc_today
from consentry_server.ingest.catalog import Catalog
from consentry_server.ingest.routes import Ingest, Source, read_body
from consentry_server.ingest.validate import Rejection, bounded_text, encode_checked
from consentry_server.storage.base import RequestLog

__all__ = [
    "DayWindow",
    "Dropped",
    "Drops",
    "answer",
    "chunks",
    "decode_text",
    "parse_json",
    "read_upload",
    "store_reports",
]

_MESSAGE_LENGTH = 500


class Dropped(Exception):  # noqa: N818 - an outcome for one item, not an error of the server
    """One row, record or counter of an upload is left out: ``reason`` (a machine-readable code), where, and why."""

    def __init__(self, reason: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.reason = reason
        self.field = field
        self.message = message


@dataclass
class Drops:
    """What one request dropped: items per (application, reason), and the first problem of each reason."""

    counts: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    first: dict[str, str] = field(default_factory=dict)

    def add(self, app: str, dropped: Dropped, items: int = 1) -> None:
        """Count ``items`` dropped from ``app``'s upload for ``dropped``'s reason."""
        self.counts[app, dropped.reason] += items
        self.first.setdefault(dropped.reason, f"{dropped.field}: {dropped.message}")

    def answer(self) -> dict[str, object]:
        """``{"partial_success": {"dropped": {reason: items}, "message": ...}}``, or nothing if nothing was dropped."""
        if not self.counts:
            return {}
        by_reason: collections.Counter[str] = collections.Counter()
        for (_, reason), items in self.counts.items():
            by_reason[reason] += items
        message = bounded_text("; ".join(self.first[reason] for reason in sorted(by_reason)), _MESSAGE_LENGTH)
        return {"partial_success": {"dropped": dict(sorted(by_reason.items())), "message": message}}

    def log(self, ingest: Ingest, route: str, size: int) -> None:
        """One request-log line per application and reason (never a payload): what operators see summed."""
        now = datetime.datetime.now(datetime.timezone.utc)
        for (app, reason), items in sorted(self.counts.items()):
            ingest.storer.log(RequestLog(now, route, 200, reason, size, app=app, dropped=items))


@dataclass(frozen=True)
class DayWindow:
    """The days a report may cover on ``today``, as native ingest checks them (``future_days``, retention)."""

    today: datetime.date
    oldest: datetime.date
    latest: datetime.date

    @classmethod
    def of(cls, settings: Settings, today: datetime.date | None = None) -> DayWindow:
        """The window of ``settings`` on ``today`` (the server's date by default)."""
        today = today or utc_today()
        oldest = today - datetime.timedelta(days=settings.raw_retention_days)
        return cls(today, oldest, today + datetime.timedelta(days=settings.future_days))

    def check(self, day: datetime.date, field: str) -> datetime.date:
        """``day``, or :class:`Dropped` (``day_in_future``, ``day_too_old``) as native ingest would refuse it."""
        if day > self.latest:
            raise Dropped("day_in_future", field, f"{day} is after the server's date {self.today}")
        if day < self.oldest:
            raise Dropped("day_too_old", field, f"{day} is older than the retention window (from {self.oldest})")
        return day


async def answer(
    ingest: Ingest, route: str, work: Callable[[list[int]], Awaitable[dict[str, object]]], *, no_store: bool = False
) -> JSONResponse:
    """``200`` with what ``work`` returns, or the refusal it raised: counted, logged (never the payload), bounded.

    ``work`` appends the size of the body as received to the list it is given, for the request log. With
    ``no_store`` the answer forbids caches to keep it (answers to GET requests).
    """
    received: list[int] = []
    try:
        result = await work(received)
    except Rejection as rejection:
        response = ingest.refuse(rejection, route, sum(received))
    else:
        response = JSONResponse(result)
    if no_store:
        response.headers["Cache-Control"] = "no-store"
    return response


async def read_upload(request: Request, settings: Settings, received: list[int]) -> bytes:
    """The body, at most ``max_body_bytes`` as received and ``max_report_bytes`` once gzip is undone (else 413)."""
    body = await read_body(request, settings.max_body_bytes)
    received.append(len(body))
    return decompress(body, request.headers.get("content-encoding"), settings.max_report_bytes)


def chunks(days: Sequence[datetime.date]) -> list[tuple[datetime.date, ...]]:
    """``days``, sorted, in runs of at most the days one report may cover."""
    ordered = sorted(set(days))
    return [tuple(ordered[start : start + MAX_DAYS]) for start in range(0, len(ordered), MAX_DAYS)]


def _check(
    reports: Sequence[Report], catalogs: Mapping[str, Catalog], settings: Settings, today: datetime.date
) -> list[bytes]:
    """Every report checked against its manifest and encoded, before any is stored."""
    bodies = []
    for report in reports:
        try:
            body = encode_checked(
                report,
                catalogs[report.app],
                today=today,
                future_days=settings.future_days,
                retention_days=settings.raw_retention_days,
                max_bytes=settings.max_report_bytes,
            )
        except WireError as error:  # a limit of the wire format, such as the events of one day
            raise Rejection(400, "invalid_report", error.path, error.reason) from None
        bodies.append(body)
    return bodies


async def store_reports(
    ingest: Ingest,
    reports: Sequence[Report],
    catalogs: Mapping[str, Catalog],
    *,
    source: Source,
    drops: Drops | None = None,
    route: str = "",
    received: Sequence[int] = (),
    today: datetime.date | None = None,
) -> dict[str, object]:
    """Check every report, then store each through native ingest; log what was dropped; the answer's body.

    ``status`` is ``stored`` if anything new was stored, else ``replaced`` if anything changed, else
    ``duplicate`` (everything was stored before), or ``empty`` for an upload that counted nothing (everything
    in it dropped, or zero). ``partial_success`` is there when something was dropped. What was dropped is
    logged only once the reports are stored, under ``route`` with the size ``received``: a request refused
    meanwhile (503) is sent again and counted then. ``today`` is the date the reports' days were checked
    against (the server's date by default).
    """
    drops = drops if drops is not None else Drops()
    bodies = _check(reports, catalogs, ingest.settings, today or utc_today())
    statuses = set()
    days = 0
    for report, body in zip(reports, bodies, strict=True):
        outcome = await ingest.store(report.level, body, source=source, first_report_known=False)
        statuses.add(outcome.status)
        days += outcome.days
    drops.log(ingest, route, sum(received))
    status = next((name for name in ("stored", "replaced", "duplicate") if name in statuses), "empty")
    return {"status": status, "reports": len(reports), "days": days, **drops.answer()}
