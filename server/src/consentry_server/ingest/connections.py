"""What one client may hold of the server: the limits uvicorn leaves open, applied where it reads requests.

uvicorn (with httptools) waits for a request's head and body as long as the client cares to send them, keeps any
number of connections open and reads heads of any size. Each open connection holds a file descriptor, so 1,100
half-sent requests exhaust a 1,024-descriptor limit and no one else is served, ``/healthz`` included.
:class:`GuardedProtocol` is uvicorn's own httptools protocol with these limits (settings of ``serve``):

- ``request_timeout_seconds``: a request, head and body, must arrive whole within this many seconds of the
  connection opening or, on a kept-alive connection, of its first byte; after that the client is answered 408
  and the connection closed. The application's own time is not counted: the clock stops once the request is in.
  An idle kept-alive connection is closed by uvicorn after 5 s (``timeout_keep_alive``).
- ``max_header_bytes``: the request line and headers may hold at most this many bytes (431 above, then closed).
- ``max_connections``: at most this many connections are open at once, and fewer when the process may not open
  that many files (its ``RLIMIT_NOFILE``, raised as far as allowed, less :data:`RESERVED_DESCRIPTORS` for the
  database, the storing process and refusals); ``max_connections_per_source``: at most this many from one
  address, trusted proxies (``trusted_proxies``) excepted, as they carry many clients. A connection over either
  is answered 503 at once and closed, so a client that is refused learns it without waiting, and one address
  cannot take every place.

Every refusal is the application's JSON error (``{"error": {"code", "field", "message"}}``, with ``Retry-After``
where waiting helps) and closes the connection. Addresses are counted in memory only, under a keyed hash, while
their connections are open; nothing is stored. Refused and timed-out connections are summed in one log line a
minute at most. A request whose body stops arriving in time reaches the application as a disconnection marked
with :data:`TIMED_OUT` in its scope, which :func:`~consentry_server.ingest.routes.read_body` refuses as
``request_timeout``.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from consentry_server.config import Settings
from consentry_server.ingest.addresses import Network, parse_networks
from consentry_server.ingest.validate import Rejection

__all__ = ["RESERVED_DESCRIPTORS", "TIMED_OUT", "ConnectionLimits", "GuardedProtocol", "descriptor_budget"]

logger = logging.getLogger("consentry_server")

#: The scope key set on a request whose body did not arrive in time (the application sees a disconnection).
TIMED_OUT = "consentry.request_timeout"
#: File descriptors kept for other uses than client connections: the database, the storing process, refusals.
RESERVED_DESCRIPTORS = 128
#: Refused connections are kept open (reading and discarding) for at most this long, so that the client reads its
#: answer instead of a reset, and at most this many at once (past it, they are closed at once).
_LINGER_SECONDS = 2.0
_MAX_LINGERING = 64
#: Seconds between two log lines that sum up refused and timed-out connections.
_NOTICE_INTERVAL = 60.0


def descriptor_budget(wanted: int) -> int:
    """How many connections may be open at once: ``wanted``, or fewer if the process may not open enough files.

    The soft limit on open files is raised towards the hard one as far as ``wanted`` needs.
    """
    try:
        import resource  # noqa: PLC0415 - POSIX only
    except ImportError:  # Windows: no such limit to respect
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - RESERVED_DESCRIPTORS))


def _answer(rejection: Rejection) -> bytes:
    """A whole HTTP/1.1 response refusing the request, written by the protocol itself; the connection then closes."""
    body = json.dumps(rejection.to_json()).encode()
    head = [
        f"HTTP/1.1 {rejection.status} {_REASONS[rejection.status]}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if rejection.retry_after:
        head.append(f"retry-after: {rejection.retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}


class _Notices:
    """Counts refused and timed-out connections, and logs their sums at most once every _NOTICE_INTERVAL."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.last = -_NOTICE_INTERVAL

    def add(self, what: str) -> None:
        self.counts[what] += 1
        now = time.monotonic()
        if now - self.last >= _NOTICE_INTERVAL:
            summary = ", ".join(f"{count} {reason}" for reason, count in sorted(self.counts.items()))
            logger.warning("connections refused or closed since the last such line: %s", summary)
            self.counts.clear()
            self.last = now


