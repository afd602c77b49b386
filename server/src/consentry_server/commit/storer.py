"""Where an accepted request body becomes a stored report: the interface, and its in-process form.

The endpoint (:mod:`consentry_server.ingest.routes`) checks what belongs to the connection (source rate limit, content
type, size) and hands the body to a :class:`Storer`, which decodes and validates it
(:class:`~consentry_server.ingest.accept.Acceptor`), stores it durably and answers with the outcome, or raises
:class:`~consentry_server.ingest.validate.Rejection`. Two storers exist:

- :class:`ThreadStorer` (here): decoding on the event loop, storing in a writer thread of the same process
  (:class:`~consentry_server.commit.writer.BatchWriter`). Used when the application is given a storage object.
- :class:`~consentry_server.commit.process.ProcessStorer`: both in a storing process of their own, so that
  they do not share the serving process's interpreter lock. What ``consentry-server serve`` uses.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
from typing import Protocol

from starlette.concurrency import run_in_threadpool

from consentry_server.commit.writer import BatchWriter, Overloaded
from consentry_server.ingest.accept import Acceptor
from consentry_server.storage.base import Arrival, RequestLog, StoreOutcome

__all__ = ["INLINE_BYTES", "Overloaded", "Storer", "StoringError", "ThreadStorer"]

#: Bodies up to this size are decoded on the event loop; larger ones in a worker thread.
INLINE_BYTES = 64 * 1024


class StoringError(Exception):
    """The report could not be stored (the database failed, or the storing process went away)."""


class Storer(Protocol):
    """Decodes, validates and durably stores request bodies."""

    async def start(self) -> None:
        """Get ready to store (called when the application starts)."""
        ...

    async def store(
        self,
        level: str,
        body: bytes,
        *,
        content_type: str | None,
        encoding: str | None,
        received: datetime.datetime,
        country: str | None,
        source: str | None = None,
        first_report_known: bool = True,
    ) -> StoreOutcome:
        """Store one report once it is committed; raise ``Rejection``, :class:`Overloaded` or :class:`StoringError`.

        ``source``: the key of the request's source (a salted hash of its address), for the limit on its new
        reporters; ``None`` when unknown. ``first_report_known`` is false for a report made from an upload that
        cannot tell an install's first report from its others (OTLP, the seed formats): see
        :class:`~consentry_server.storage.base.Arrival`.
        """
        ...

    def log(self, entry: RequestLog) -> None:
        """Queue a line of the request log (best effort: lines may be lost, never a report)."""
        ...

    def forget_manifests(self, app: str) -> None:
        """Read the manifests of ``app`` from the database again: one was just registered."""
        ...

    async def close(self) -> None:
        """Store what is queued, then stop."""
        ...


class ThreadStorer:
    """Decodes on the event loop (or a worker thread, for large bodies); stores in the writer's thread."""

    def __init__(self, acceptor: Acceptor, writer: BatchWriter) -> None:
        self.acceptor = acceptor
        self.writer = writer

    async def start(self) -> None:
        """Start the writer thread (again, after a stop)."""
        self.writer.start()

    async def store(
        self,
        level: str,
        body: bytes,
        *,
        content_type: str | None,
        encoding: str | None,
        received: datetime.datetime,
        country: str | None,
        source: str | None = None,
        first_report_known: bool = True,
    ) -> StoreOutcome:
        """Decode, validate, limit, then wait for the writer to commit the report."""
        if len(body) <= INLINE_BYTES:
            report = self.acceptor.admit(level, body, content_type=content_type, encoding=encoding, source=source)
        else:
            report = await run_in_threadpool(
                functools.partial(self.acceptor.admit, content_type=content_type, encoding=encoding, source=source),
                level,
                body,
            )
        future = self.writer.submit(Arrival(report, received, country, first_report_known))
        try:
            return await asyncio.wrap_future(future)
        except Exception as error:
            raise StoringError(str(error)) from error

    def log(self, entry: RequestLog) -> None:
        """Queue a request-log line for the writer."""
        self.writer.log(entry)

    def forget_manifests(self, app: str) -> None:
        """Drop the acceptor's cached manifests of ``app``."""
        self.acceptor.registry.invalidate(app)

    async def close(self) -> None:
        """Let the writer store what is queued, and stop it."""
        await asyncio.to_thread(self.writer.close)
