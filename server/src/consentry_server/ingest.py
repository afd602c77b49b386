"""Native report ingest: ``POST /v1/reports/{level}``.

The order of checks is the order of cost: the declared size, the content type and encoding, the size as
received, the size after decompression, strict decoding against the wire schema, then the registered
manifest. Anything refused gets a 4xx with a machine-readable reason and nothing of it is stored; a 2xx means
the report is committed to disk.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import logging
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from consentry.wire import Report, WireError, decode
from consentry_server.addresses import Network, client_address, country_of
from consentry_server.config import Settings
from consentry_server.ratelimit import RateLimiter
from consentry_server.registry import Registry
from consentry_server.storage.base import Arrival, RequestLog, StoreOutcome
from consentry_server.validate import Rejection, validate_report
from consentry_server.writer import BatchWriter, Overloaded

__all__ = ["INLINE_BYTES", "DropCounter", "Ingest", "check_content_type", "decompress", "read_body"]

logger = logging.getLogger("consentry_server")


class DropCounter:
    """Counts refused requests by reason, for operators (``GET /admin/v1/stats``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def add(self, reason: str) -> None:
        """Count one refusal."""
        with self._lock:
            self._counts[reason] += 1

    def snapshot(self) -> dict[str, int]:
        """The counts so far."""
        with self._lock:
            return dict(self._counts)


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (identity or gzip), refusing more than ``limit`` bytes of output."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > limit:
            raise Rejection(413, "too_large", "", f"the report is larger than {limit} bytes")
        return body
    if encoding != "gzip":
        raise Rejection(415, "unsupported_encoding", "", f"Content-Encoding {encoding!r} is not supported; use gzip")
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise Rejection(400, "bad_gzip", "", f"the body is not valid gzip: {error}") from None
    if len(data) > limit:
        raise Rejection(413, "too_large", "", f"the report decompresses to more than {limit} bytes")
    if not inflater.eof:
        raise Rejection(400, "bad_gzip", "", "the gzip stream is truncated")
    if inflater.unused_data:
        raise Rejection(400, "bad_gzip", "", "there are bytes after the end of the gzip stream")
    return data


async def read_body(request: Request, limit: int) -> bytes:
    """Read the request body, refusing more than ``limit`` bytes (before reading, when the length is declared)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Rejection(400, "bad_length", "", "Content-Length is not a number")
        if int(declared) > limit:
            raise Rejection(413, "too_large", "", f"the body is larger than {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejection(413, "too_large", "", f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_content_type(value: str | None) -> None:
    """Refuse (415) anything but ``application/json``, optionally with ``charset=utf-8``."""
    media = (value or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Rejection(415, "unsupported_media_type", "", f"Content-Type must be application/json, got {media!r}")
    for parameter in (value or "").split(";")[1:]:
        name, _, charset = parameter.partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise Rejection(415, "unsupported_charset", "", "reports are UTF-8")


#: Bodies up to this size are decoded on the event loop; larger ones in a worker thread.
INLINE_BYTES = 64 * 1024


@dataclass
class Ingest:
    """Checks, decodes, validates and hands native reports to the writer.

    ``accept`` is the pure part (usable without HTTP); ``endpoint`` adds what belongs to the request: the rate
    limits, the country of the source address (after which the address is dropped), the writer, the request log.
    """

    settings: Settings
    registry: Registry
    writer: BatchWriter
    drops: DropCounter
    limiter: RateLimiter
    trusted: Sequence[Network] = ()
    today: Callable[[], datetime.date] = lambda: datetime.datetime.now(datetime.timezone.utc).date()

    def accept(self, level: str, body: bytes, *, content_type: str | None, encoding: str | None) -> Report:
        """Decode and validate one request body; return the report to store, or raise :class:`Rejection`."""
        check_content_type(content_type)
        data = decompress(body, encoding, self.settings.max_report_bytes)
        try:
            report = decode(data, max_bytes=self.settings.max_report_bytes)
        except WireError as error:
            raise Rejection(400, "invalid_report", error.path, error.reason) from None
        catalog = self.registry.get(report.app, report.consent_version)
        if catalog is None:
            raise Rejection(400, "unknown_app", "app", f"{report.app!r} is not registered on this server")
        return validate_report(
            report,
            catalog,
            path_level=level,
            today=self.today(),
            future_days=self.settings.future_days,
            retention_days=self.settings.raw_retention_days,
        ).report

    def refuse(self, rejection: Rejection, route: str, size: int) -> JSONResponse:
        """The answer to a refused request, counted and logged (never with the address or the payload)."""
        self.drops.add(rejection.code)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.writer.log(RequestLog(now, route, rejection.status, rejection.code, size))
        headers = {"Retry-After": str(rejection.retry_after)} if rejection.retry_after else None
        return JSONResponse(rejection.to_json(), status_code=rejection.status, headers=headers)

    async def endpoint(self, request: Request) -> JSONResponse:
        """``POST /v1/reports/{level}``."""
        received: list[int] = []
        try:
            outcome = await self._ingest(request, received)
        except Rejection as rejection:
            return self.refuse(rejection, "/v1/reports", sum(received))
        return JSONResponse({"status": outcome.status, "days": outcome.days})

    async def _ingest(self, request: Request, received: list[int]) -> StoreOutcome:
        peer = request.client.host if request.client else None
        address = client_address(peer, request.headers, self.trusted, self.settings.forwarded_header.lower())
        _limited(self.limiter.check_source(address), "", "too many requests from this source")
        check_content_type(request.headers.get("content-type"))
        body = await read_body(request, self.settings.max_body_bytes)
        received.append(len(body))
        level = request.path_params["level"]
        content_type, encoding = request.headers.get("content-type"), request.headers.get("content-encoding")
        if len(body) <= INLINE_BYTES:
            report = self.accept(level, body, content_type=content_type, encoding=encoding)
        else:
            report = await run_in_threadpool(self.accept, level, body, content_type=content_type, encoding=encoding)
        _limited(
            self.limiter.check_reporter(report.app, report.reporter), "reporter", "too many reports from this reporter"
        )
        country = country_of(address) if self.settings.country_lookup else None
        del address  # forgotten: nothing below sees it
        try:
            future = self.writer.submit(Arrival(report, datetime.datetime.now(datetime.timezone.utc), country))
        except Overloaded:
            raise Rejection(503, "overloaded", "", "the server is busy; try again later", retry_after=30) from None
        try:
            return await asyncio.wrap_future(future)
        except Exception:  # a storage failure: the client keeps its report and retries later
            logger.exception("storing a report failed")
            message = "the report could not be stored; try again later"
            raise Rejection(503, "storage_unavailable", "", message, retry_after=60) from None


def _limited(wait: int | None, field: str, message: str) -> None:
    if wait is not None:
        raise Rejection(429, "rate_limited", field, message, retry_after=wait)
