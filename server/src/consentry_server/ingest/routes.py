"""Native report ingest: ``POST /v1/reports/{level}``.

The order of checks is the order of cost: the per-source rate limit, the declared size, the content type, the
size as received; then the storer's (:mod:`consentry_server.ingest.accept`): the encoding and the size after
decompression, strict decoding against the wire schema, the registered manifest, the per-reporter rate limit.
Anything refused gets a 4xx with a machine-readable reason and nothing of it is stored; a 2xx means the report
is committed to disk.
"""

from __future__ import annotations

import collections
import datetime
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from consentry_server.commit.storer import Overloaded, Storer, StoringError
from consentry_server.config import Settings
from consentry_server.ingest.accept import check_content_type
from consentry_server.ingest.addresses import Network, client_address, country_of
from consentry_server.ingest.connections import TIMED_OUT
from consentry_server.ingest.limits import RateLimiter
from consentry_server.ingest.validate import Rejection
from consentry_server.storage.base import RequestLog, StoreOutcome

__all__ = ["DropCounter", "Ingest", "Source", "read_body"]

logger = logging.getLogger("consentry_server")


class DropCounter:
    """Counts refused requests by reason, for operators (``GET /admin/v1/stats``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def add(self, reason: str, times: int = 1) -> None:
        """Count ``times`` refusals (or dropped items) for ``reason``."""
        with self._lock:
            self._counts[reason] += times

    def snapshot(self) -> dict[str, int]:
        """The counts so far."""
        with self._lock:
            return dict(self._counts)


async def read_body(request: Request, limit: int) -> bytes:
    """Read the request body, refusing more than ``limit`` bytes (before reading, when the length is declared).

    A client that hangs up before the end of its body is refused too (``client_disconnected``), with one line
    in the log.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Rejection(400, "bad_length", "", "Content-Length is not a number")
        if int(declared) > limit:
            raise Rejection(413, "too_large", "", f"the body is larger than {limit} bytes")
    chunks = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Rejection(413, "too_large", "", f"the body is larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        if request.scope.get(TIMED_OUT):  # closed by the server: the body was too slow (already answered 408)
            message = "the request did not arrive whole in time"
            raise Rejection(408, "request_timeout", "", message) from None
        # Nobody is left to answer; one line for operators (uvicorn would log a traceback), and the refusal counted.
        path = request.url.path[:80]
        logger.warning("a client hung up before sending its whole request body (%r, %d bytes received)", path, size)
        raise Rejection(400, "client_disconnected", "", "the connection closed before the body was complete") from None
    return b"".join(chunks)


@dataclass(frozen=True)
class Source:
    """What is kept of where a request came from; either part is ``None`` when unknown.

    Its country (if looked up) and its key, today's salted hash of its address
    (:meth:`RateLimiter.source_key <consentry_server.ingest.limits.RateLimiter.source_key>`), by which the storer
    limits its new reporters.
    """

    country: str | None = None
    key: str | None = None


@dataclass
class Ingest:
    """``POST /v1/reports/{level}``: checks what belongs to the request, then hands the body to the storer.

    Here: the per-source rate limit, the content type, the size as received, the country of the source address
    (after which the address is dropped), the answer and the request log. The storer decodes, validates, limits
    each reporter and stores (:mod:`consentry_server.commit.storer`).
    """

    settings: Settings
    storer: Storer
    drops: DropCounter
    limiter: RateLimiter
    trusted: Sequence[Network] = ()

    def count_refusal(self, rejection: Rejection, route: str, size: int) -> None:
        """Count a refused request for operators and log it (never with the address or the payload)."""
        self.drops.add(rejection.code)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.storer.log(RequestLog(now, route, rejection.status, rejection.code, size))

    def refuse(self, rejection: Rejection, route: str, size: int) -> JSONResponse:
        """The answer to a refused request, counted and logged."""
        self.count_refusal(rejection, route, size)
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
        source = self.admit_source(request)
        check_content_type(request.headers.get("content-type"))
        body = await read_body(request, self.settings.max_body_bytes)
        received.append(len(body))
        return await self.store(
            request.path_params["level"],
            body,
            source=source,
            content_type=request.headers.get("content-type"),
            encoding=request.headers.get("content-encoding"),
        )

    def admit_source(self, request: Request) -> Source:
        """Take a token of the source's rate limit (429 when there is none); return what is kept of the source.

        The source address is forgotten here: nothing after this call sees it, only its country and salted key.
        Every ingest route (native, OTLP, the seed formats, deletions) calls this first.
        """
        peer = request.client.host if request.client else None
        address = client_address(peer, request.headers, self.trusted, self.settings.forwarded_header.lower())
        _limited(self.limiter.check_source(address), "", "too many requests from this source")
        country = country_of(address) if self.settings.country_lookup else None
        key = self.limiter.source_key(address) if address is not None else None
        del address  # forgotten: nothing below sees it
        return Source(country, key)

    async def store(
        self,
        level: str,
        body: bytes,
        *,
        source: Source,
        content_type: str | None = "application/json",
        encoding: str | None = None,
        first_report_known: bool = True,
    ) -> StoreOutcome:
        """Hand one native report body to the storer: validated against the manifest, then committed.

        Raises :class:`Rejection` for a refused report, and 503 when the storer is busy or cannot store.
        ``first_report_known`` is false for the reports that OTLP and the seed-format adapters make: their
        ``first_report`` is false because the upload cannot tell, not because the install is known.
        """
        try:
            return await self.storer.store(
                level,
                body,
                content_type=content_type,
                encoding=encoding,
                received=datetime.datetime.now(datetime.timezone.utc),
                country=source.country,
                source=source.key,
                first_report_known=first_report_known,
            )
        except Overloaded:
            raise Rejection(503, "overloaded", "", "the server is busy; try again later", retry_after=30) from None
        except StoringError as error:  # the client keeps its report and retries later
            # One line: a traceback would say nothing more, once for each report while the database is down.
            logger.warning("a report was answered 503, not stored: %s", error)
            message = "the report could not be stored; try again later"
            raise Rejection(503, "storage_unavailable", "", message, retry_after=60) from None


def _limited(wait: int | None, field: str, message: str) -> None:
    if wait is not None:
        raise Rejection(429, "rate_limited", field, message, retry_after=wait)
