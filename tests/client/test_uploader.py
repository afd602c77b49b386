"""The detached uploader, with a real HTTP server on 127.0.0.1 that records what it receives.

``spawn()`` starts ``python -m consentry._send.detached`` detached from the host; it sends the pending reports, records
them in the history and exits. A short-lived command-line tool gets its reports out after it has exited, and
its exit does not wait for a server that hangs. Every process and server a test starts is stopped by the test.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import http.server
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import consentry
import consentry.testing
import consentry.wire
from consentry import Manifest
from consentry._consent.switches import CI_VARIABLES
from consentry._local.bookkeeping import load_state
from consentry._local.counts import Store
from consentry._local.files import exclusive
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from consentry._record.journal import Batch
from consentry._send.detached import main, reap, spawn
from consentry.testing import FixedClock
from support.e2e import two_level_manifest
from support.store import recorded_day
from support.waiting import wait_for

pytestmark = pytest.mark.slow

APP = "uploader-test"
POLL = 20.0
TOOL = textwrap.dedent(
    """
    import os, sys, time
    import consentry

    manifest, home, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    recorder = consentry.init(manifest, home=home, environ=dict(os.environ), app_version="1.0.0")
    recorder.count("file.open")
    time.sleep(seconds)
    print(type(recorder).__name__)
    """
)


# ---- servers ------------------------------------------------------------------------------------------------------
@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RecordingServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with self.server.lock:
            self.server.received.append(Received(self.path, dict(self.headers.items()), body))
        answer = b'{"status":"stored"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the signature of the base class
        pass


class RecordingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[Received] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [gzip.decompress(received.body) for received in self.received]


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    httpd = RecordingServer()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(POLL)
        assert not thread.is_alive()


class HangingServer:
    """Accepts connections and never answers; counts them."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(sock)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(POLL)
        assert not self._thread.is_alive()
        self.listener.close()
        for sock in self.accepted:
            sock.close()


@pytest.fixture
def hanging_server() -> Iterator[HangingServer]:
    server = HangingServer()
    try:
        yield server
    finally:
        server.stop()


# ---- helpers ------------------------------------------------------------------------------------------------------


def user_environment(tmp_path: Path) -> dict[str, str]:
    """A user's shell: our environment without CI variables or kill switches, no system policy file."""
    env = {key: value for key, value in os.environ.items() if key not in CI_VARIABLES}
    for key in ("DO_NOT_TRACK", "CONSENTRY_DISABLE", "CONSENTRY_HOME", "UPLOADER_TEST_TELEMETRY"):
        env.pop(key, None)
    env.pop("UPLOADER_TEST_NO_TELEMETRY", None)
    env["CONSENTRY_POLICY_FILE"] = str(tmp_path / "no-policy.json")
    return env


