"""What the server knows about one application: every registered version of its manifest, and its plugins."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from consentry.manifest import Manifest, ManifestError, PluginManifest, parse_manifest, parse_plugin_manifest

__all__ = ["Catalog"]


@dataclass(frozen=True)
class Catalog:
    """Registered manifests of one application.

    ``versions`` maps each consent version ever registered to its manifest; ``latest`` is the one registered
    last; ``plugins`` maps plugin names to their latest registered plugin manifest.
    """

    latest: Manifest
    versions: Mapping[str, Manifest] = field(default_factory=dict)
    plugins: Mapping[str, PluginManifest] = field(default_factory=dict)

    @classmethod
    def from_documents(cls, app: str, rows: Iterable[tuple[str, str]]) -> Catalog | None:
        """The catalog of ``app`` from its stored manifests, oldest first: ``(plugin name or "", JSON document)``.

        ``None`` if no application manifest of ``app`` can be read. A manifest this version cannot read is
        skipped, not fatal.
        """
        versions: dict[str, Manifest] = {}
        plugins: dict[str, PluginManifest] = {}
        latest = None
        for plugin, document in rows:
            try:
                if plugin:
                    plugins[plugin] = parse_plugin_manifest(json.loads(document), source=f"registered {plugin}")
                else:
                    latest = parse_manifest(json.loads(document), source=f"registered {app}")
                    versions[latest.consent_version] = latest
            except (ManifestError, ValueError):
                continue
        if latest is None:
            return None
        return cls(latest, versions, plugins)

    @property
    def app(self) -> str:
        """The application's name."""
        return self.latest.name

    def manifest_for(self, consent_version: str) -> Manifest:
        """The manifest a report was collected under: the registered version, else the latest."""
        return self.versions.get(consent_version, self.latest)

    def is_public_plugin(self, name: str) -> bool:
        """Whether ``name`` may be reported by name: listed by the application, or registered as public."""
        if self.latest.plugins.policy == "listed":
            return name in self.latest.plugins.public
        if self.latest.plugins.policy == "declared":
            plugin = self.plugins.get(name)
            return plugin is not None and plugin.public
        return False
