"""The upload formats of the systems in the seeds, mapped into the native ingest pipeline.

- :mod:`.slicer`: 3D Slicer's Telemetry extension, ``POST /telemetry`` and ``POST /telemetry/{app}``;
- :mod:`.dfx`: dfx's newline-delimited command records, ``POST /dfx/v1/commands``.

Both build native reports and hand them to :meth:`Ingest.store <consentry_server.ingest.routes.Ingest.store>`
(:mod:`.endpoint`), so they are validated against the registered manifests, rate-limited and stored exactly as
native reports are. See ``docs/seed-formats.md``.
"""

from __future__ import annotations

from starlette.routing import Route

from consentry_server.ingest.manifests import Registry
from consentry_server.ingest.routes import Ingest
from consentry_server.ingest.seed_formats import dfx, slicer

__all__ = ["routes"]


def routes(ingest: Ingest, registry: Registry) -> list[Route]:
    """The routes of every seed format."""
    return [*slicer.routes(ingest, registry), *dfx.routes(ingest, registry)]