@pytest.fixture
def user_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The user's environment, also made this process's (the uploader started by spawn() inherits it)."""
    env = user_environment(tmp_path)
    for key in list(os.environ):
        if key not in env:
            monkeypatch.delenv(key)
    monkeypatch.setenv("CONSENTRY_POLICY_FILE", env["CONSENTRY_POLICY_FILE"])
    return env


def manifest_file(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "manifest.toml"
    path.write_text(two_level_manifest(APP, url), encoding="utf-8")
    return path


def yesterday_noon() -> FixedClock:
    day = datetime.date.today() - datetime.timedelta(days=1)  # noqa: DTZ011 - reports cover the user's local days
    return FixedClock(datetime.datetime.combine(day, datetime.time(12), datetime.timezone.utc))


def record_yesterday(manifest: Manifest, home: Path, env: dict[str, str]) -> None:
    """Consent ("on", full) and counts of yesterday in the store: a report is due."""
    clock = yesterday_noon()
    consentry.set_consent(manifest, "on", "full", home=home, environ=env, clock=clock)
    recorder = consentry.init(
        manifest, app_version="1.0.0", home=home, environ=env, clock=clock, background=False, flush_at_exit=False
    )
    assert recorder.enabled
    recorder.count("file.open", 2)
    recorder.count("export.png")
    recorder.close()


def pending_bytes(manifest: Manifest, home: Path, env: dict[str, str]) -> list[bytes]:
    return sorted(report.read() for report in AppSession.open(manifest, home=home, environ=env).outbox.pending())


def uploaders(home: Path) -> list[int]:
    """Process ids of uploaders running for ``home``."""
    found = subprocess.run(
        ["pgrep", "-f", f"consentry._send.detached --home {home}"], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


def end_uploaders(home: Path) -> None:
    """Kill what is left of uploaders for ``home`` and wait until none runs."""
    for pid in uploaders(home):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: uploaders(home) == [])


def run_tool(
    tool: Path, manifest: Path, home: Path, env: dict[str, str], seconds: float = 0.2
) -> subprocess.CompletedProcess[str]:
    """Run the short-lived tool to its end; it waits ``seconds`` after counting."""
    return subprocess.run(
        [sys.executable, str(tool), str(manifest), str(home), str(seconds)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@contextlib.contextmanager
def in_process_main() -> Iterator[None]:
    """Undo what ``uploader.main`` does to its own process: its watchdog timer and its lower priority."""
    before = set(threading.enumerate())
    priority = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else None
    try:
        yield
    finally:
        for thread in set(threading.enumerate()) - before:
            if isinstance(thread, threading.Timer) and thread.function is os._exit:
                thread.cancel()
                thread.join(POLL)
        if priority is not None:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, 0, priority)


# ---- tests --------------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="reap() collects POSIX children")
def test_spawn_starts_a_detached_uploader_that_sends_the_pending_reports(server, home, tmp_path, user_env):
    path = manifest_file(tmp_path, server.url)
    manifest = consentry.load_manifest(path)
    record_yesterday(manifest, home, user_env)
    session = AppSession.open(manifest, home=home, environ=user_env)
    assert len(session.prepare_reports()) == 2
    before = pending_bytes(manifest, home, user_env)

    pid = spawn(home, APP)
    assert pid is not None
    try:
        assert wait_for(lambda: len(server.bodies()) == 2)
        assert wait_for(lambda: reap(pid))
    finally:
        end_uploaders(home)
    assert sorted(server.bodies()) == before
    assert sorted(received.path for received in server.received) == ["/v1/reports/basic", "/v1/reports/full"]
    assert {received.headers["Content-Encoding"] for received in server.received} == {"gzip"}
    assert session.outbox.pending() == []
    history = session.outbox.history()
    assert sorted((entry.status, entry.outcome) for entry in history) == [(200, "sent")] * 2
    assert sorted(entry.report.encode() for entry in history) == before
    assert load_state(session.paths).last_success is not None


def test_a_second_upload_is_refused_while_one_holds_the_lock(server, home, tmp_path, user_env):
    path = manifest_file(tmp_path, server.url)
    manifest = consentry.load_manifest(path)
    record_yesterday(manifest, home, user_env)
    session = AppSession.open(manifest, home=home, environ=user_env)
    session.prepare_reports()
    before = pending_bytes(manifest, home, user_env)
    assert len(before) == 2

    with exclusive(Paths(home).app(APP).outbox_lock) as held:
        assert held
        with in_process_main():
            assert main(["--home", str(home), "--app", APP]) == 0
    assert server.received == []
    assert pending_bytes(manifest, home, user_env) == before
    assert session.outbox.history() == []

    # Without the lock held, the same command sends them.
    done = subprocess.run(
        [sys.executable, "-m", "consentry._send.detached", "--home", str(home), "--app", APP],
        env=user_env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(server.bodies()) == before
    assert pending_bytes(manifest, home, user_env) == []


@pytest.mark.parametrize("seconds", [0.2, 0.0], ids=["runs 0.2 s", "exits at once"])
def test_a_short_lived_tool_gets_its_reports_out_after_it_exited(server, home, tmp_path, seconds):
    # Exiting at once, the background thread may never have run: the exit starts the uploader instead.
    env = user_environment(tmp_path)
    path = manifest_file(tmp_path, server.url)
    manifest = consentry.load_manifest(path)
    record_yesterday(manifest, home, env)  # a report is due, not yet prepared
    tool = tmp_path / "tool.py"
    tool.write_text(TOOL, encoding="utf-8")
    try:
        done = run_tool(tool, path, home, env, seconds)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "Recorder"
        assert wait_for(lambda: len(server.bodies()) == 2, timeout=30)
        assert wait_for(lambda: uploaders(home) == [])  # the uploader finished by itself
    finally:
        end_uploaders(home)
    reports = [consentry.wire.decode(body) for body in server.bodies()]
    assert {report.level: report.days for report in reports} == {
        "basic": (yesterday_noon().today(),),
        "full": (yesterday_noon().today(),),
    }
    [full] = [report for report in reports if report.level == "full"]
    assert full.total("export.png") == 1
    assert pending_bytes(manifest, home, env) == []
    assert len(AppSession.open(manifest, home=home, environ=env).outbox.history()) == 2


def test_the_tools_exit_does_not_wait_for_a_hanging_server(hanging_server, home, tmp_path):
    env = user_environment(tmp_path)
    path = manifest_file(tmp_path, hanging_server.url)
    manifest = consentry.load_manifest(path)
    record_yesterday(manifest, home, env)
    tool = tmp_path / "tool.py"
    tool.write_text(TOOL, encoding="utf-8")
    try:
        done = run_tool(tool, path, home, env)  # raises TimeoutExpired if the exit waited for the server
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "Recorder"
        assert wait_for(lambda: len(hanging_server.accepted) >= 1, timeout=30)  # the upload went on, detached
        running = uploaders(home)
        assert len(running) == 1, "the uploader should still be waiting for the server"
        assert not re.search(r"Traceback", done.stderr)
    finally:
        end_uploaders(home)
    pending = pending_bytes(manifest, home, env)
    assert len(pending) == 2
    assert AppSession.open(manifest, home=home, environ=env).outbox.history() == []


EXITING = textwrap.dedent(
    """
    import datetime, os, sys
    import consentry, consentry.testing

    manifest, home = sys.argv[1], sys.argv[2]
    clock = consentry.testing.FixedClock(datetime.datetime(2026, 11, 18, 12, tzinfo=datetime.timezone.utc))
    recorder = consentry.init(
        manifest, home=home, environ=dict(os.environ), clock=clock, app_version="1.0.0", background=False
    )
    recorder.count("file.open", 3)
    print(type(recorder).__name__)
    """
)


def _day_counts(manifest: Manifest, home: Path) -> dict[str, int]:
    record = recorded_day(home, manifest.name, datetime.date(2026, 11, 18))
    return {} if record is None else {key: n for (kind, key), n in record.counters.items() if kind == "event"}


def test_counts_are_flushed_when_the_host_exits(server, home, tmp_path):
    env = user_environment(tmp_path)
    path = manifest_file(tmp_path, server.url)
    manifest = consentry.load_manifest(path)
    consentry.set_consent(manifest, "on", "full", home=home, environ=env)
    done = subprocess.run(
        [sys.executable, "-c", EXITING, str(path), str(home)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "Recorder", "")
    assert _day_counts(manifest, home) == {"file.open": 3}


def test_the_host_exits_while_another_process_holds_the_store(server, home, tmp_path):
    env = user_environment(tmp_path)
    path = manifest_file(tmp_path, server.url)
    manifest = consentry.load_manifest(path)
    consentry.set_consent(manifest, "on", "full", home=home, environ=env)
    store = Paths(home).app(manifest.name).store
    Store(store).add(Batch("on:earlier", counters={(datetime.date(2026, 11, 18), "event", "export.png"): 1}))
    blocker = sqlite3.connect(store, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        done = subprocess.run(
            [sys.executable, "-c", EXITING, str(path), str(home)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "Recorder", "")
    assert len(list(Paths(home).app(manifest.name).journal.iterdir())) == 1  # the exit flush did not wait
    assert _day_counts(manifest, home) == {"export.png": 1, "file.open": 3}  # ... and lost nothing
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.close()
