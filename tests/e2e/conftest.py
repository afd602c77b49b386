"""The ``server`` fixture: a real ``consentry-server serve`` process on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.processes import ADMIN_TOKEN, RunningServer, script, start, stop


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """``consentry-server serve`` on a free port of 127.0.0.1, with SQLite in a temporary folder."""
    data = tmp_path / "server"
    database, public = data / "consentry.sqlite3", data / "public.sqlite3"
    env = {**os.environ, "CONSENTRY_ADMIN_TOKEN": ADMIN_TOKEN}
    command = [
        script("consentry-server"),
        "serve",
        "--db",
        f"sqlite:///{database}",
        "--public-db",
        str(public),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
    ]
    started = start(command, env, r"listening on (http://127\.0\.0\.1:\d+)")
    try:
        yield RunningServer(started.match.group(1), database, public, started)
    finally:
        stop(started)
