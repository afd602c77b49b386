"""Manifest v1: the allow-list an application declares, and its consent version."""

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
