"""A tiny slicer-like host: its modules and two extensions report usage through the host's one function.

As in 3D Slicer, where modules and extensions call ``slicer.app.logUsageEvent(component, event)``, the
application offers :meth:`SlicerLikeApp.log_usage_event`, and Consentry's :class:`consentry.UsageEvents` decides
what counts: the host's own events (``SegmentEditor/enter``) by the host's manifest, an extension's events by the
extension's manifest, and the latter only for extensions in the public index that the user allowed
(``consentry plugins slicer-like --allow TotalSegmentator``). Run ``python -m consentry_examples.slicer_like``.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence

import consentry
from consentry import NullRecorder, Recorder
from consentry_examples.slicer_like import EXAMPLE

__all__ = ["SlicerIGT", "SlicerLikeApp", "TotalSegmentator", "main"]

Volume = list[float]


class TotalSegmentator:
    """An extension that segments a volume (here: counts the voxels above a threshold)."""

    name = "TotalSegmentator"
    version = "2025.6.2"

    def __init__(self, app: SlicerLikeApp) -> None:
        self.app = app

    def segment(self, volume: Volume, modality: str = "ct") -> int:
        """Segment the whole body; return the number of voxels in the segmentation."""
        self.app.log_usage_event(self.name, f"segmentation/{modality}/total")
        return sum(1 for voxel in volume if voxel > 0.6)


class SlicerIGT:
    """An extension for image-guided therapy: a tracker connection and pivot calibration."""

    name = "SlicerIGT"
    version = "2026.1.0"

    def __init__(self, app: SlicerLikeApp) -> None:
        self.app = app

    def connect(self) -> None:
        """Connect to a (pretend) tracking device."""
        self.app.log_usage_event(self.name, "OpenIGTLinkIF/connect")

    def pivot_calibration(self, tips: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
        """The pivot point of a tool from its tip positions (here: their mean)."""
        self.app.log_usage_event(self.name, "PivotCalibration/run")
        count = len(tips) or 1
        x, y, z = (round(sum(tip[axis] for tip in tips) / count, 2) for axis in range(3))
        return x, y, z


class SlicerLikeApp:
    """The host: modules, installed extensions, and the function they all report usage through."""

    def __init__(self, telemetry: Recorder | NullRecorder) -> None:
        self.usage = consentry.UsageEvents(telemetry)
        self.module = "Welcome"
        self.volume: Volume = []
        self.extensions: dict[str, TotalSegmentator | SlicerIGT] = {}

    def log_usage_event(self, component: str, event: str) -> None:
        """What modules and extensions call (Slicer's ``logUsageEvent``); never raises."""
        self.usage.log_usage_event(component, event)

    def install(self, extension: TotalSegmentator | SlicerIGT) -> None:
        """Install an extension; Consentry learns its events from the manifest it ships."""
        manifest = next(plugin for plugin in EXAMPLE.plugins if plugin.name == extension.name)
        self.usage.add_extension(manifest, extension.version)
        self.extensions[extension.name] = extension

    def select_module(self, name: str) -> None:
        """Switch to a module."""
        self.module = name
        self.log_usage_event(name, "enter")

    def load_sample_data(self, seed: int = 0) -> None:
        """Load a sample volume (random numbers)."""
        rng = random.Random(seed)
        self.volume = [rng.random() for _ in range(4096)]
        self.log_usage_event("SampleData", "load")

    def threshold(self, low: float) -> int:
        """The Segment Editor's threshold effect: how many voxels are above ``low``."""
        self.log_usage_event("SegmentEditor", "effect/threshold")
        return sum(1 for voxel in self.volume if voxel >= low)


def main(argv: Sequence[str] | None = None) -> int:
    """A short session: load data, switch modules, segment, track; each step reported through the host."""
    parser = argparse.ArgumentParser(prog="python -m consentry_examples.slicer_like", description=__doc__)
    parser.add_argument("--without", action="append", default=[], choices=["SlicerIGT", "TotalSegmentator"])
    args = parser.parse_args(argv)
    telemetry = consentry.init(EXAMPLE.manifest, prompt=True)  # asks on a terminal, once
    app = SlicerLikeApp(telemetry)
    for extension in (TotalSegmentator(app), SlicerIGT(app)):
        if extension.name not in args.without:
            app.install(extension)
    app.load_sample_data()
    app.select_module("Data")
    app.select_module("SegmentEditor")
    print(f"threshold: {app.threshold(0.5)} voxels")
    segmenter = app.extensions.get("TotalSegmentator")
    if isinstance(segmenter, TotalSegmentator):
        print(f"TotalSegmentator: {segmenter.segment(app.volume)} voxels")
    tracker = app.extensions.get("SlicerIGT")
    if isinstance(tracker, SlicerIGT):
        tracker.connect()
        print(f"SlicerIGT: pivot at {tracker.pivot_calibration([(1.0, 2.0, 3.0), (1.2, 2.2, 2.8)])}")
    app.log_usage_event("NotAModule", "enter")  # not in any manifest: dropped, never raised
    print(f"not recording usage ({telemetry.reason})" if isinstance(telemetry, NullRecorder) else "recording usage")
    return 0
