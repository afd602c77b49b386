"""A StripePy-like command-line tool: one level, one command span per run."""

from __future__ import annotations

from importlib.resources import files

from consentry_examples.example import Example, read_manifest
from consentry_examples.stripepy_like.simulate import simulate_day

__all__ = ["EXAMPLE", "MANIFEST"]

#: The manifest file, advertised through the ``consentry.manifests`` entry point.
MANIFEST = files(__name__) / "manifest.toml"

EXAMPLE = Example(
    manifest=read_manifest(MANIFEST),
    plugins=(),
    versions=("1.1.1", "1.2.0", "1.2.1"),
    plugin_versions=(),
    simulate_day=simulate_day,
    weight=0.3,
)
