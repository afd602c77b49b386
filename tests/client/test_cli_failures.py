"""The `consentry` command never shows a traceback: a read-only home, a full disk, a directory where a file
should be, an unreadable pending report, a broken manifest, a closed pipe. Each gives one clear message, a hint
naming a folder the user can act on, and a documented exit code; read-only commands keep working."""

from __future__ import annotations

import datetime
import json
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import consentry
from consentry import Recorder
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from consentry.cli import ExitCode, main
from consentry.testing import FixedClock, MemoryTransport
from support.processes import client_environment, script
from support.readonly import read_only

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "consentry_examples"
NAPARI = EXAMPLES / "napari_like" / "manifest.toml"
APP = "napari-like"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _record_days(home: Path, environ: dict[str, str], days: int = 1) -> list[datetime.date]:
    """Consent, then ``days`` days of use ending two days ago (through the library, with a fixed clock)."""
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days + 1)
    clock = FixedClock(start)
    consentry.set_consent(NAPARI, "on", "full", home=home, environ=environ, clock=clock)
    recorded = []
    for _ in range(days):
        recorder = consentry.init(
            NAPARI, app_version="0.5.6", home=home, environ=environ, clock=clock, background=False, flush_at_exit=False
        )
        assert isinstance(recorder, Recorder)
        recorder.count("napari:layer:add_image", 3)
        recorder.close()
        recorded.append(clock.today())
        clock.advance(datetime.timedelta(days=1))
    return recorded


def _pending_names(home: Path) -> list[str]:
    return sorted(path.name for path in Paths(home).app(APP).pending.glob("*.json"))


# ---- a home that cannot be written -----------------------------------------------------------------------------------
def test_preview_and_status_work_on_a_read_only_home(cli_home, environ, capsys):
    [day] = _record_days(cli_home, environ)
    assert main(["preview", APP, "--raw"]) == ExitCode.OK  # the reports are built while the home is writable
    capsys.readouterr()
    _record_days(cli_home, environ)  # another completed day, not yet turned into reports
    pending = _pending_names(cli_home)
    with read_only(cli_home):
        code, out, err = _run(capsys, "preview", APP)
        assert code == ExitCode.OK
        assert "warning: completed days cannot be turned into reports now" in err
        assert f"check that {Paths(cli_home).app(APP).root} is writable" in err
        assert "Traceback" not in out + err
        assert out.count("# report ") == len(pending) == 3
        assert f"{day}.basic" in out
        code, out, err = _run(capsys, "status", APP, "--verbose")
        assert (code, err) == (ExitCode.OK, "")
        assert "pending reports     3" in out
        assert main(["history", APP]) == ExitCode.OK
        code, _, err = _run(capsys, "upload", APP)  # it must write what it sends: refused before sending
        assert code == ExitCode.ERROR
        assert "\nconsentry: error: " in err
        assert err.rstrip().splitlines()[-1].startswith("hint: check that ")
        assert "Traceback" not in err
    assert _pending_names(cli_home) == pending  # nothing lost


def test_a_directory_where_the_store_should_be_still_lets_the_user_see_pending_reports(cli_home, environ, capsys):
    _record_days(cli_home, environ)
    assert main(["preview", APP, "--raw"]) == ExitCode.OK
    capsys.readouterr()
    paths = Paths(cli_home).app(APP)
    shutil.rmtree(paths.store, ignore_errors=True)
    paths.store.unlink(missing_ok=True)
    paths.store.mkdir()
    for command in ("preview", "upload"):
        _, out, err = _run(capsys, command, APP)
        assert "Traceback" not in out + err
        assert "completed days cannot be turned into reports now" in err
    assert len(_pending_names(cli_home)) == 3


FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # every write that grows a file fails, as on a full disk
from consentry.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_full_disk_gives_a_message_not_a_traceback(cli_home, environ, tmp_path):
    _record_days(cli_home, environ)  # a completed day in the store, no report yet
    env = client_environment(cli_home, tmp_path)
    for command in (["preview", APP], ["upload", APP], ["enable", APP], ["status", APP, "--verbose"]):
        done = subprocess.run(
            [sys.executable, "-c", FULL_DISK, *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "Traceback" not in done.stderr, (command, done.stderr)
        assert done.returncode in (ExitCode.OK, ExitCode.ERROR), (command, done.stderr)
        if done.returncode == ExitCode.ERROR:
            assert done.stderr.startswith("consentry: error: "), done.stderr
            assert "hint:" in done.stderr
            assert ".tmp" not in done.stderr.split("hint:")[1]  # a folder, never a temporary file's name
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] != 0  # only the children were limited


def test_a_hint_names_the_folder_not_a_temporary_file(cli_home, capsys):
    folder = Paths(cli_home).app("stripepy-like").root
    folder.mkdir(parents=True)
    with read_only(folder):
        code, _, err = _run(capsys, "enable", "stripepy-like")
    assert code == ExitCode.ERROR
    [_, hint] = err.splitlines()
    assert hint == f"hint: check that {folder} is writable and the disk is not full"


# ---- unreadable pending reports --------------------------------------------------------------------------------------
def test_an_unreadable_pending_report_is_set_aside_and_the_queue_moves_on(cli_home, environ, capsys):
    days = _record_days(cli_home, environ, days=2)
    session = AppSession.open(consentry.load_manifest(NAPARI), home=cli_home, environ=environ)
    session.prepare_reports()
    bad = session.paths.pending / f"{days[0]}.basic.json"
    bad.write_bytes(b'{"app": "napari-like", "note": "\xff\xfe not UTF-8"}')

    code, out, err = _run(capsys, "preview", APP, "--json")
    assert (code, err) == (ExitCode.OK, "")
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows[f"{days[0]}.basic"]["status"] == "unreadable: not sent"
    assert rows[f"{days[0]}.basic"]["report"] is None
    assert rows[f"{days[0]}.full"]["report"]["app"] == APP
    code, out, _ = _run(capsys, "preview", APP)
    assert code == ExitCode.OK
    assert "# unreadable, will not be sent" in out

    transport = MemoryTransport()
    result = session.upload(transport, force=True)
    assert (result.quarantined, result.sent) == (1, 5)
    assert len(transport.requests) == 5
    assert session.outbox.pending() == []
    assert (session.paths.quarantine / bad.name).read_bytes().endswith(b'not UTF-8"}')
    assert len(session.outbox.history()) == 5
    assert any("moved to" in message for message in result.messages)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[]",
        b'{"schema": 1}',
        b"\x00" * 64,
        b'{"a":' * 10_000,
    ],
    ids=["empty", "truncated", "array", "partial", "binary", "deep"],
)
def test_every_kind_of_damaged_pending_file_is_quarantined(cli_home, environ, content):
    [day] = _record_days(cli_home, environ)
    session = AppSession.open(consentry.load_manifest(NAPARI), home=cli_home, environ=environ)
    session.prepare_reports()
    (session.paths.pending / f"{day}.full.json").write_bytes(content)
    result = session.upload(MemoryTransport(), force=True)
    assert (result.quarantined, result.sent) == (1, 2)


