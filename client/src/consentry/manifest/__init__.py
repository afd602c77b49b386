"""Manifest v1: the allow-list an application declares, and its consent version.

Names are imported from their modules on first use: a manifest read back from the start-up cache
(:mod:`consentry._local.startup_cache`) needs only the model, not the parser and the wire schema it validates against.
"""

from __future__ import annotations

from consentry._lazy import lazy_exports

TYPE_CHECKING = False  # not imported from typing: see pyproject.toml

_EXPORTS = {
    "NONE_LEVEL": "consentry.manifest.model",
    "CommandSpec": "consentry.manifest.model",
    "EventSpec": "consentry.manifest.model",
    "Level": "consentry.manifest.model",
    "Manifest": "consentry.manifest.model",
    "PluginManifest": "consentry.manifest.model",
    "PluginPolicy": "consentry.manifest.model",
    "MANIFEST_VERSION": "consentry.manifest.parse",
    "ManifestError": "consentry.manifest.parse",
    "load_any_manifest": "consentry.manifest.parse",
    "load_manifest": "consentry.manifest.parse",
    "load_plugin_manifest": "consentry.manifest.parse",
    "loads_any_manifest": "consentry.manifest.parse",
    "loads_manifest": "consentry.manifest.parse",
    "loads_plugin_manifest": "consentry.manifest.parse",
    "parse_manifest": "consentry.manifest.parse",
    "parse_plugin_manifest": "consentry.manifest.parse",
}

__all__ = [
    "MANIFEST_VERSION",
    "NONE_LEVEL",
    "CommandSpec",
    "EventSpec",
    "Level",
    "Manifest",
    "ManifestError",
    "PluginManifest",
    "PluginPolicy",
    "load_any_manifest",
    "load_manifest",
    "load_plugin_manifest",
    "loads_any_manifest",
    "loads_manifest",
    "loads_plugin_manifest",
    "parse_manifest",
    "parse_plugin_manifest",
]

if not TYPE_CHECKING:  # to a type checker, a module-level __getattr__ would make every name exist
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)

if TYPE_CHECKING:
    from consentry.manifest.model import (
        NONE_LEVEL,
        CommandSpec,
        EventSpec,
        Level,
        Manifest,
        PluginManifest,
        PluginPolicy,
    )
    from consentry.manifest.parse import (
        MANIFEST_VERSION,
        ManifestError,
        load_any_manifest,
        load_manifest,
        load_plugin_manifest,
        loads_any_manifest,
        loads_manifest,
        loads_plugin_manifest,
        parse_manifest,
        parse_plugin_manifest,
    )
