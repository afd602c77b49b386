"""napari-consentry: opt-in usage statistics for napari, as NAP-8 proposes them, collected with Consentry.

An npe2 plugin: napari finds it through its ``napari.manifest`` entry point. Opening its widget (Plugins > Usage
statistics, or ``napari -w napari-consentry``) starts telemetry for the viewer: Consentry's consent dialog once,
if an answer is needed, then, with consent, the data category of each layer added and napari's menu commands, as
napari's manifest (:data:`MANIFEST`) declares them. From a script::

    import napari
    import napari_consentry

    viewer = napari.Viewer()
    napari_consentry.attach(viewer)

Importing this package costs next to nothing: napari, Qt and Consentry's Qt module are imported by :func:`attach`.
"""

from __future__ import annotations

import importlib
from importlib.resources import files
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: napari's Consentry manifest (NAP-8's levels, commands and data), advertised through ``consentry.manifests``.
MANIFEST = files(__name__) / "telemetry.toml"

#: Where each name imported on first use lives.
_LAZY = {
    "NapariTelemetry": "napari_consentry._session",
    "ViewerTelemetry": "napari_consentry._session",
    "attach": "napari_consentry._session",
    "current": "napari_consentry._session",
    "load_manifest": "napari_consentry._session",
    "UsageStatistics": "napari_consentry._widget",
    "swallowed": "napari_consentry._guard",
}

__all__ = [
    "MANIFEST",
    "NapariTelemetry",
    "UsageStatistics",
    "ViewerTelemetry",
    "__version__",
    "attach",
    "current",
    "load_manifest",
    "swallowed",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from napari_consentry._guard import swallowed
    from napari_consentry._session import NapariTelemetry, ViewerTelemetry, attach, current, load_manifest
    from napari_consentry._widget import UsageStatistics
