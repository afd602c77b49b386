"""The request cycle both seed-format adapters share: read and parse the upload, then store native reports.

An adapter turns an upload into native :class:`~consentry.wire.Report` objects; from there they take the native
path. Every report of a request is first checked against the registered manifests and encoded here
(:func:`~consentry_server.validate.encode_checked`, the checks the storer runs, and its size limit), so that a
request is refused whole, before anything of it is stored; then each is handed to
:meth:`Ingest.store <consentry_server.ingest.Ingest.store>`, which decodes, validates and stores it exactly as a
report sent to ``POST /v1/reports/{level}``, and answers only once it is committed.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse

from consentry.wire import Report, WireError
from consentry.wire.schema import MAX_DAYS
from consentry_server.acceptance import decode_text, decompress, parse_json, utc_today
from consentry_server.catalog import Catalog
from consentry_server.config import Settings
from consentry_server.ingest import Ingest, Source, read_body
from consentry_server.validate import Rejection, encode_checked

__all__ = ["answer", "chunks", "decode_text", "parse_json", "read_upload", "store_reports"]


async def answer(ingest: Ingest, route: str, work: Callable[[list[int]], Awaitable[dict[str, object]]]) -> JSONResponse:
    """``200`` with what ``work`` returns, or the refusal it raised: counted, logged (never the payload), bounded.

    ``work`` appends the size of the body as received to the list it is given, for the request log.
    """
    received: list[int] = []
    try:
        result = await work(received)
    except Rejection as rejection:
        return ingest.refuse(rejection, route, sum(received))
    return JSONResponse(result)


async def read_upload(request: Request, settings: Settings, received: list[int]) -> bytes:
    """The body, at most ``max_body_bytes`` as received and ``max_report_bytes`` once gzip is undone (else 413)."""
    body = await read_body(request, settings.max_body_bytes)
    received.append(len(body))
    return decompress(body, request.headers.get("content-encoding"), settings.max_report_bytes)


def chunks(days: Sequence[datetime.date]) -> list[tuple[datetime.date, ...]]:
    """``days``, sorted, in runs of at most the days one report may cover."""
    ordered = sorted(set(days))
    return [tuple(ordered[start : start + MAX_DAYS]) for start in range(0, len(ordered), MAX_DAYS)]


def _check(reports: Sequence[Report], catalogs: Mapping[str, Catalog], settings: Settings) -> list[bytes]:
    """Every report checked against its manifest and encoded, before any is stored: a request is refused whole."""
    today = utc_today()
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
) -> dict[str, object]:
    """Check every report, then store each through native ingest; the answer's body.

    ``status`` is ``stored`` if anything new was stored, else ``replaced`` if anything changed, else
    ``duplicate`` (everything was stored before), or ``empty`` for an upload that counted nothing.
    """
    bodies = _check(reports, catalogs, ingest.settings)
    statuses = set()
    days = 0
    for report, body in zip(reports, bodies, strict=True):
        outcome = await ingest.store(report.level, body, source=source)
        statuses.add(outcome.status)
        days += outcome.days
    status = next((name for name in ("stored", "replaced", "duplicate") if name in statuses), "empty")
    return {"status": status, "reports": len(reports), "days": days}
