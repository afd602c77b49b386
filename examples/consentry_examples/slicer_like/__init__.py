"""A Slicer-like host: module events as component/event, extensions allowed or denied one by one."""

from __future__ import annotations

from importlib.resources import files

from consentry_examples.example import Example, read_manifest, read_plugins
from consentry_examples.slicer_like.simulate import simulate_day

__all__ = ["EXAMPLE", "EXTENSIONS", "MANIFEST"]

#: The manifest file, advertised through the ``consentry.manifests`` entry point.
MANIFEST = files(__name__) / "manifest.toml"
#: The folder of the example extensions' manifests.
EXTENSIONS = files(__name__) / "extensions"

_manifest = read_manifest(MANIFEST)
EXAMPLE = Example(
    manifest=_manifest,
    plugins=read_plugins(EXTENSIONS, _manifest),
    versions=("5.6.2", "5.8.0", "5.8.1"),
    plugin_versions=("2025.1.0", "2025.6.2", "2026.1.0"),
    simulate_day=simulate_day,
    weight=0.25,
)
