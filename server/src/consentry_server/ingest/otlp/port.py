"""The conventional OTLP/HTTP port (4318): the same application, answering only the receiver's routes there.

``consentry-server serve --otlp-port 4318`` (or ``otlp_port`` in the settings file) listens on a second port
as well. Requests that arrive on it reach only ``POST /v1/traces``, ``POST /v1/metrics`` and ``GET /healthz``;
any other path is 404, so opening that port to the world opens nothing else.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from consentry_server.ingest.otlp.receiver import PATHS

__all__ = ["only_otlp_on"]

_OPEN = frozenset({*PATHS, "/healthz"})


def only_otlp_on(app: ASGIApp, port: int) -> ASGIApp:
    """``app``, except that on ``port`` only the OTLP routes (and ``/healthz``) are served."""

    async def filtered(scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") if scope["type"] == "http" else None
        if server is not None and server[1] == port and scope["path"] not in _OPEN:
            body = {"error": {"code": "not_found", "field": "", "message": "this port serves only OTLP/HTTP"}}
            await JSONResponse(body, status_code=404)(scope, receive, send)
            return
        await app(scope, receive, send)

    return filtered
