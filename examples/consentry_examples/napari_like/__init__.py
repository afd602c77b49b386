"""A napari-like image viewer: NAP-8's four levels, plugins with their own manifests, data categories."""

from __future__ import annotations

from importlib.resources import files

from consentry_examples.example import Example, read_manifest, read_plugins
from consentry_examples.napari_like.simulate import simulate_day

__all__ = ["EXAMPLE", "MANIFEST", "PLUGINS"]

#: The manifest file, advertised through the ``consentry.manifests`` entry point.
MANIFEST = files(__name__) / "manifest.toml"
#: The folder of the example plugins' manifests.
PLUGINS = files(__name__) / "plugins"

_manifest = read_manifest(MANIFEST)
EXAMPLE = Example(
    manifest=_manifest,
    plugins=read_plugins(PLUGINS, _manifest),
    versions=("0.5.4", "0.5.5", "0.5.6", "0.6.0"),
    plugin_versions=("0.2.0", "0.3.1", "1.0.0"),
    simulate_day=simulate_day,
    weight=0.45,
)
