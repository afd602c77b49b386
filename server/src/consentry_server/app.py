"""The ASGI application: ingest, the public API and pages, the admin API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry_server.admin_api import admin_routes
from consentry_server.config import Settings
from consentry_server.deletion import deletion_routes
from consentry_server.ingest import DropCounter, Ingest
from consentry_server.pages import page_routes
from consentry_server.public_api import public_routes
from consentry_server.registry import Registry
from consentry_server.storage import PublicStore, Storage, open_storage

__all__ = ["ServerState", "create_app"]

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
    (b"cross-origin-resource-policy", b"same-site"),
]


class SecurityHeaders:
    """Adds security headers to every response, and open CORS to the read-only public API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        public_api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_SECURITY_HEADERS)
                if public_api:
                    headers.extend((k.encode(), v.encode()) for k, v in _cors_headers().items())
                message["headers"] = headers
            await send(message)

        if public_api and scope["method"] == "OPTIONS":
            await Response(status_code=204)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _cors_headers() -> dict[str, str]:
    return {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "GET, OPTIONS",
        "access-control-max-age": "86400",
    }


@dataclass
class ServerState:
    """What the running application holds."""

    settings: Settings
    storage: Storage
    public: PublicStore
    registry: Registry
    drops: DropCounter
    ingest: Ingest


def create_app(settings: Settings, storage: Storage | None = None) -> Starlette:
    """Build the ASGI application for ``settings`` (opening and migrating the database unless given one)."""
    own_storage = storage is None
    storage = storage or open_storage(settings)
    public = PublicStore(settings.public_path)
    registry = Registry(storage)
    drops = DropCounter()
    ingest = Ingest(settings, storage, registry, drops)
    state = ServerState(settings, storage, public, registry, drops, ingest)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if own_storage:
            storage.close()

    routes = [
        Route("/v1/reports/{level}", ingest.endpoint, methods=["POST"]),
        *deletion_routes(storage, drops),
        Route("/healthz", health),
        *public_routes(public),
        *admin_routes(settings.admin_token, storage, registry, drops),
        *page_routes(public, settings.site_title),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)], lifespan=lifespan)
    app.state.consentry = state
    return app
