"""The ``server`` fixture (a real ``consentry-server serve`` on 127.0.0.1) and ``chromium`` (a headless browser)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.chromium import launched
from support.processes import RunningServer, serving


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """``consentry-server serve`` on a free port of 127.0.0.1, with SQLite in a temporary folder."""
    with serving(tmp_path / "server") as server:
        yield server


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's Chromium, headless, for the tests of a module (skipped where it is not installed)."""
    yield from launched()
