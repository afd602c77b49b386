"""The only module of the client that touches the network.

A :class:`Transport` sends one request and returns the response. :class:`HttpTransport` uses the standard
library (HTTPS with the system's certificates, proxies from the environment, no redirects followed so data
never goes anywhere but the manifest's URL). :class:`MemoryTransport` keeps requests in memory and answers
from a script: tests and application authors need no network.
"""

from __future__ import annotations

import collections
import http.client
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["HttpTransport", "MemoryTransport", "Request", "Response", "Transport", "TransportError"]

#: The most of a response body the client reads (responses are short JSON documents).
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Request:
    """An upload: ``body`` is the (compressed) report, ``timeout`` the most this request may take."""

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


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: object, **__: object) -> None:
        return None  # the HTTPError for the 3xx status reaches the caller


class HttpTransport:
    """HTTP(S) through the standard library."""

    def __init__(self, *, user_agent: str = "consentry", context: ssl.SSLContext | None = None) -> None:
        self.user_agent = user_agent
        handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def send(self, request: Request) -> Response:
        """POST ``request.body`` to ``request.url``."""
        headers = {"User-Agent": self.user_agent, **request.headers}
        outgoing = urllib.request.Request(request.url, data=request.body, headers=headers, method="POST")  # noqa: S310 - the URL comes from the validated manifest (http only to loopback)
        try:
            with self._opener.open(outgoing, timeout=request.timeout) as reply:
                return Response(reply.status, dict(reply.headers.items()), reply.read(MAX_RESPONSE_BYTES))
        except urllib.error.HTTPError as error:
            try:
                body = error.read(MAX_RESPONSE_BYTES)
            except (OSError, AttributeError, http.client.HTTPException):
                body = b""
            finally:
                error.close()
            return Response(error.code, dict(error.headers.items()) if error.headers else {}, body)
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            raise TransportError(f"{type(error).__name__}: {error}") from error


Answer = Response | Exception
Script = Callable[[Request], Answer]


class MemoryTransport:
    """A transport that sends nothing: it records requests and answers from a script.

    ``answers`` is a list of responses (or exceptions to raise) used in order, then the default, or a function
    of the request. By default every request gets ``202 Accepted``.
    """

    def __init__(self, answers: Iterable[Answer] | Script | None = None, *, default: Answer | None = None) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._script: Script | None = answers if callable(answers) else None
        self._queue: collections.deque[Answer] = collections.deque(
            [] if answers is None or callable(answers) else answers
        )
        self._default: Answer = default if default is not None else Response(202, {}, b'{"status":"accepted"}')

    def send(self, request: Request) -> Response:
        """Record ``request`` and answer it."""
        with self._lock:
            self.requests.append(request)
            answer = (
                self._script(request) if self._script else (self._queue.popleft() if self._queue else self._default)
            )
        if isinstance(answer, Exception):
            raise answer
        return answer
