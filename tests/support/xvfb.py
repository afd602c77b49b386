"""A virtual X display for the tests that need a real one: Xvfb, started on a free display number and stopped.

napari's canvas needs OpenGL, which Qt's offscreen platform does not give it; Xvfb with Mesa's software renderer
does, on the xcb platform. The display is only for the subprocesses a test starts (one process has one Qt
platform: the rest of the suite runs Qt offscreen in the test process, see ``support.qt``). scripts/test.sh
installs Xvfb, Mesa's drivers and the xcb libraries Qt's platform plugin needs; a test skips only when Xvfb
itself is missing.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["Display", "xvfb"]

#: How long Xvfb may take to announce its display.
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class Display:
    """A running X display: its name (``:N``) and what a Qt program on it needs in its environment."""

    name: str
    log: Path

    def environment(self) -> dict[str, str]:
        """Qt on this display with the xcb platform, and Mesa's software OpenGL (no GPU, no direct rendering)."""
        return {
            "DISPLAY": self.name,
            "QT_QPA_PLATFORM": "xcb",
            "LIBGL_ALWAYS_SOFTWARE": "1",
        }


@contextmanager
def xvfb(log: Path, *, size: str = "1280x1024x24") -> Iterator[Display]:
    """Run Xvfb on a display number it picks itself (``-displayfd``: never one in use), and stop it afterwards.

    Skips the calling test when Xvfb is not installed. Xvfb's own output goes to ``log``.
    """
    program = shutil.which("Xvfb")
    if program is None:
        pytest.skip("Xvfb is not installed (scripts/test.sh installs the xvfb package)")
    read, write = os.pipe()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [program, "-displayfd", str(write), "-screen", "0", size, "-nolisten", "tcp", "-noreset"],
            pass_fds=(write,),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    os.close(write)
    try:
        number = _announced(read, process, log)
        yield Display(f":{number}", log)
    finally:
        os.close(read)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _announced(read: int, process: subprocess.Popen[bytes], log: Path) -> int:
    """The display number Xvfb writes to its ``-displayfd`` once it accepts connections."""
    deadline = time.monotonic() + START_TIMEOUT
    received = b""
    while not received.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            process.kill()
            pytest.fail(f"Xvfb did not start: {log.read_text(errors='replace')[-2000:]}")
        ready, _, _ = select.select([read], [], [], min(remaining, 0.5))
        if ready:
            chunk = os.read(read, 64)
            if not chunk:
                process.kill()
                pytest.fail(f"Xvfb closed its display pipe: {log.read_text(errors='replace')[-2000:]}")
            received += chunk
    return int(received.strip())
