"""The ASGI application: ingest, the public API and pages, the admin API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry_server.admin.api import admin_routes
from consentry_server.admin.retention import retention_loop
from consentry_server.commit.process import ProcessStorer
from consentry_server.commit.storer import Storer, ThreadStorer
from consentry_server.commit.writer import BatchWriter
from consentry_server.config import Settings
from consentry_server.ingest import otlp, seed_formats
from consentry_server.ingest.accept import Acceptor, rate_limiter
from consentry_server.ingest.addresses import parse_networks
from consentry_server.ingest.deletion import deletion_routes
from consentry_server.ingest.manifests import Registry
from consentry_server.ingest.routes import DropCounter, Ingest
from consentry_server.ingest.validate import Rejection
from consentry_server.openapi import openapi
from consentry_server.public import badges, open_data
from consentry_server.public.api import public_routes
from consentry_server.public.pages import page_routes
from consentry_server.publish.certificates import certificate_routes
from consentry_server.storage import PublicStore, Storage, StorageUnavailable, open_storage

__all__ = ["ServerState", "create_app", "create_public_app"]

_Lifespan = Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]
logger = logging.getLogger("consentry_server")

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
    (b"cross-origin-resource-policy", b"same-site"),
]

#: Read-only public data, which anyone may fetch from any site (open data, badges in READMEs): open CORS.
_OPEN_PREFIXES = ("/api/", "/data/", "/badges/")
_OPEN_SECURITY_HEADERS = [
    (name, b"cross-origin" if name == b"cross-origin-resource-policy" else value) for name, value in _SECURITY_HEADERS
]


class _SecurityHeaders:
    """Adds security headers to every response, and open CORS to the read-only public API, data and badges."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        public_api = scope["path"].startswith(_OPEN_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_SECURITY_HEADERS if not public_api else _OPEN_SECURITY_HEADERS)
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
    storer: Storer
    ingest: Ingest


async def _health(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _openapi(_: Request) -> JSONResponse:
    return JSONResponse(openapi())


async def _unavailable(_: Request, error: Exception) -> JSONResponse:
    """503 with ``Retry-After`` when a route finds the database unavailable (PostgreSQL down): one log line."""
    logger.warning("answered 503: %s", error)
    rejection = Rejection(503, "storage_unavailable", "", "the database is unavailable; try again later", 60)
    return JSONResponse(rejection.to_json(), status_code=503, headers={"Retry-After": str(rejection.retry_after)})


def _application(routes: list[Route], lifespan: _Lifespan) -> Starlette:
    return Starlette(
        routes=routes,
        middleware=[Middleware(_SecurityHeaders)],
        exception_handlers={StorageUnavailable: _unavailable},
        lifespan=lifespan,
    )


def _public_side(public: PublicStore, settings: Settings) -> list[Route]:
    """The routes that read only the public store (and the certificates' public key): API, data, badges, pages."""
    return [
        *public_routes(public),
        *certificate_routes(settings),
        *open_data.routes(public),
        *badges.routes(public),
        *page_routes(public, settings),
    ]


def create_public_app(settings: Settings) -> Starlette:
    """The public side alone: pages and the public API over the public store, with no access to raw reports."""
    public = PublicStore(settings.public_path)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield

    routes = [Route("/healthz", _health), *_public_side(public, settings)]
    return _application(routes, lifespan)


def create_app(settings: Settings, storage: Storage | None = None) -> Starlette:
    """Build the ASGI application for ``settings`` (opening and migrating the database unless given one).

    Reports are stored by a storing process of their own (:mod:`consentry_server.commit.process`) when the
    application opens the database itself and ``settings.storing_process`` is on; given a storage object,
    which another process cannot share, the application stores reports in a writer thread of its own.
    """
    own_storage = storage is None
    storage = storage or open_storage(settings)
    public = PublicStore(settings.public_path)
    registry = Registry(storage)
    drops = DropCounter()
    limiter = rate_limiter(settings)
    storer: Storer
    if own_storage and settings.storing_process:
        storer = ProcessStorer(settings)
    else:
        storer = ThreadStorer(Acceptor(settings, registry, limiter), BatchWriter(storage))
    trusted = parse_networks(settings.trusted_proxies)

    def forget_manifests(app: str) -> None:
        registry.invalidate(app)
        storer.forget_manifests(app)

    ingest = Ingest(settings, storer, drops, limiter, trusted)
    state = ServerState(settings, storage, public, registry, drops, storer, ingest)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await storer.start()
        task = None
        if settings.retention_interval_hours:
            task = asyncio.create_task(retention_loop(storage, settings))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            await storer.close()
            if own_storage:
                storage.close()

    routes = [
        Route("/v1/reports/{level}", ingest.endpoint, methods=["POST"]),
        *seed_formats.routes(ingest, registry),
        *otlp.routes(ingest, registry),
        *deletion_routes(storage, ingest),
        Route("/healthz", _health),
        Route("/openapi.json", _openapi),
        *admin_routes(settings.admin_token, storage, forget_manifests, drops),
        *_public_side(public, settings),
    ]
    app = _application(routes, lifespan)
    app.state.consentry = state
    return app
