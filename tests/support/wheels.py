"""Building the project's wheels as a user's ``pip`` would, for the tests of what users install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.paths import ROOT

__all__ = ["build_wheel"]


def build_wheel(project: str, destination: Path) -> Path:
    """Build the wheel of ``project`` (``client``, ``server``, ``examples``) into ``destination``; its path."""
    before = set(destination.glob("*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(destination),
            str(ROOT / project),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = set(destination.glob("*.whl")) - before
    return wheel
