"""An application's author checks an integration the day they make it: ``consentry preview/upload APP --today``.

The real ``consentry`` command in a subprocess, a real ``consentry-server`` on 127.0.0.1. Today's partial report is
sent once and replaced on the server by the whole day's report, so the day is counted once, whole.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import consentry
import consentry.wire
from consentry._local.bookkeeping import load_state
from consentry._local.session import AppSession
from consentry._send.today import send_partial, today_reports
from consentry.cli import ExitCode
from consentry.testing import FixedClock
from consentry.transport import HttpTransport
from support.e2e import manifest_file, run
from support.processes import RunningServer, client_environment, script, serving

APP = "e2e-app"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """``consentry-server serve`` on a free port of 127.0.0.1, with SQLite in a temporary folder."""
    with serving(tmp_path / "server") as server:
        yield server


def stored(database: Path) -> list[tuple[str, int]]:
    """(level, total of the event counters) per report row the server keeps."""
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT names.name, (SELECT COALESCE(SUM(n), 0) FROM counters WHERE report_id = reports.id) "
            "FROM reports JOIN names ON names.id = reports.level_id ORDER BY names.name"
        ).fetchall()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return run([script("consentry"), *args], env)


def record(manifest_path: Path, home: Path, env: dict[str, str], **counts: int) -> None:
    """The application runs today and counts (flushed at its end)."""
    recorder = consentry.init(manifest_path, home=home, environ=env, background=False, flush_at_exit=False)
    assert recorder.enabled
    for name, n in counts.items():
        recorder.count(name.replace("_", "."), n)
    recorder.close()


@pytest.fixture
def author(server: RunningServer, tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """An author with a registered manifest who said yes (level full) and ran the application today."""
    home = tmp_path / "home"
    env = client_environment(home, tmp_path)
    path = manifest_file(tmp_path, server.url)
    server.admin("/admin/v1/manifests", path.read_bytes())
    enabled = cli(env, "enable", APP, "--manifest", str(path))
    assert enabled.returncode == ExitCode.OK, enabled.stderr
    record(path, home, env, file_open=3, export_png=2)
    return path, home, env


def test_preview_today_shows_the_partial_reports_and_queues_nothing(author):
    _, home, env = author
    assert b"nothing is waiting" in cli(env, "preview", APP).stdout  # the usual preview: no completed day
    shown = cli(env, "preview", APP, "--today")
    assert shown.returncode == ExitCode.OK, shown.stderr
    text = shown.stdout.decode()
    assert text.count("# PARTIAL report") == 2
    assert "replaces it on the server" in text
    raw = cli(env, "preview", APP, "--today", "--raw").stdout
    reports = [consentry.wire.decode(part + b"\n}\n") for part in raw.split(b"\n}\n")[:-1]]
    assert {r.level: r.total("file.open") + r.total("export.png") for r in reports} == {"basic": 3, "full": 2}
    assert all(r.days == (datetime.date.today(),) for r in reports)  # noqa: DTZ011 - the user's day
    assert all(r.first_report for r in reports)
    as_json = json.loads(cli(env, "preview", APP, "--today", "--json").stdout)
    assert [(item["partial"], item["level"]) for item in as_json] == [(True, "basic"), (True, "full")]
    files = home / "apps" / APP
    assert sorted(p.name for p in (files / "partial").iterdir()) == sorted(Path(item["file"]).name for item in as_json)
    assert not (files / "pending").exists() or not list((files / "pending").iterdir())
    assert cli(env, "upload", APP).stdout.count(b"0 sent") == 1  # nothing of today is queued for the uploader


def test_upload_today_is_replaced_by_the_whole_day_and_counts_once(author, server):
    path, home, env = author
    sent = cli(env, "upload", APP, "--today")
    assert sent.returncode == ExitCode.OK, sent.stdout + sent.stderr
    assert b"2 sent" in sent.stdout
    assert stored(server.database) == [("basic", 3), ("full", 2)]
    manifest = consentry.load_manifest(path)
    history = AppSession.open(manifest, home=home, environ=env).outbox.history()
    assert [entry.status for entry in history] == [200, 200]
    assert all(entry.outcome.startswith("sent (partial:") for entry in history)
    assert not list((home / "apps" / APP / "partial").iterdir())  # never kept for a later try

    # Sent again later the same day with more counts: it replaces the earlier partial one.
    record(path, home, env, file_open=1)
    assert cli(env, "upload", APP, "--today").returncode == ExitCode.OK
    assert stored(server.database) == [("basic", 4), ("full", 2)]

    # More use that day, then the day ends: the whole day is reported as usual and replaces the partial reports.
    record(path, home, env, file_open=5)
    today = datetime.date.today()  # noqa: DTZ011 - the user's day
    tomorrow = FixedClock(datetime.datetime.combine(today + datetime.timedelta(days=1), datetime.time(9), datetime.UTC))
    session = AppSession.open(manifest, home=home, environ=env, clock=tomorrow)
    written = session.prepare_reports()
    whole = [consentry.wire.decode(file.read_bytes()) for file in sorted(written)]
    assert [(r.level, r.days, r.total("file.open"), r.first_report) for r in whole] == [
        ("basic", (today,), 9, True),
        ("full", (today,), 0, True),
    ]
    assert session.upload().sent == 2
    assert stored(server.database) == [("basic", 9), ("full", 2)]  # 9, not 3 + 1 + 9: each day once, whole
    statuses = json.loads(cli(env, "history", APP, "--json").stdout)
    assert [item["outcome"].split(" ")[0] for item in statuses] == ["sent"] * 6


def test_upload_today_respects_the_answer(author, server):
    path, home, env = author
    assert cli(env, "ask", APP, "--manifest", str(path)).returncode == ExitCode.OK
    record(path, home, env, file_open=1)
    asked = cli(env, "upload", APP, "--today")
    assert asked.returncode == ExitCode.NOT_SENT
    assert b"approve" in asked.stdout
    assert stored(server.database) == []
    # Back to 'on': the day began under another answer, so it still waits (as the whole day will tomorrow).
    assert cli(env, "enable", APP).returncode == ExitCode.OK
    mixed = cli(env, "upload", APP, "--today")
    assert mixed.returncode == ExitCode.NOT_SENT
    assert b"before your current answer" in mixed.stdout
    assert stored(server.database) == []
    # A kill switch: nothing is built or sent.
    switched = cli({**env, "DO_NOT_TRACK": "1"}, "upload", APP, "--today")
    assert switched.returncode == ExitCode.SWITCHED_OFF
    assert stored(server.database) == []
    # Switched off: today's partial files go with everything unsent.
    assert cli(env, "preview", APP, "--today").returncode == ExitCode.OK
    assert list((home / "apps" / APP / "partial").iterdir())
    assert cli(env, "disable", APP).returncode == ExitCode.OK
    assert not list((home / "apps" / APP / "partial").iterdir())
    assert b"nothing is recorded" in cli(env, "preview", APP, "--today").stdout


def test_nothing_recorded_today_says_how_counts_reach_the_disk(server, tmp_path):
    home = tmp_path / "home"
    env = client_environment(home, tmp_path)
    path = manifest_file(tmp_path, server.url)
    assert cli(env, "enable", APP, "--manifest", str(path)).returncode == ExitCode.OK
    for command in ("preview", "upload"):
        shown = cli(env, command, APP, "--today")
        assert shown.returncode == ExitCode.OK
        assert b"nothing was recorded today yet" in shown.stdout
        assert b"exits" in shown.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["preview", APP, "--today=yes"],
        ["upload", APP, "--today", "2026-01-01"],
        ["upload", APP, "--today", "--raw"],
        ["preview", "../" + APP, "--today"],
        ["preview", "--today"],
    ],
)
def test_malformed_today_arguments_are_usage_errors(tmp_path, args):
    env = client_environment(tmp_path / "home", tmp_path)
    done = cli(env, *args)
    assert done.returncode == ExitCode.USAGE, done.stdout + done.stderr
    assert b"Traceback" not in done.stderr
    assert not (tmp_path / "home" / "apps").exists()


def test_hostile_files_in_the_partial_folder_are_never_followed_or_sent(author, server, tmp_path):
    _, home, env = author
    partial = home / "apps" / APP / "partial"
    partial.mkdir(exist_ok=True)
    outside = tmp_path / "outside.json"
    outside.write_bytes(b"keep me")
    day = datetime.date.today().isoformat()  # noqa: DTZ011 - the user's day
    (partial / f"{day}.basic.json").symlink_to(outside)
    (partial / "2020-01-01.basic.json").write_bytes(b'{"not": "ours"}')
    sent = cli(env, "upload", APP, "--today")
    assert sent.returncode == ExitCode.OK, sent.stdout + sent.stderr
    assert outside.read_bytes() == b"keep me"
    assert stored(server.database) == [("basic", 3), ("full", 2)]
    # The folder replaced by a file: a clear error with a hint, no traceback, nothing sent.
    for entry in partial.iterdir():
        entry.unlink()
    partial.rmdir()
    partial.write_bytes(b"")
    broken = cli(env, "preview", APP, "--today")
    assert broken.returncode == ExitCode.ERROR
    assert b"hint:" in broken.stderr
    assert b"Traceback" not in broken.stderr


def test_a_partial_report_of_a_day_that_has_ended_is_never_sent(author, server):
    """The send checks the day again: after midnight a partial report is not sent (the whole day's report is)."""
    path, home, env = author
    manifest = consentry.load_manifest(path)
    today = datetime.date.today()  # noqa: DTZ011 - the user's day
    evening = FixedClock(datetime.datetime.combine(today, datetime.time(23, 59), datetime.UTC))
    built = today_reports(AppSession.open(manifest, home=home, environ=env, clock=evening))
    assert len(built.reports) == 2
    midnight = FixedClock(datetime.datetime.combine(today + datetime.timedelta(days=1), datetime.time(0), datetime.UTC))
    late = AppSession.open(manifest, home=home, environ=env, clock=midnight)
    send_partial(late, built, HttpTransport())
    assert (built.sent, built.not_sent) == (0, 2)
    assert all("the day ended" in message for message in built.messages)
    assert stored(server.database) == []
    assert load_state(late.paths).first_day == today
    assert not list(late.paths.partial.iterdir())
