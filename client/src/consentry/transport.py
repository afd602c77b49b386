"""The only module of the client that touches the network.

A :class:`Transport` sends one request and returns the response. :class:`HttpTransport` uses the standard
library: HTTPS with the system's certificates, an HTTPS proxy from the environment (``HTTPS_PROXY``,
``NO_PROXY``), no redirect ever followed (data goes to the manifest's URL or nowhere), and a hard limit on the
total time of a request: a watchdog shuts the connection down when the limit is reached, so a server that
hangs or drips its answer a byte at a time cannot hold the client. For tests,
:class:`consentry.testing.MemoryTransport` keeps requests in memory and answers from a script.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["MAX_RESPONSE_BYTES", "HttpTransport", "Request", "Response", "Transport", "TransportError"]

#: The most of a response body the client reads (responses are short JSON documents).
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Request:
    """An upload: ``body`` is the (compressed) report, ``timeout`` the most this request may take in total."""

    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0


@dataclass(frozen=True)
class Response:
    """The server's answer."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """A header, case-insensitively."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


class TransportError(Exception):
    """No response: the server could not be reached, the connection failed, or time ran out."""


class Transport(Protocol):
    """Something that sends a :class:`Request` and returns a :class:`Response` or raises TransportError."""

    def send(self, request: Request) -> Response:
        """Send ``request``."""
        ...


def _proxy(url: urllib.parse.SplitResult) -> urllib.parse.SplitResult | None:
    """The HTTPS proxy to use for ``url``, from the environment, if any."""
    if url.scheme != "https" or urllib.request.proxy_bypass(url.hostname or ""):
        return None
    proxy = urllib.request.getproxies().get("https")
    if not proxy:
        return None
    parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return parsed if parsed.hostname else None


def _shut(connection: http.client.HTTPConnection) -> None:
    """Wake up whatever is blocked on the connection's socket: the time limit is reached."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class HttpTransport:
    """HTTP(S) POST through the standard library, with a total time limit per request."""

    def __init__(self, *, user_agent: str = "consentry", context: ssl.SSLContext | None = None) -> None:
        self.user_agent = user_agent
        self.context = context

    def _connection(self, url: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
        proxy = _proxy(url)
        port = url.port or (443 if url.scheme == "https" else 80)
        if url.scheme == "https":
            context = self.context or ssl.create_default_context()
            if proxy is None:
                return http.client.HTTPSConnection(url.hostname or "", port, timeout=timeout, context=context)
            connection = http.client.HTTPSConnection(
                proxy.hostname or "", proxy.port or 8080, timeout=timeout, context=context
            )
            headers = {}
            if proxy.username:
                credentials = f"{urllib.parse.unquote(proxy.username)}:{urllib.parse.unquote(proxy.password or '')}"
                headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
            connection.set_tunnel(url.hostname or "", port, headers=headers)
            return connection
        if url.scheme == "http":
            return http.client.HTTPConnection(url.hostname or "", port, timeout=timeout)
        raise TransportError(f"unsupported URL scheme {url.scheme!r}")

    def send(self, request: Request) -> Response:
        """POST ``request.body`` to ``request.url``; raise :class:`TransportError` when there is no answer in time."""
        try:
            url = urllib.parse.urlsplit(request.url)
        except ValueError as error:
            raise TransportError(f"bad URL: {error}") from None
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        headers = {"User-Agent": self.user_agent, **request.headers}
        started = time.monotonic()
        try:
            connection = self._connection(url, request.timeout)
        except ValueError as error:  # a malformed proxy variable, say
            raise TransportError(f"cannot connect: {error}") from None
        watchdog = threading.Timer(request.timeout, _shut, args=(connection,))
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request("POST", path, body=request.body, headers=headers)
            reply = connection.getresponse()
            body = reply.read(MAX_RESPONSE_BYTES)
            status, reply_headers = reply.status, dict(reply.getheaders())
        except (OSError, http.client.HTTPException, ValueError) as error:
            late = time.monotonic() - started >= request.timeout
            reason = "no answer within the time limit" if late else f"{type(error).__name__}: {error}"
            raise TransportError(reason) from error
        finally:
            watchdog.cancel()
            connection.close()
        if time.monotonic() - started >= request.timeout:
            raise TransportError("no complete answer within the time limit")
        return Response(status, reply_headers, body)
