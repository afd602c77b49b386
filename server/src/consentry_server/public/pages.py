"""The public dashboard: one HTML page, its scripts and styles, and the transparency documents it reads.

The page (``dashboard/index.html``) is a shell; ``dashboard/static/app.js`` draws every view in the browser from
the open-data files (:mod:`consentry_server.public.open_data`, ``data/v1/...``), which hold published aggregates only,
and from ``transparency/{app}.json`` (:mod:`consentry_server.public.transparency`). Every URL the page uses is relative,
so the same files work served from here or written as a static site (:mod:`consentry_server.public.site`) under any
path. Nothing is loaded from another host: the chart library and the country shapes ship in ``static/vendor/``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from consentry_server.config import Settings
from consentry_server.public.transparency import transparency_document
from consentry_server.publish.certificates import CertificateError, public_key_document
from consentry_server.storage.public import PublicationCache, PublicStore

__all__ = ["DASHBOARD", "STATIC", "page_routes", "render_shell", "static_files", "transparency_json"]

DASHBOARD = Path(__file__).parent / "dashboard"
STATIC = DASHBOARD / "static"
#: The shell names no data, but its title may change with the settings.
_SHELL_CACHE = "public, max-age=60"
#: Scripts, styles and vendored files change only with the package.
_STATIC_CACHE = "public, max-age=3600"
_TRANSPARENCY_CACHE = "public, max-age=300"


def render_shell(title: str) -> str:
    """The HTML page, with the site's ``title``."""
    return (DASHBOARD / "index.html").read_text("utf-8").replace("{{title}}", html.escape(title))


def static_files() -> list[Path]:
    """Every file under ``static/``, relative to it."""
    return sorted(path.relative_to(STATIC) for path in STATIC.rglob("*") if path.is_file())


def _certificate_key(settings: Settings) -> dict[str, str] | None:
    """The key that signs usage certificates, as ``GET /api/v1/certificates/key`` answers it; ``None`` if none."""
    try:
        return public_key_document(settings)
    except (CertificateError, OSError):
        return None


def _transparency_document(store: PublicStore, settings: Settings, app: str) -> dict[str, object] | None:
    info = next((info for info in store.apps() if info.name == app), None)
    return None if info is None else transparency_document(info, settings)


def _with_key(document: dict[str, object], settings: Settings) -> bytes:
    """The document with the certificate key (``certificate_key``, ``null`` before there is one).

    The page reads the key here rather than from ``api/v1/certificates/key``, which answers 404 (an error in the
    browser's console) on a server or site without a key.
    """
    full = {**document, "certificate_key": _certificate_key(settings)}
    return json.dumps(full, separators=(",", ":"), ensure_ascii=False).encode()


def transparency_json(store: PublicStore, settings: Settings, app: str) -> bytes | None:
    """The transparency document of a published ``app``, with the certificate key, or ``None``."""
    document = _transparency_document(store, settings, app)
    return None if document is None else _with_key(document, settings)


def page_routes(store: PublicStore, settings: Settings) -> list[Route]:
    """``GET /``, ``/static/...`` and ``/transparency/{app}.json``."""
    files = {path.as_posix() for path in static_files()}
    page = render_shell(settings.site_title)
    documents: PublicationCache[dict[str, object] | None] = PublicationCache(store)

    async def shell(_: Request) -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": _SHELL_CACHE})

    async def static(request: Request) -> Response:
        path = request.path_params["path"]
        if path not in files:  # only the packaged files, so no path can climb out of the folder
            return Response("not found\n", status_code=404, media_type="text/plain")
        media = "text/javascript" if path.endswith(".js") else None
        return FileResponse(STATIC / path, media_type=media, headers={"Cache-Control": _STATIC_CACHE})

    async def transparency(request: Request) -> Response:
        name = request.path_params["name"]
        app = name.removesuffix(".json")
        document = (
            documents.get(app, lambda: _transparency_document(store, settings, app)) if name.endswith(".json") else None
        )
        if document is None:
            return JSONResponse({"error": {"code": "not_found", "field": "", "message": "no such app"}}, 404)
        # The key is read at each request (a file), so a key made after the publication shows at once.
        content = _with_key(document, settings)
        return Response(content, media_type="application/json", headers={"Cache-Control": _TRANSPARENCY_CACHE})

    return [
        Route("/", shell),
        Route("/static/{path:path}", static),
        Route("/transparency/{name}", transparency),
    ]
