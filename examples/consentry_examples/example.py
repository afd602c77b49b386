"""What the demo needs to know about an example application."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable

from consentry import Manifest, PluginManifest, Recorder
from consentry.manifest import loads_manifest, loads_plugin_manifest

__all__ = ["Example", "all_examples", "read_manifest", "read_plugins"]


def read_manifest(resource: Traversable) -> Manifest:
    """Parse a packaged manifest."""
    return loads_manifest(resource.read_text("utf-8"), source=str(resource))


def read_plugins(folder: Traversable, host: Manifest) -> list[PluginManifest]:
    """Parse every plugin manifest in a packaged folder."""
    return [
        loads_plugin_manifest(item.read_text("utf-8"), host, source=str(item))
        for item in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if item.name.endswith(".toml")
    ]


@dataclass(frozen=True)
class Example:
    """An example application: its manifest, its plugins, its versions and how a day of use looks.

    ``simulate_day(recorder, rng, plugins)`` performs one day of use through the real recorder; ``plugins`` are
    the installed plugins with their versions. ``plugin_versions`` lists the releases of each plugin;
    ``weight`` is the application's share of the simulated installations.
    """

    manifest: Manifest
    plugins: Sequence[PluginManifest]
    versions: Sequence[str]
    plugin_versions: Sequence[str]
    simulate_day: Callable[[Recorder, random.Random, Sequence[tuple[PluginManifest, str]]], None]
    weight: float


def all_examples() -> list[Example]:
    """The three example applications."""
    from consentry_examples import napari_like, slicer_like, stripepy_like  # noqa: PLC0415 - avoid a cycle

    return [napari_like.EXAMPLE, stripepy_like.EXAMPLE, slicer_like.EXAMPLE]
