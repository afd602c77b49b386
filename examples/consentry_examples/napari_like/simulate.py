"""One simulated day of a napari-like user, through the real recorder."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from consentry import PluginManifest, Recorder


class ndarray:  # noqa: N801 - stands in for numpy.ndarray; Consentry reports the class name
    """An array-like with a shape and a dtype, enough for Consentry's duck typing."""

    def __init__(self, shape: tuple[int, ...], dtype: str) -> None:
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)
        self.size = math.prod(shape)


class Array(ndarray):
    """Stands in for dask.array.Array."""


def _image(rng: random.Random) -> ndarray:
    ndim = rng.choice((2, 2, 3, 3, 4))
    side = rng.choice((256, 512, 1024, 2048))
    shape = tuple([side] * min(ndim, 3) + [rng.choice((3, 10, 50))] * (ndim - 3))
    kind = Array if rng.random() < 0.15 else ndarray
    return kind(shape, rng.choice(("uint8", "uint16", "float32", "float64")))


def simulate_day(recorder: Recorder, rng: random.Random, plugins: Sequence[tuple[PluginManifest, str]]) -> None:
    """Open some files, add layers, toggle 3D, use the installed plugins."""
    for _ in range(rng.randint(1, 6)):
        dialog = rng.random() < 0.6
        recorder.count("napari:window:file:open_files_dialog" if dialog else "napari:window:file:drag_and_drop")
        image = _image(rng)
        recorder.count("napari:layer:add_image")
        recorder.data("image", image)
        if rng.random() < 0.3:
            recorder.count("napari:layer:add_labels")
            recorder.data("labels", ndarray(image.shape, "int32"))
        if rng.random() < 0.25:
            recorder.count("napari:layer:add_points")
            recorder.data("points", ndarray((rng.randint(10, 5000), image.ndim), "float64"))
    if rng.random() < 0.4:
        recorder.count("napari:window:view:toggle_ndisplay", rng.randint(1, 8))
    if rng.random() < 0.2:
        recorder.count("napari:layer:add_shapes")
    if rng.random() < 0.3:
        recorder.count("napari:window:file:save_layers")
    if rng.random() < 0.05:
        recorder.count("napari:window:file:copy_canvas_screenshot")
    if rng.random() < 0.1:
        recorder.count("napari:window:view:toggle_fullscreen")
    for manifest, version in plugins:
        plugin = recorder.plugin(manifest, version)
        for event in manifest.events:
            if rng.random() < 0.5:
                plugin.count(event, rng.randint(1, 5))
