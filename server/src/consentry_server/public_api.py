"""The public JSON API: published aggregates only, never raw reports.

Routes (all ``GET``, all cacheable for a minute, CORS open):

- ``/api/v1/meta``: publication time, reporter threshold, format version;
- ``/api/v1/apps``: published applications;
- ``/api/v1/apps/{app}/installs?period=day|week[&level=L]``: distinct reporters per period;
- ``/api/v1/apps/{app}/counters?period=day|week[&kind=K]``: counter totals and their reporters;
- ``/api/v1/apps/{app}/values?period=day|week[&field=F]``: distributions (versions, OS, Python...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from consentry_server.storage.base import COUNTER_KINDS
from consentry_server.storage.public import PublicStore

__all__ = ["PERIODS", "public_routes"]

PERIODS = ("day", "week")
Endpoint = Callable[[Request], Awaitable[JSONResponse]]
CACHE = "public, max-age=60"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "field": "", "message": message}}, status_code=status)


def _ok(document: object) -> JSONResponse:
    return JSONResponse(document, headers={"Cache-Control": CACHE})


def public_routes(store: PublicStore) -> list[Route]:
    """The routes of the public API, reading ``store``."""

    async def meta(_: Request) -> JSONResponse:
        return _ok(store.meta())

    async def apps(_: Request) -> JSONResponse:
        return _ok([{"name": a.name, "title": a.title, "homepage": a.homepage} for a in store.apps()])

    def table(fetch: Callable[[str, str, str | None], list[dict[str, object]]], filter_name: str) -> Endpoint:
        """An endpoint returning the rows of one published table, optionally filtered on one column."""

        async def endpoint(request: Request) -> JSONResponse:
            app = request.path_params["app"]
            period = request.query_params.get("period", "week")
            wanted = request.query_params.get(filter_name)
            if period not in PERIODS:
                return _error(400, "bad_period", f"period must be one of {', '.join(PERIODS)}")
            if filter_name == "kind" and wanted is not None and wanted not in COUNTER_KINDS:
                return _error(400, "bad_kind", f"kind must be one of {', '.join(COUNTER_KINDS)}")
            if app not in {info.name for info in store.apps()}:
                return _error(404, "unknown_app", f"no published data for {app!r}")
            rows = fetch(app, period, wanted)
            return _ok({"app": app, "period": period, "threshold": _threshold(store), "rows": rows})

        return endpoint

    return [
        Route("/api/v1/meta", meta),
        Route("/api/v1/apps", apps),
        Route("/api/v1/apps/{app}/installs", table(store.installs, "level")),
        Route("/api/v1/apps/{app}/counters", table(store.counters, "kind")),
        Route("/api/v1/apps/{app}/values", table(store.values, "field")),
    ]


def _threshold(store: PublicStore) -> int | None:
    value = store.meta().get("threshold")
    return int(value) if value is not None else None
