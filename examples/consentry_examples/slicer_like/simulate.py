"""One simulated day of a slicer-like user: module switches and extension features."""

from __future__ import annotations

import random
from collections.abc import Sequence

from consentry import PluginManifest, Recorder

_MODULES = ("Data/enter", "Volumes/enter", "SegmentEditor/enter", "Markups/enter")


def simulate_day(recorder: Recorder, rng: random.Random, plugins: Sequence[tuple[PluginManifest, str]]) -> None:
    """Load data, switch between modules, segment, run extension features."""
    if rng.random() < 0.2:
        recorder.count("SampleData/load")
    if rng.random() < 0.4:
        recorder.count("DICOM/import", rng.randint(1, 3))
    for _ in range(rng.randint(2, 12)):
        recorder.count(rng.choice(_MODULES))
    if rng.random() < 0.5:
        recorder.count("SegmentEditor/effect/threshold", rng.randint(1, 6))
        recorder.count("SegmentEditor/effect/paint", rng.randint(0, 20) or 1)
    for manifest, version in plugins:
        extension = recorder.plugin(manifest, version)
        for event in manifest.events:
            if rng.random() < 0.4:
                extension.count(event, rng.randint(1, 3))
