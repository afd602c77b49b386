"""Answers that clients and proxies may keep: published files carry an ``ETag`` and get ``304`` when unchanged."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["cacheable", "etag"]


def etag(content: bytes) -> str:
    """A strong entity tag for ``content``: part of its SHA-256."""
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def cacheable(
    request: Request,
    content: bytes,
    *,
    media_type: str,
    cache_control: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """``content`` with ``Cache-Control`` and its ``ETag``; an empty ``304`` if the request already has it."""
    tag = etag(content)
    kept = {"Cache-Control": cache_control, "ETag": tag}
    if tag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=kept)
    return Response(content, media_type=media_type, headers={**kept, **(headers or {})})
