"""The admin API: manifest registration, operator statistics and raw export, behind a bearer token.

Without a configured token (``admin_token`` or ``CONSENTRY_ADMIN_TOKEN``) every admin route answers 403.

- ``POST /admin/v1/manifests``: register an application or plugin manifest (TOML or JSON body);
- ``GET /admin/v1/stats``: stored report rows, registered applications, refusals by reason, rows per table;
- ``GET /admin/v1/export/{app}?since=&until=``: the raw rows of an application, as JSON lines.
"""

from __future__ import annotations

import datetime
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from consentry.manifest import Manifest, ManifestError, PluginManifest, loads_any_manifest
from consentry_server.ingest.routes import DropCounter, read_body
from consentry_server.ingest.validate import Rejection, bounded_text
from consentry_server.storage.base import Storage

__all__ = ["MAX_MANIFEST_BODY", "admin_routes"]

MAX_MANIFEST_BODY = 1024 * 1024
_FORMATS = {"application/toml": "toml", "application/json": "json", "text/plain": "toml"}
_Handler = Callable[[Request], Awaitable[Response]]


def _refusal(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({**Rejection(status, code, "", message).to_json(), **extra}, status_code=status)


@dataclass
class _Admin:
    token: str | None
    storage: Storage
    forget_manifests: Callable[[str], None]
    drops: DropCounter

    def guarded(self, handler: _Handler) -> _Handler:
        """``handler``, answering 403 without a configured token and 401 without the right one."""

        async def checked(request: Request) -> Response:
            if not self.token:
                return _refusal(403, "admin_disabled", "no admin token is configured")
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
                response = _refusal(401, "unauthorized", "a valid bearer token is required")
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
            return await handler(request)

        return checked

    async def register(self, request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in _FORMATS:
            return _refusal(415, "unsupported_media_type", "send the manifest as application/toml or application/json")
        try:
            body = await read_body(request, MAX_MANIFEST_BODY)
            manifest = loads_any_manifest(body.decode("utf-8"), fmt=_FORMATS[media], source="request body")
        except Rejection as rejection:
            return JSONResponse(rejection.to_json(), status_code=rejection.status)
        except UnicodeDecodeError:
            return _refusal(400, "not_utf8", "the body is not UTF-8")
        except ManifestError as error:
            problems = [
                {"field": bounded_text(field, 200), "message": bounded_text(reason, 500)}
                for field, reason in error.problems[:50]
            ]
            return _refusal(400, "invalid_manifest", str(error), problems=problems)
        created = await run_in_threadpool(self.storage.register_manifest, manifest)
        app = manifest.name if isinstance(manifest, Manifest) else manifest.host
        self.forget_manifests(app)
        document = {"app": app, "consent_version": manifest.consent_version, "registered": created}
        if isinstance(manifest, PluginManifest):
            document["plugin"] = manifest.name
        return JSONResponse(document, status_code=201 if created else 200)

    async def stats(self, _: Request) -> Response:
        count = await run_in_threadpool(self.storage.report_count)
        apps = await run_in_threadpool(self.storage.apps)
        tables = await run_in_threadpool(self.storage.statistics)
        dropped = await run_in_threadpool(self.storage.dropped)
        refused = self.drops.snapshot()
        return JSONResponse(
            {"report_rows": count, "apps": apps, "refused": refused, "dropped": dropped, "tables": tables}
        )

    async def export(self, request: Request) -> Response:
        app = request.path_params["app"]
        try:
            since, until = (_day(request.query_params.get(name)) for name in ("since", "until"))
        except ValueError:
            return _refusal(400, "bad_date", "dates are YYYY-MM-DD")
        if app not in await run_in_threadpool(self.storage.apps):
            return _refusal(404, "unknown_app", f"{app!r} is not registered")
        rows = self.storage.export(app, since=since, until=until)
        return StreamingResponse(
            (json.dumps(row, sort_keys=True) + "\n" for row in rows), media_type="application/x-ndjson"
        )


def _day(text: str | None) -> datetime.date | None:
    return datetime.date.fromisoformat(text) if text else None


def admin_routes(
    token: str | None, storage: Storage, forget_manifests: Callable[[str], None], drops: DropCounter
) -> list[Route]:
    """The admin routes; ``token`` ``None`` closes them.

    ``forget_manifests(app)`` is called after a manifest of ``app`` was registered, so that every cache of the
    registered manifests reads them again.
    """
    admin = _Admin(token, storage, forget_manifests, drops)
    return [
        Route("/admin/v1/manifests", admin.guarded(admin.register), methods=["POST"]),
        Route("/admin/v1/stats", admin.guarded(admin.stats)),
        Route("/admin/v1/export/{app}", admin.guarded(admin.export)),
    ]
