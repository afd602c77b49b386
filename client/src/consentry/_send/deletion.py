"""Deletion requests: asking each server that received this install's reports to delete them.

The request names the application and the reporter ids of this install for every week still inside the
server's retention window; it goes to ``/v1/deletions`` on the origin of each level's endpoint. Each server
answers how many stored rows it deleted. Only then does ``consentry forget`` delete the local secret, without
which these ids could not be computed again.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass

from consentry._local.session import AppSession
from consentry._send.upload import USER_AGENT
from consentry.transport import Request, Transport, TransportError

__all__ = ["DeletionOutcome", "request_deletion"]

#: Days of raw reports a server keeps by default; ids older than that are gone anyway.
RETENTION_DAYS = 60


@dataclass(frozen=True)
class DeletionOutcome:
    """One server's answer to a deletion request."""

    url: str
    ok: bool
    deleted: int | None
    message: str


def _origins(session: AppSession) -> list[str]:
    origins = set()
    for level in session.manifest.levels:
        if level.endpoint:
            parts = urllib.parse.urlsplit(level.endpoint)
            origins.add(f"{parts.scheme}://{parts.netloc}")
    return sorted(origins)


def request_deletion(
    session: AppSession, transport: Transport, *, retention_days: int = RETENTION_DAYS
) -> list[DeletionOutcome]:
    """Ask every server of ``session``'s application to delete this install's reports."""
    reporters = session.reporter_ids(retention_days)
    if not reporters:
        return []
    body = json.dumps({"app": session.manifest.name, "reporters": reporters}).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    outcomes = []
    for origin in _origins(session):
        url = f"{origin}/v1/deletions"
        try:
            response = transport.send(Request(url, body, headers, timeout=15.0))
        except TransportError as error:
            outcomes.append(DeletionOutcome(url, ok=False, deleted=None, message=str(error)))
            continue
        deleted = None
        try:
            answer = json.loads(response.body)
            deleted = answer.get("deleted") if isinstance(answer, dict) else None
        except ValueError:
            pass
        ok = 200 <= response.status < 300  # noqa: PLR2004
        message = "deleted" if ok else f"HTTP {response.status}: {response.body[:200].decode('utf-8', 'replace')}"
        outcomes.append(
            DeletionOutcome(url, ok=ok, deleted=deleted if isinstance(deleted, int) else None, message=message)
        )
    return outcomes
