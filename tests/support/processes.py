"""Real processes on 127.0.0.1: the ``consentry-server`` and ``consentry`` console scripts, started and stopped."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consentry._consent.switches import CI_VARIABLES

ADMIN_TOKEN = "e2e-admin-token"  # noqa: S105 - a throwaway token for a throwaway server


def script(name: str) -> str:
    """The installed console script ``name``, from the interpreter's environment."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    assert found, f"console script {name} is not installed"
    return found


def client_environment(home: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of a user's shell: ours, minus CI variables and kill switches, with a private home."""
    env = {key: value for key, value in os.environ.items() if key not in CI_VARIABLES}
    for key in ("CONSENTRY_DISABLE", "DO_NOT_TRACK"):
        env.pop(key, None)
    env["CONSENTRY_HOME"] = str(home)
    env["CONSENTRY_POLICY_FILE"] = str(tmp_path / "no-policy.json")
    return env


@dataclass
class RunningServer:
    """A ``consentry-server serve`` process."""

    url: str
    database: Path
    public: Path
    started: Started

    def get_json(self, path: str) -> object:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:  # noqa: S310 - our own server
            return json.loads(response.read())

    def admin(self, path: str, body: bytes | None = None, content_type: str = "application/toml") -> object:
        request = urllib.request.Request(  # noqa: S310 - our own server
            self.url + path,
            data=body,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": content_type},
            method="POST" if body is not None else "GET",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())


@dataclass
class Started:
    """A process started by :func:`start`, its output drained by a thread."""

    process: subprocess.Popen[str]
    match: re.Match[str]
    output: list[str]
    drain: threading.Thread


def start(command: list[str], env: dict[str, str], pattern: str) -> Started:
    """Start ``command`` and read its output until a line matches ``pattern``."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            # Keep reading, so that a chatty process never blocks on a full pipe.
            drain = threading.Thread(target=seen.extend, args=(process.stdout,), daemon=True)
            drain.start()
            return Started(process, match, seen, drain)
    process.wait(10)
    process.stdout.close()
    pytest.fail(f"{command[0]} exited ({process.returncode}) before printing {pattern!r}:\n{''.join(seen)}")


def stop(started: Started) -> int:
    """Interrupt the process as Ctrl-C would, wait for it, and collect the rest of its output."""
    process = started.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    started.drain.join(10)
    if process.stdout is not None:
        process.stdout.close()
    return process.returncode


@contextlib.contextmanager
def serving(folder: Path, *options: str) -> Iterator[RunningServer]:
    """``consentry-server serve OPTIONS`` on a free port of 127.0.0.1 with SQLite in ``folder``; stopped after.

    The admin token is :data:`ADMIN_TOKEN`. ``options`` come first (``--config FILE``, for example).
    """
    database, public = folder / "consentry.sqlite3", folder / "public.sqlite3"
    env = {**os.environ, "CONSENTRY_ADMIN_TOKEN": ADMIN_TOKEN}
    command = [script("consentry-server"), "serve", *options, "--db", f"sqlite:///{database}"]
    command += ["--public-db", str(public), "--host", "127.0.0.1", "--port", "0"]
    started = start(command, env, r"listening on (http://127\.0\.0\.1:\d+)")
    try:
        yield RunningServer(started.match.group(1), database, public, started)
    finally:
        stop(started)