class ConnectionLimits:
    """The limits of one server's connections, and the connections open now (by keyed hash of their address)."""

    def __init__(self, settings: Settings, *, max_connections: int | None = None) -> None:
        self.request_timeout = float(settings.request_timeout_seconds)
        self.max_header_bytes = settings.max_header_bytes
        self.max_connections = max_connections or settings.max_connections
        self.per_source = settings.max_connections_per_source
        self.trusted: Sequence[Network] = parse_networks(settings.trusted_proxies)
        self.open = 0
        self.lingering = 0
        self.sources: dict[bytes, int] = {}
        self.notices = _Notices()
        self._salt = secrets.token_bytes(16)

    def source_key(self, host: str | None) -> bytes | None:
        """The key ``host`` is counted under; ``None`` for a trusted proxy or a peer without an address."""
        try:
            ip = ipaddress.ip_address(host or "")
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.trusted):
            return None
        return hashlib.blake2b(ip.packed, key=self._salt, digest_size=16).digest()

    def admit(self, key: bytes | None) -> Rejection | None:
        """Count a new connection from ``key``, or say why it is refused."""
        if self.open >= self.max_connections:
            message = f"the server has {self.max_connections} connections open; try again later"
            return Rejection(503, "too_many_connections", "", message, retry_after=5)
        if key is not None and self.sources.get(key, 0) >= self.per_source:
            message = f"{self.per_source} connections from this address are open already; reuse one, or wait"
            return Rejection(503, "too_many_connections_from_source", "", message, retry_after=5)
        self.open += 1
        if key is not None:
            self.sources[key] = self.sources.get(key, 0) + 1
        return None

    def release(self, key: bytes | None) -> None:
        """A connection counted by :meth:`admit` closed."""
        self.open -= 1
        if key is not None:
            left = self.sources.pop(key) - 1
            if left:
                self.sources[key] = left


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the limits of :class:`ConnectionLimits` (see the module's docstring).

    Use a subclass bound to the server's limits: :meth:`bound`.
    """

    limits: ClassVar[ConnectionLimits]

    @classmethod
    def bound(cls, limits: ConnectionLimits) -> type[GuardedProtocol]:
        """A subclass whose connections share ``limits`` (uvicorn makes one protocol object per connection)."""
        return type(cls.__name__, (cls,), {"limits": limits})

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - uvicorn's own arguments
        super().__init__(*args, **kwargs)
        self._admitted = False
        self._key: bytes | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._reading_head = True
        self._head_bytes = 0
        self._heads = 0

    # ---- connections ---------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection, or refuse it at once when over a limit."""
        peer = transport.get_extra_info("peername")
        self._key = self.limits.source_key(peer[0] if isinstance(peer, tuple) else None)
        refusal = self.limits.admit(self._key)
        if refusal is not None:
            self._refuse_connection(transport, refusal)
            return
        self._admitted = True
        super().connection_made(transport)
        self._arm()

    def _refuse_connection(self, transport: asyncio.Transport, refusal: Rejection) -> None:
        """Answer at once; then read and discard until the client closes, or for _LINGER_SECONDS at most."""
        self.transport = transport
        self.limits.notices.add(refusal.code)
        transport.write(_answer(refusal))
        if self.limits.lingering >= _MAX_LINGERING or not transport.can_write_eof():
            transport.close()
            return
        self.limits.lingering += 1
        transport.write_eof()
        self._linger = self.loop.call_later(_LINGER_SECONDS, transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop counting the connection (a refused one was never counted)."""
        if not self._admitted:  # a refused connection
            if self._linger is not None:
                self._linger.cancel()
                self._linger = None
                self.limits.lingering -= 1
            return
        self._admitted = False
        self.limits.release(self._key)
        self._disarm()
        super().connection_lost(exc)

    def eof_received(self) -> None:
        """A refused client read its answer and closed: close too."""
        if not self._admitted and self._linger is not None:
            self.transport.close()
            return
        super().eof_received()

    # ---- requests ------------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        """Parse ``data`` (discard it, for a refused connection), then check the size of an unfinished head."""
        if not self._admitted:
            return  # refused: discarded
        heads, reading_head = self._heads, self._reading_head
        super().data_received(data)
        if reading_head and self._reading_head and self._heads == heads and not self.transport.is_closing():
            # Nothing of a request's head completed in this chunk, so all of it is head: count it against the
            # limit now, before a head that never ends fills the memory (a complete head is checked exactly).
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._close_with(self._head_too_large())

    def on_message_begin(self) -> None:
        """A request begins: its deadline starts (unless it started with the connection)."""
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        """The head is in: the application answers it, or a refusal does if it is too large."""
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        self._reading_head, self._head_bytes, self._heads = False, 0, self._heads + 1
        if size <= self.limits.max_header_bytes:
            super().on_headers_complete()
            return
        # Answered by an application of its own, as uvicorn answers over its concurrency limit.
        app, self.app = self.app, _Refusal(self._head_too_large())
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        """The request is in: its deadline stops."""
        super().on_message_complete()
        self._reading_head, self._head_bytes = True, 0
        self._disarm()

    def _head_too_large(self) -> Rejection:
        message = f"the request line and headers are larger than {self.limits.max_header_bytes} bytes"
        return Rejection(431, "headers_too_large", "", message)

    # ---- the request's deadline ----------------------------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.limits.request_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self.limits.notices.add("request_timeout")
        seconds = self.limits.request_timeout
        message = f"the request did not arrive whole within {seconds:g} seconds"
        refusal = Rejection(408, "request_timeout", "", message)
        cycle: RequestResponseCycle | None = self.cycle
        if self._reading_head:
            busy = cycle is not None and not cycle.response_complete  # answering the request before this one
            self._close_with(None if busy else refusal)
        elif cycle is None or cycle.response_started or self.pipeline:
            self._close_with(None)
        else:  # the application waits for the body: it sees a disconnection, marked as this
            cycle.scope[TIMED_OUT] = True  # type: ignore[literal-required]
            self._close_with(refusal)

    def _close_with(self, refusal: Rejection | None) -> None:
        if refusal is not None:
            self.transport.write(_answer(refusal))
        self.transport.close()


class _Refusal:
    """An ASGI application that answers every request with one refusal and closes the connection."""

    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:  # noqa: ANN401, ARG002 - ASGI
        body = json.dumps(self.rejection.to_json()).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": self.rejection.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
