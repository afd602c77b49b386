"""Deletion requests: ``POST /v1/deletions`` with ``{"app": ..., "reporters": [...]}``.

``consentry forget APP`` sends the reporter ids of one installation for every week still inside the retention
window; the server deletes every raw report of those ids and answers how many rows it deleted. Aggregates of
the days concerned are computed again without them at the next aggregation. Nothing identifies the requester
beyond the ids themselves, which are deleted. This is the route to document for privacy (GDPR) requests.

A request is read by ingest's rules (:mod:`consentry_server.ingest.accept`): the per-source rate limit, JSON in
UTF-8 only, identity or gzip, sizes bounded as received and once decompressed, strict JSON. Refusals are
counted and logged as ingest's are.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from consentry.wire.schema import APP_NAME, REPORTER_ID
from consentry_server.ingest.accept import check_content_type, decode_text, decompress, parse_json
from consentry_server.ingest.routes import Ingest, read_body
from consentry_server.ingest.validate import Rejection
from consentry_server.storage.base import Storage

__all__ = ["MAX_REPORTERS", "deletion_routes", "parse_deletion"]

#: Most reporter ids in one request: a year of weeks and then some.
MAX_REPORTERS = 64
#: Largest request body, as received and once decompressed.
_MAX_BODY = 16 * 1024
_ROUTE = "/v1/deletions"


def parse_deletion(body: bytes) -> tuple[str, list[str]]:
    """The application and reporter ids of a (decompressed) deletion request; :class:`Rejection` if malformed."""
    document = parse_json(decode_text(body, "invalid_request"), code="invalid_request", field="")
    if not isinstance(document, dict) or set(document) != {"app", "reporters"}:
        raise Rejection(400, "invalid_request", "", 'the body must be {"app": ..., "reporters": [...]}')
    app, reporters = document["app"], document["reporters"]
    if not isinstance(app, str) or APP_NAME.regex.fullmatch(app) is None:
        raise Rejection(400, "invalid_request", "app", "not an application name")
    if not isinstance(reporters, list) or not 1 <= len(reporters) <= MAX_REPORTERS:
        raise Rejection(400, "invalid_request", "reporters", f"must list 1 to {MAX_REPORTERS} reporter ids")
    for index, reporter in enumerate(reporters):
        if not isinstance(reporter, str) or REPORTER_ID.regex.fullmatch(reporter) is None:
            raise Rejection(400, "invalid_request", f"reporters[{index}]", "not a reporter id")
    return app, sorted(set(reporters))


def deletion_routes(storage: Storage, ingest: Ingest) -> list[Route]:
    """The deletion route; ``ingest`` gives it the per-source rate limit and counts and logs its refusals."""

    async def delete(request: Request) -> JSONResponse:
        received = 0
        try:
            ingest.admit_source(request)
            check_content_type(request.headers.get("content-type"))
            body = await read_body(request, _MAX_BODY)
            received = len(body)
            app, reporters = parse_deletion(decompress(body, request.headers.get("content-encoding"), _MAX_BODY))
        except Rejection as rejection:
            return ingest.refuse(rejection, _ROUTE, received)
        deleted = await run_in_threadpool(storage.delete_reporters, app, reporters)
        return JSONResponse({"deleted": deleted})

    return [Route(_ROUTE, delete, methods=["POST"])]
