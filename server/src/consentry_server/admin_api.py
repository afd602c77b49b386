"""The admin API: manifest registration and operator statistics, behind a bearer token.

Without a configured token (``admin_token`` or ``CONSENTRY_ADMIN_TOKEN``) every admin route answers 403.

- ``POST /admin/v1/manifests``: register an application or plugin manifest (TOML or JSON body);
- ``GET /admin/v1/stats``: stored report rows, registered applications, refusals by reason.
"""

from __future__ import annotations

import hmac
import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from consentry.manifest import Manifest, ManifestError, PluginManifest, loads_any_manifest
from consentry_server.ingest import DropCounter, read_body
from consentry_server.registry import Registry
from consentry_server.storage.base import Storage
from consentry_server.validate import Rejection

__all__ = ["admin_routes"]

MAX_MANIFEST_BODY = 1024 * 1024


def admin_routes(token: str | None, storage: Storage, registry: Registry, drops: DropCounter) -> list[Route]:
    """The admin routes; ``token`` ``None`` closes them."""

    def authorized(request: Request) -> JSONResponse | None:
        if not token:
            return JSONResponse(
                {"error": {"code": "admin_disabled", "field": "", "message": "no admin token is configured"}},
                status_code=403,
            )
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            return JSONResponse(
                {"error": {"code": "unauthorized", "field": "", "message": "a valid bearer token is required"}},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None

    async def register(request: Request) -> JSONResponse:
        denied = authorized(request)
        if denied is not None:
            return denied
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        formats = {"application/toml": "toml", "application/json": "json", "text/plain": "toml"}
        if media not in formats:
            message = "send the manifest as application/toml or application/json"
            return JSONResponse(Rejection(415, "unsupported_media_type", "", message).to_json(), status_code=415)
        try:
            body = await read_body(request, MAX_MANIFEST_BODY)
            text = body.decode("utf-8")
            manifest = loads_any_manifest(text, fmt=formats[media], source="request body")
        except Rejection as rejection:
            return JSONResponse(rejection.to_json(), status_code=rejection.status)
        except UnicodeDecodeError:
            return JSONResponse(Rejection(400, "not_utf8", "", "the body is not UTF-8").to_json(), status_code=400)
        except ManifestError as error:
            problems = [{"field": field, "message": reason} for field, reason in error.problems]
            body_json = {
                "error": {"code": "invalid_manifest", "field": "", "message": str(error)},
                "problems": problems,
            }
            return JSONResponse(body_json, status_code=400)
        created = await run_in_threadpool(storage.register_manifest, manifest)
        app = manifest.name if isinstance(manifest, Manifest) else manifest.host
        registry.invalidate(app)
        document = {"app": app, "consent_version": manifest.consent_version, "registered": created}
        if isinstance(manifest, PluginManifest):
            document["plugin"] = manifest.name
        return JSONResponse(document, status_code=201 if created else 200)

    async def stats(request: Request) -> JSONResponse:
        denied = authorized(request)
        if denied is not None:
            return denied
        count = await run_in_threadpool(storage.report_count)
        apps = await run_in_threadpool(storage.apps)
        return JSONResponse(json.loads(json.dumps({"report_rows": count, "apps": apps, "refused": drops.snapshot()})))

    return [
        Route("/admin/v1/manifests", register, methods=["POST"]),
        Route("/admin/v1/stats", stats),
    ]
