"""What the transparency page says that the published data cannot: example reports, hosts, retention, opt-out.

Everything here comes from an application's registered manifest (as published) and the server's settings, never
from reports. The example report of each level is built by the client's own consent-screen code
(:func:`consentry.consent_request`), so the page shows exactly what a consent screen shows, with the
binned values of :data:`EXAMPLE_MACHINE` standing in for a user's machine (never those of the server).
"""

from __future__ import annotations

import functools
import json
import tempfile

from consentry import consent_request
from consentry.manifest import Manifest, parse_manifest
from consentry_server.config import Settings
from consentry_server.storage.public import AppInfo

__all__ = ["EXAMPLE_MACHINE", "FORMAT", "transparency_document"]

FORMAT = 1
#: A typical machine, in the client's bins: what the example reports show where a user's values would be.
EXAMPLE_MACHINE = {
    "system": {
        "os": "linux", "os_version": "ubuntu-24", "arch": "x86_64", "python": "3.12", "python_impl": "cpython",
        "cpus": "5-8", "memory": "16-32GB", "gpu": "nvidia", "screens": "1", "screen_size": "1920-2559",
        "screen_scale": "1", "installer": "pip", "interface": "gui",
    },
    "dependencies": {},
}  # fmt: skip


@functools.lru_cache(maxsize=64)
def _levels(manifest_json: str) -> tuple[dict[str, object], ...]:
    manifest = parse_manifest(json.loads(manifest_json), source="<published manifest>")
    with tempfile.TemporaryDirectory(prefix="consentry-example-") as home:
        machine = {**EXAMPLE_MACHINE, "dependencies": dict.fromkeys(_dependencies(manifest), "1.0.0")}
        request = consent_request(manifest, home=home, environ={}, example_machine=machine)
    return tuple(
        {
            "name": level.name,
            "description": level.description,
            "host": level.host,
            "example": None if level.example is None else level.example.decode(),
        }
        for level in request.levels
    )


def _dependencies(manifest: Manifest) -> list[str]:
    return [name for level in manifest.levels for name in level.dependencies]


def transparency_document(app: AppInfo, settings: Settings) -> dict[str, object]:
    """The document of ``data``-less facts the transparency page of ``app`` shows."""
    manifest = parse_manifest(app.manifest, source="<published manifest>")
    return {
        "format": FORMAT,
        "app": app.name,
        "levels": list(_levels(json.dumps(app.manifest))),
        "retention": {
            "raw_days": settings.raw_retention_days,
            "log_days": settings.log_retention_days,
            "aggregates": "kept",
        },
        "opt_out": {
            "variables": list(manifest.opt_out_variables),
            "commands": [f"consentry disable {app.name}", "consentry disable --all"],
        },
    }
