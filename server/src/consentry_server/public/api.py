"""The public JSON API: published aggregates only, never raw reports.

Routes (all ``GET``, all cacheable for a minute, CORS open):

- ``/api/v1/meta``: publication time, reporter threshold, format version, noise (:func:`meta_document`);
- ``/api/v1/apps``: published applications;
- ``/api/v1/apps/{app}/installs?period=day|week|month[&level=L]``: distinct reporters per period;
- ``/api/v1/apps/{app}/counters?period=day|week|month[&kind=K]``: counter totals and their reporters;
- ``/api/v1/apps/{app}/values?period=day|week|month[&field=F]``: distributions (versions, OS, Python...).

The three tables also take ``since`` and ``until`` (ISO dates, compared with the first day of each period).
``period=day`` answers at most :data:`_MAX_DAYS` days at a time, by default those ending on the day of the
publication; every day of the year is in the open-data files (:mod:`consentry_server.public.open_data`).

Published data changes only when it is published again: each answer is rendered once per publication and kept
(see :class:`~consentry_server.storage.public.PublicationCache`), so a repeated call costs a lookup.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consentry_server.storage.base import COUNTER_KINDS
from consentry_server.storage.base import PERIODS as STORED_PERIODS
from consentry_server.storage.public import PublicationCache, PublicStore

__all__ = ["PERIODS", "meta_document", "public_routes"]

PERIODS = STORED_PERIODS
#: Most days one ``period=day`` answer covers.
_MAX_DAYS = 92
_Endpoint = Callable[[Request], Awaitable[Response]]


class _Fetch(Protocol):
    """A reader of one published table of :class:`PublicStore`."""

    def __call__(
        self, app: str, period: str, wanted: str | None, /, *, since: str | None, until: str | None
    ) -> list[dict[str, object]]: ...


_CACHE = "public, max-age=60"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "field": "", "message": message}}, status_code=status)


def _ok(document: object) -> JSONResponse:
    return JSONResponse(document, headers={"Cache-Control": _CACHE})


def public_routes(store: PublicStore) -> list[Route]:
    """The routes of the public API, reading ``store``."""
    answers: PublicationCache[tuple[int, bytes]] = PublicationCache(store)

    def cached(render: Callable[[Request], JSONResponse]) -> _Endpoint:
        """``render``'s answer to the request's path and query, kept for the publication."""

        async def endpoint(request: Request) -> Response:
            def compute() -> tuple[int, bytes]:
                response = render(request)
                return response.status_code, bytes(response.body)

            status, body = answers.get(str(request.url.path) + "?" + str(request.url.query), compute)
            headers = {"Cache-Control": _CACHE} if status == 200 else None  # noqa: PLR2004 - only what succeeded
            return Response(body, status_code=status, media_type="application/json", headers=headers)

        return endpoint

    def meta(_: Request) -> JSONResponse:
        return _ok(meta_document(store.meta()))

    def apps(_: Request) -> JSONResponse:
        return _ok([{"name": a.name, "title": a.title, "homepage": a.homepage} for a in store.apps()])

    def table(fetch: _Fetch, filter_name: str) -> _Endpoint:
        """An endpoint returning the rows of one published table, optionally filtered on one column."""

        def render(request: Request) -> JSONResponse:
            app = request.path_params["app"]
            period = request.query_params.get("period", "week")
            wanted = request.query_params.get(filter_name)
            if period not in PERIODS:
                return _error(400, "bad_period", f"period must be one of {', '.join(PERIODS)}")
            if filter_name == "kind" and wanted is not None and wanted not in COUNTER_KINDS:
                return _error(400, "bad_kind", f"kind must be one of {', '.join(COUNTER_KINDS)}")
            if app not in store.app_names():
                return _error(404, "unknown_app", f"no published data for {app!r}")
            try:
                since, until = _window(request, period, store.meta().get("published_at"))
            except ValueError as error:
                return _error(400, "bad_range", str(error))
            rows = fetch(app, period, wanted, since=since, until=until)
            document = {"app": app, "period": period, "threshold": _threshold(store), "rows": rows}
            return _ok(document | {"since": since, "until": until} if since or until else document)

        return cached(render)

    return [
        Route("/api/v1/meta", cached(meta)),
        Route("/api/v1/apps", cached(apps)),
        Route("/api/v1/apps/{app}/installs", table(store.installs, "level")),
        Route("/api/v1/apps/{app}/counters", table(store.counters, "kind")),
        Route("/api/v1/apps/{app}/values", table(store.values, "field")),
    ]


#: Keys of the publication's description that hold whole numbers (the public store keeps every value as text).
_NUMBERS = ("format", "threshold", "publication")


def meta_document(meta: Mapping[str, str]) -> dict[str, object]:
    """The publication's description as ``/api/v1/meta`` answers it: numbers as JSON numbers, as in ``index.json``.

    ``format``, ``threshold`` and ``publication`` are integers; ``noise`` is ``null`` (exact numbers) or the
    noise's parameters as an object; ``published_at`` and ``suppression`` are text. Empty before the first
    publication.
    """
    document: dict[str, object] = dict(meta)
    for key in _NUMBERS:
        value = meta.get(key)
        if value is not None:
            document[key] = int(value) if value.lstrip("-").isdigit() else None
    if "noise" in meta:
        document["noise"] = None if meta["noise"] == "none" else json.loads(meta["noise"])
    return document


def _threshold(store: PublicStore) -> int | None:
    value = store.meta().get("threshold")
    return int(value) if value is not None else None


def _date(text: str | None, name: str) -> datetime.date | None:
    if not text:
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} must be a date as YYYY-MM-DD") from None


def _window(request: Request, period: str, published_at: str | None) -> tuple[str | None, str | None]:
    """The ``since`` and ``until`` of a request, checked; for days, at most :data:`_MAX_DAYS` of them."""
    since = _date(request.query_params.get("since"), "since")
    until = _date(request.query_params.get("until"), "until")
    if since and until and since > until:
        raise ValueError("since is after until")
    if period == "day":
        span = datetime.timedelta(days=_MAX_DAYS - 1)
        if since is None:
            end = until or (datetime.date.fromisoformat(published_at[:10]) if published_at else None)
            since = end - span if end else None
        if since is not None and until is None:
            until = since + span
        if since and until and until - since > span:
            raise ValueError(f"period=day answers at most {_MAX_DAYS} days at a time; the open data has every day")
    return (since.isoformat() if since else None), (until.isoformat() if until else None)