def test_a_report_of_another_application_is_not_sent_under_this_one(cli_home, environ):
    [day] = _record_days(cli_home, environ)
    session = AppSession.open(consentry.load_manifest(NAPARI), home=cli_home, environ=environ)
    session.prepare_reports()
    basic = session.paths.pending / f"{day}.basic.json"
    full = session.paths.pending / f"{day}.full.json"
    basic.write_bytes(full.read_bytes())  # a valid report, but not the one its name says
    result = session.upload(MemoryTransport(), force=True)
    assert (result.quarantined, result.sent) == (1, 2)


# ---- purge --all -----------------------------------------------------------------------------------------------------
def test_purge_all_purges_every_app_even_one_whose_manifest_is_broken(cli_home, environ, capsys):
    _record_days(cli_home, environ)
    consentry.set_consent(consentry.load_manifest(NAPARI), "on", home=cli_home, environ=environ)
    broken = Paths(cli_home).app("gone-app")
    broken.root.mkdir(parents=True)
    broken.manifest.write_text("{not a manifest", encoding="utf-8")
    broken.history.write_text("{}\n", encoding="utf-8")
    broken.secret.write_text("00" * 32, encoding="utf-8")
    code, out, err = _run(capsys, "purge", "--all")
    assert (code, err) == (ExitCode.OK, "")
    assert "gone-app: telemetry is off and every local file is deleted." in out
    assert f"{APP}: telemetry is off and every local file is deleted." in out
    for app in (APP, "gone-app"):
        paths = Paths(cli_home).app(app)
        assert json.loads(paths.consent.read_text("utf-8"))["mode"] == "off"
        left = sorted(path.name for path in paths.root.rglob("*") if path.is_file())
        assert set(left) <= {"consent.json", "manifest.json"}, left


def test_purge_all_reports_an_app_it_could_not_purge_and_purges_the_others(cli_home, environ, capsys):
    _record_days(cli_home, environ)
    stuck = Paths(cli_home).app("stuck-app")
    stuck.history.mkdir(parents=True)  # a folder (not empty) where the history file should be
    (stuck.history / "x").write_text("x", encoding="utf-8")
    code, out, err = _run(capsys, "purge", "--all")
    assert code == ExitCode.ERROR
    assert "consentry: error: stuck-app: could not delete everything" in err
    assert f"{APP}: telemetry is off and every local file is deleted." in out
    assert not Paths(cli_home).app(APP).store.exists()
    assert "Traceback" not in err


# ---- output ------------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("command", [["status"], ["preview", APP]])
def test_a_reader_that_goes_away_gets_no_error(cli_home, environ, tmp_path, command):
    _record_days(cli_home, environ, days=12)  # enough pending reports to fill a pipe
    env = client_environment(cli_home, tmp_path)
    consentry_cli = subprocess.Popen(
        [script("consentry"), *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert consentry_cli.stdout is not None
    assert consentry_cli.stdout.readline()  # like `| head -1`
    consentry_cli.stdout.close()
    _, err = consentry_cli.communicate(timeout=60)
    assert err == b""
    assert consentry_cli.returncode in (0, -signal.SIGPIPE)


def test_drops_are_listed_one_per_line(cli_home, environ, capsys):
    _record_days(cli_home, environ)
    recorder = consentry.init(NAPARI, app_version="0.5.6", home=cli_home, environ=environ, background=False)
    assert isinstance(recorder, Recorder)
    recorder.count("napari:no_such_event", 1)
    recorder.count("napari:no_such_event", 1)
    recorder.count("napari:layer:add_image", -1)
    recorder.close()
    code, out, _ = _run(capsys, "status", APP, "--verbose")
    assert code == ExitCode.OK
    assert "{" not in out
    assert "     2  not in the manifest" in out
    assert "     1  bad count" in out
    assert "internal errors     none" in out


@pytest.mark.usefixtures("cli_home")
def test_enable_at_level_none_is_a_usage_error_that_points_to_disable(capsys):
    code, out, err = _run(capsys, "enable", APP, "--level", "none")
    assert (code, out) == (ExitCode.USAGE, "")
    assert "level 'none' collects nothing" in err
    assert f"hint: to switch off, run `consentry disable {APP}`" in err
