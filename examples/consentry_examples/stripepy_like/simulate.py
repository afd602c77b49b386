"""One simulated day of a stripepy-like user: a few command runs, recorded as spans."""

from __future__ import annotations

import random
from collections.abc import Sequence

from consentry import PluginManifest, Recorder

_RESOLUTIONS = ("5000", "10000", "10000", "25000", "50000", "100000")


def simulate_day(recorder: Recorder, rng: random.Random, plugins: Sequence[tuple[PluginManifest, str]]) -> None:
    """Download a sample once in a while, call stripes a few times, plot and view the results."""
    del plugins  # the command-line tool has none
    if rng.random() < 0.15:
        name = rng.choice(("4DNFI3RFZLZ5", "ENCFF993FGR", "4DNFI6HDY7WZ", "ENCFF018NLB"))
        recorder.record_command("download", {"name": name}, duration=rng.uniform(5, 400))
    for _ in range(rng.randint(1, 4)):
        failed = rng.random() < 0.08
        params = {
            "format": rng.choice(("hic", "hic", "cool", "mcool")),
            "resolution": rng.choice(_RESOLUTIONS),
            "nproc": rng.choice((None, 4, 8, 16)),
            "force": rng.random() < 0.2,
            "normalization": rng.choice((None, "NONE", "KR", "VC")),
        }
        recorder.record_command(
            "call",
            params,
            duration=rng.lognormvariate(3.5, 1.2),
            exit_code=1 if failed else 0,
            exception=rng.choice(("FileNotFoundError", "MemoryError", "ValueError")) if failed else None,
        )
    if rng.random() < 0.5:
        plot = rng.choice(("contact-map", "pseudodistribution", "stripe-hist"))
        recorder.record_command("plot", {"plot-type": plot}, duration=rng.uniform(0.5, 30))
    if rng.random() < 0.3:
        recorder.record_command("view", {"with-biodescriptors": rng.random() < 0.5}, duration=rng.uniform(0.1, 3))
