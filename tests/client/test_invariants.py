"""Privacy and reliability invariants, checked from outside the client.

Audit hooks (``sys.addaudithook``) see every file written, socket opened, database connected and process started;
they cannot be removed, so each check runs in a fresh Python process that installs one, uses the client as an
application and the end user would, and prints what it saw. Then: ``kill -9`` in the middle of a flush never
corrupts the store nor loses or doubles a flush, and damaged bookkeeping files never break ``init``.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import consentry
import consentry.testing
import consentry.wire
from consentry import Manifest, NullRecorder, Recorder
from consentry._consent.switches import CI_VARIABLES
from consentry._local.bookkeeping import load_state
from consentry._local.counts import Store
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from consentry._send.reports import reporter_id
from consentry.cli import main as cli_main
from consentry.manifest import loads_manifest
from consentry.testing import FixedClock, MemoryTransport
from support.e2e import two_level_manifest
from support.store import recorded_day

APP = "audit-app"


def manifest_text(url: str) -> str:
    """The audit application's manifest: runs at basic, exception types at full."""
    return two_level_manifest(APP, url, basic="activity = true", full="exceptions = true")


# The child: install the audit hook, then use the client as an application and as the end user would.
AUDITED = textwrap.dedent(
    """
    import json, os, sys, threading
    sys.dont_write_bytecode = True
    import consentry
    import consentry.cli

    manifest, home, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    WATCHED = {
        "os.mkdir", "os.rename", "os.replace", "os.remove", "os.unlink", "os.rmdir", "os.truncate",
        "shutil.rmtree", "sqlite3.connect", "subprocess.Popen", "os.posix_spawn", "os.spawn", "os.fork",
        "os.forkpty", "os.exec", "os.system",
    }
    seen = []

    def audit(event, args):
        if event == "open":
            path, mode, flags = args
            if (isinstance(mode, str) and set(mode) & set("wax+")) or (flags or 0) & WRITE_FLAGS:
                seen.append([event, str(path)])
        elif event in WATCHED or event.startswith("socket."):
            seen.append([event, repr(args)[:300]])

    sys.addaudithook(audit)
    recorder = consentry.init(
        manifest, home=home, environ=dict(os.environ), app_version="1.0.0", background="background" in flags,
        flush_interval=0.05, prompt="prompt" in flags,
    )
    recorder.count("file.open")
    recorder.count("export.png", 2)
    recorder.flush()
    recorder.close()
    for thread in threading.enumerate():
        if thread.name.startswith("consentry-"):
            thread.join(20)
    print("RECORDER", type(recorder).__name__)
    codes = [
        consentry.cli.main(["status", "audit-app", "--manifest", manifest]),
        consentry.cli.main(["status", "audit-app", "--manifest", manifest, "--json", "--verbose"]),
    ]
    if "upload" in flags:
        codes.append(consentry.cli.main(["upload", "audit-app", "--manifest", manifest]))
    print("CODES", json.dumps(codes))
    print("EVENTS", json.dumps(seen))
    """
)


def manifest_file(tmp_path: Path, url: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "manifest.toml"
    path.write_text(manifest_text(url), encoding="utf-8")
    return path


def user_environment(home: Path, tmp_path: Path, **variables: str) -> dict[str, str]:
    """A user's shell: our environment without CI variables or kill switches, plus ``variables``."""
    env = {key: value for key, value in os.environ.items() if key not in CI_VARIABLES}
    for key in ("DO_NOT_TRACK", "CONSENTRY_DISABLE", "AUDIT_APP_TELEMETRY", "AUDIT_APP_NO_TELEMETRY"):
        env.pop(key, None)
    env["CONSENTRY_HOME"] = str(home)
    env["CONSENTRY_POLICY_FILE"] = str(tmp_path / "no-policy.json")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(variables)
    return env


class Audit:
    """What the audited child printed."""

    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        assert done.returncode == 0, done.stderr
        lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in done.stdout.splitlines() if " " in line}
        self.recorder = lines["RECORDER"]
        self.codes: list[int] = json.loads(lines["CODES"])
        self.events: list[list[str]] = json.loads(lines["EVENTS"])
        self.stderr = done.stderr

    def named(self, *prefixes: str) -> list[list[str]]:
        return [event for event in self.events if event[0].startswith(prefixes)]


def audit(path: Path, home: Path, env: dict[str, str], *flags: str) -> Audit:
    """Run the audited child with ``flags`` among background, prompt and upload."""
    command = [sys.executable, "-c", AUDITED, str(path), str(home), *flags]
    done = subprocess.run(
        command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False
    )
    return Audit(done)


def yesterday_noon() -> FixedClock:
    day = datetime.date.today() - datetime.timedelta(days=1)  # noqa: DTZ011 - reports cover the user's local days
    return FixedClock(datetime.datetime.combine(day, datetime.time(12), datetime.timezone.utc))


