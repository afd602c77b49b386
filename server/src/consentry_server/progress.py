"""Progress for long work, on stderr: a bar on a terminal, a line every few seconds elsewhere."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """``bar(done, total)`` redraws; call :meth:`finish` at the end."""

    def __init__(self, label: str, *, stream: TextIO | None = None, interval: float = 5.0) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.interval = interval
        self._last = 0.0
        self._started = time.monotonic()

    def __call__(self, done: int, total: int, note: str = "") -> None:
        """Show that ``done`` of ``total`` steps are done."""
        now = time.monotonic()
        if not self.interactive and now - self._last < self.interval and done < total:
            return
        self._last = now
        share = done / total if total else 1.0
        if self.interactive:
            filled = round(30 * share)
            bar = "#" * filled + "-" * (30 - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done}/{total} {note}".ljust(100)[:100])
        else:
            self.stream.write(f"{self.label}: {done}/{total} ({share:.0%}) {note}\n")
        self.stream.flush()

    def finish(self, note: str = "") -> None:
        """End the bar with the elapsed time."""
        elapsed = time.monotonic() - self._started
        end = "\n" if self.interactive else ""
        self.stream.write(f"{end}{self.label}: done in {elapsed:.1f} s {note}\n")
        self.stream.flush()