def consent_with_data(manifest: Manifest, home: Path, env: dict[str, str], *, prepare: bool) -> None:
    """Consent given yesterday, counts of yesterday in the store and, with ``prepare``, its reports pending."""
    clock = yesterday_noon()
    consentry.set_consent(manifest, "on", "full", home=home, environ=env, clock=clock)
    recorder = consentry.init(
        manifest, app_version="1.0.0", home=home, environ=env, clock=clock, background=False, flush_at_exit=False
    )
    recorder.count("file.open", 2)
    recorder.close()
    if prepare:
        assert len(AppSession.open(manifest, home=home, environ=env).prepare_reports()) >= 1


def snapshot(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


pytestmark = pytest.mark.slow


# ---- audit hooks ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flags", [("background",), ("background", "prompt"), ()], ids=["init", "prompt", "no-thread"])
def test_without_consent_nothing_is_written_and_no_socket_is_opened(home, tmp_path, flags):
    path = manifest_file(tmp_path)
    result = audit(path, home, user_environment(home, tmp_path), *flags)
    assert result.recorder == "NullRecorder"
    assert result.codes == [0, 0]
    assert result.events == []
    assert list(home.iterdir()) == []  # the fixture made the folder; nothing was put in it


@pytest.mark.parametrize("answer", ["expired", "collects-more"])
def test_consent_that_no_longer_holds_writes_and_sends_nothing(home, tmp_path, answer):
    path = manifest_file(tmp_path)
    manifest = consentry.load_manifest(path)
    env = user_environment(home, tmp_path)
    if answer == "expired":  # yes for two days, ten days ago
        clock = FixedClock(yesterday_noon().now() - datetime.timedelta(days=9))
        valid_for = datetime.timedelta(days=2)
        consentry.set_consent(manifest, "on", "full", valid_for=valid_for, home=home, environ=env, clock=clock)
    else:  # given for an earlier release, which did not count PNG exports
        earlier = loads_manifest(manifest_text("http://127.0.0.1:9").rsplit("[[events]]", 1)[0])
        consentry.set_consent(earlier, "on", "full", home=home, environ=env, clock=yesterday_noon())
    before = snapshot(home)
    result = audit(path, home, env, "background")
    assert result.recorder == "NullRecorder"
    assert result.codes == [0, 0]
    assert result.events == []
    assert snapshot(home) == before


KILL_SWITCHES = {
    "own-variable": {"AUDIT_APP_TELEMETRY": "0"},
    "own-no-telemetry": {"AUDIT_APP_NO_TELEMETRY": "1"},
    "consentry-disable": {"CONSENTRY_DISABLE": "1"},
    "do-not-track": {"DO_NOT_TRACK": "1"},
    "settings-disable-all": {},
    "policy-file": {},
}


@pytest.mark.parametrize("switch", list(KILL_SWITCHES))
def test_every_kill_switch_stops_all_writing_and_sending(home, tmp_path, switch):
    path = manifest_file(tmp_path)
    manifest = consentry.load_manifest(path)
    env = user_environment(home, tmp_path, **KILL_SWITCHES[switch])
    consent_with_data(manifest, home, user_environment(home, tmp_path), prepare=False)  # yesterday is due
    if switch == "settings-disable-all":
        (home / "settings.json").write_text('{"disable_all": true}', encoding="utf-8")
    if switch == "policy-file":
        policy = tmp_path / "policy.json"
        policy.write_text('{"disable": true}', encoding="utf-8")
        env["CONSENTRY_POLICY_FILE"] = str(policy)
    before = snapshot(home)
    result = audit(path, home, env, "background")
    assert result.recorder == "NullRecorder"
    assert result.codes == [0, 0]
    assert result.events == []
    assert snapshot(home) == before


def test_in_ci_nothing_is_recorded_written_sent_or_started(home, tmp_path):
    # Not only "nothing sent": a day counted under CI=true would otherwise be sent by the next run outside CI.
    path = manifest_file(tmp_path)
    manifest = consentry.load_manifest(path)
    consent_with_data(manifest, home, user_environment(home, tmp_path), prepare=True)
    pending = AppSession.open(manifest, home=home, environ=user_environment(home, tmp_path)).outbox.pending()
    assert pending
    before = snapshot(home)
    env = user_environment(home, tmp_path, CI="true")
    result = audit(path, home, env, "background", "upload")
    assert result.recorder == "NullRecorder"
    assert result.events == []  # no file written, no database opened, no socket, no process
    assert result.codes[:2] == [0, 0]
    assert result.codes[2] == 5  # `consentry upload` in CI: switched off
    assert snapshot(home) == before
    session = AppSession.open(manifest, home=home, environ=env)
    assert [report.path.name for report in session.outbox.pending()] == [report.path.name for report in pending]
    assert session.outbox.history() == []


def test_the_audit_sees_the_uploader_start_when_sending_is_allowed(home, tmp_path):
    # The control of the test above: the same run outside CI starts the detached uploader (which finds nothing
    # listening on the endpoint's port and gives up).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    path = manifest_file(tmp_path, f"http://127.0.0.1:{closed_port}")
    manifest = consentry.load_manifest(path)
    env = user_environment(home, tmp_path)
    consent_with_data(manifest, home, env, prepare=True)
    result = audit(path, home, env, "background")
    assert result.recorder == "Recorder"
    assert result.named("os.posix_spawn", "subprocess.Popen")
    assert result.named("socket.") == []  # the host itself never opens a socket: the uploader does
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _uploaders(home):
        time.sleep(0.05)
    for pid in _uploaders(home):
        os.kill(pid, signal.SIGKILL)
    assert load_state(Paths(home).app(APP)).failures <= 1


def _uploaders(home: Path) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", f"consentry._send.detached --home {home}"], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


# ---- kill -9 in the middle of a flush ---------------------------------------------------------------------------
OTHER_EVENTS = 2000
FLUSHING = textwrap.dedent(
    """
    import datetime, sys
    import consentry, consentry.testing

    manifest, home, policy, others = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    clock = consentry.testing.FixedClock(datetime.datetime(2026, 11, 18, 12, tzinfo=datetime.timezone.utc))
    recorder = consentry.init(
        manifest, home=home, environ={"CONSENTRY_POLICY_FILE": policy}, clock=clock, app_version="1.0.0",
        background=False, flush_at_exit=False, exception_hooks=False,
    )
    names = [f"other.{i}" for i in range(others)]
    flushed = 0
    while True:
        recorder.count("flushes")
        for name in names:
            recorder.count(name)
        recorder.flush()
        if recorder.quiet:
            print("quiet", recorder.quiet, flush=True)
            break
        flushed += 1
        print("flushed", flushed, flush=True)
    """
)


def _many_events_manifest(tmp_path: Path) -> Path:
    events = "".join(
        f'\n[[events]]\nname = "{name}"\nlevel = "basic"\npurpose = "A counter that fills the flush."\n'
        for name in ["flushes"] + [f"other.{i}" for i in range(OTHER_EVENTS)]
    )
    text = manifest_text("http://127.0.0.1:9").split("[[events]]", 1)[0] + events
    path = tmp_path / "many.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_kill_9_in_the_middle_of_a_flush_loses_or_doubles_nothing(home, environ, tmp_path):
    path = _many_events_manifest(tmp_path)
    manifest = consentry.load_manifest(path)
    clock = FixedClock(datetime.datetime(2026, 11, 18, 12, tzinfo=datetime.timezone.utc))
    consentry.set_consent(manifest, "on", "basic", home=home, environ=environ, clock=clock)
    store = Paths(home).app(manifest.name).store
    chance = random.Random(9)
    total = 0
    for round_ in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", FLUSHING, str(path), str(home), environ["CONSENTRY_POLICY_FILE"], str(OTHER_EVENTS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        try:
            wanted = chance.randint(2, 6)
            for _ in range(wanted):
                line = child.stdout.readline()
                assert line.startswith("flushed"), f"round {round_}: {line!r} {child.stderr.read() if not line else ''}"
            time.sleep(chance.uniform(0, 0.05))  # an arbitrary moment: flushing, counting or printing
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            rest, _ = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL
        printed = [int(match) for match in re.findall(r"^flushed (\d+)$", rest, flags=re.MULTILINE)]
        last = printed[-1] if printed else wanted
        assert "quiet" not in rest

        with sqlite3.connect(store) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        db.close()
        # A flush killed after its journal file was written is merged by the next run (here, the test).
        record = recorded_day(home, manifest.name, clock.today())
        assert record is not None
        flushes = record.counters[("event", "flushes")]
        assert flushes in (total + last, total + last + 1), f"round {round_}: {flushes} after {total} + {last}"
        # Each flush is one transaction: every counter of it is there, or none.
        others = {n for (kind, key), n in record.counters.items() if kind == "event" and key != "flushes"}
        assert others == {flushes}
        assert len(record.counters) == OTHER_EVENTS + 1
        total = flushes


# ---- damaged files ------------------------------------------------------------------------------------------------
def _garbage(kind: str, name: str) -> bytes:
    if kind == "truncated":
        return b'{"mode": "on", "level": "fu' if name != "secret" else b"0123456789abcdef"
    if kind == "random":
        return random.Random(7).randbytes(4096)
    if kind == "array":
        return b'["on", "full", {"disable_all": false}]'
    # 2 MB: valid-looking content, far too large to be ours
    if name == "secret":
        return b"ab" * (1024 * 1024)
    return b'{"mode": "on", "level": "full", "disable_all": true, "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'


GARBAGE = ["truncated", "random", "array", "huge"]
DAY = datetime.date(2026, 11, 18)


def _status(path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> dict:
    """``consentry status`` as the user runs it: their home, outside CI (where nothing is recorded)."""
    monkeypatch.setenv("CONSENTRY_HOME", str(home))
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    capsys.readouterr()
    assert cli_main(["status", APP, "--manifest", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def audit_manifest(tmp_path: Path) -> tuple[Path, Manifest]:
    path = manifest_file(tmp_path)
    return path, consentry.load_manifest(path)


def _init(manifest: Manifest, home: Path, environ: dict[str, str], clock: FixedClock) -> Recorder | NullRecorder:
    return consentry.init(
        manifest, app_version="1.0.0", home=home, environ=environ, clock=clock, background=False, flush_at_exit=False
    )


@pytest.mark.parametrize("kind", GARBAGE)
def test_a_damaged_consent_file_means_off(audit_manifest, home, environ, clock, kind, monkeypatch, capsys):
    path, manifest = audit_manifest
    consent = Paths(home).app(APP).consent
    consent.parent.mkdir(parents=True)
    consent.write_bytes(_garbage(kind, "consent.json"))
    before = snapshot(home)
    for source in (manifest, path):  # a parsed manifest, or the file (which init may only peek at)
        recorder = _init(source, home, environ, clock)
        assert isinstance(recorder, NullRecorder)
        recorder.count("file.open")
        recorder.close()
    assert snapshot(home) == before  # nothing repaired or written without consent
    status = _status(path, home, monkeypatch, capsys)
    assert (status["mode"], status["consented_mode"]) == ("off", "off")


@pytest.mark.parametrize("kind", GARBAGE)
def test_a_damaged_state_file_is_replaced(audit_manifest, home, environ, clock, kind, monkeypatch, capsys):
    path, manifest = audit_manifest
    consentry.set_consent(manifest, "on", "full", home=home, environ=environ, clock=clock)
    paths = Paths(home).app(APP)
    garbage = _garbage(kind, "state.json")
    paths.state.write_bytes(garbage)
    recorder = _init(manifest, home, environ, clock)
    assert isinstance(recorder, Recorder)
    recorder.count("file.open", 2)
    recorder.count("not.declared")  # a drop: the flush records it in the state
    recorder.close()
    assert _status(path, home, monkeypatch, capsys)["mode"] == "on"
    clock.advance(datetime.timedelta(days=1))
    session = AppSession.open(manifest, home=home, environ=environ, clock=clock)
    assert len(session.prepare_reports()) == 1
    assert session.upload(MemoryTransport()).sent == 1
    document = json.loads(paths.state.read_bytes())
    assert isinstance(document, dict)
    assert document["first_day"] == DAY.isoformat()
    assert document["sent_ever"] is True
    state = load_state(paths)
    assert state.last_success == clock.now()
    assert paths.state.with_name("state.json.corrupt").read_bytes() == garbage  # kept aside for inspection


@pytest.mark.parametrize("kind", GARBAGE)
def test_a_damaged_secret_is_replaced(audit_manifest, home, environ, clock, kind):
    _, manifest = audit_manifest
    consentry.set_consent(manifest, "on", "full", home=home, environ=environ, clock=clock)
    paths = Paths(home).app(APP)
    paths.secret.write_bytes(_garbage(kind, "secret"))
    recorder = _init(manifest, home, environ, clock)
    assert isinstance(recorder, Recorder)
    recorder.count("file.open")
    recorder.close()
    clock.advance(datetime.timedelta(days=1))
    session = AppSession.open(manifest, home=home, environ=environ, clock=clock)
    written = session.prepare_reports()
    assert len(written) == 1
    text = paths.secret.read_text("ascii").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", text)
    report = consentry.wire.decode(written[0].read_bytes())
    assert report.reporter == reporter_id(bytes.fromhex(text), APP, DAY)


@pytest.mark.parametrize("kind", GARBAGE)
def test_damaged_user_settings_do_not_stop_consented_telemetry(audit_manifest, home, environ, clock, kind):
    _, manifest = audit_manifest
    consentry.set_consent(manifest, "on", "full", home=home, environ=environ, clock=clock)
    settings = Paths(home).settings
    garbage = _garbage(kind, "settings.json")
    settings.write_bytes(garbage)
    recorder = _init(manifest, home, environ, clock)
    assert isinstance(recorder, Recorder)
    recorder.count("file.open", 3)
    recorder.close()
    record = Store(Paths(home).app(APP).store).read_day(DAY)
    assert record is not None
    assert record.counters[("event", "file.open")] == 3
    assert settings.read_bytes() == garbage  # the user's file is not ours to repair
