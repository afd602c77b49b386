"""``consentry-server backup``: a consistent copy of the database, taken while the server ingests.

The main test runs a real ``serve`` process, sends it reports from a thread without pause, and takes a backup
with a real ``backup`` process in the middle: the copy must be a sound SQLite database (integrity, foreign keys,
every report with its counters) holding every report acknowledged before the backup started, although those
sit in the write-ahead log at that moment, where a copy of the database file would miss them.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consentry.wire import encode
from consentry_server.cli import main
from consentry_server.config import Settings
from consentry_server.storage import SQLiteStorage, open_storage
from support.pgserver import find_bindir
from support.processes import script, start, stop

CONFIG = """
source_rate_per_minute = 1000000
source_burst = 1000000
"""


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = env or {key: value for key, value in os.environ.items() if key != "CONSENTRY_ADMIN_TOKEN"}
    return subprocess.run(
        [script("consentry-server"), *argv], capture_output=True, text=True, timeout=120, check=False, env=environ
    )


@contextlib.contextmanager
def read_only_connection(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        yield db
    finally:
        db.close()


class Sender:
    """Sends full reports of new reporters one after another, keeping the numbers of those answered 200."""

    def __init__(self, url: str, make_report, day: datetime.date) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.make_report = make_report
        self.day = day
        self.acknowledged: list[int] = []
        self.sent = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        connection = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        try:
            while not self.stopping.is_set():
                number = self.sent
                report = self.make_report("full", reporter=number, counts={self.day: {"napari:layer:add_image": 1}})
                self.sent += 1
                connection.request("POST", "/v1/reports/full", encode(report), {"content-type": "application/json"})
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    self.acknowledged.append(number)  # only once the answer arrived: the report is durable
        finally:
            connection.close()

    def wait_for(self, count: int) -> None:
        for _ in range(600):
            if len(self.acknowledged) >= count or not self.thread.is_alive():
                break
            time.sleep(0.1)
        assert len(self.acknowledged) >= count, f"only {len(self.acknowledged)} reports acknowledged"


@pytest.mark.slow
def test_a_backup_taken_while_the_server_ingests_holds_every_acknowledged_report(
    tmp_path, settings: Settings, storage: SQLiteStorage, make_report, today
):
    storage.close()  # the examples are registered; the server is the one writer
    database = settings.sqlite_path
    assert database is not None
    config = tmp_path / "server.toml"
    config.write_text(CONFIG, "utf-8")
    env = {key: value for key, value in os.environ.items() if key != "CONSENTRY_ADMIN_TOKEN"}
    options = ["--config", str(config), "--db", settings.database]
    server = start([script("consentry-server"), "serve", "--port", "0", *options], env, r"listening on (http://\S+)")
    sender = Sender(server.match.group(1), make_report, today - datetime.timedelta(days=1))
    target = tmp_path / "backups" / "consentry-backup.sqlite3"
    target.parent.mkdir()
    sender.thread.start()
    try:
        sender.wait_for(200)
        wal = database.with_name(database.name + "-wal")
        assert wal.stat().st_size > 0  # acknowledged reports are in the write-ahead log, perhaps only there
        before = set(sender.acknowledged)

        result = run("backup", str(target), *options)  # while the sender goes on

        sender.wait_for(len(before) + 50)  # the server went on storing
    finally:
        sender.stopping.set()
        sender.thread.join(30)
        stop(server)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"backed up the database to {target} (")
    assert sorted(path.name for path in target.parent.iterdir()) == [target.name]  # one file, nothing beside it
    with read_only_connection(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("PRAGMA foreign_key_check").fetchall() == []
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        reporters = {int(reporter, 16) for (reporter,) in copy.execute("SELECT hex(reporter) FROM reports")}
        without_counters = copy.execute(
            "SELECT count(*) FROM reports r WHERE NOT EXISTS (SELECT 1 FROM counters c WHERE c.report_id = r.id)"
        ).fetchone()
    assert before <= reporters  # every report acknowledged before the backup started
    assert reporters <= set(range(sender.sent))
    assert without_counters == (0,)  # each report whole: the copy is the database as one commit left it
    assert f"{len(reporters)} report row(s)" in result.stdout


@pytest.fixture
def data(settings: Settings, storage: SQLiteStorage) -> Settings:
    storage.close()
    return settings


def test_a_backup_into_a_folder_is_a_new_time_stamped_file(tmp_path, data, capsys):
    folder = tmp_path / "backups"
    folder.mkdir()

    assert main(["backup", str(folder), "--db", data.database]) == 0

    [written] = folder.iterdir()
    assert written.name.startswith("consentry-")
    assert written.suffix == ".sqlite3"
    assert f"backed up the database to {written} (0 report row(s), " in capsys.readouterr().out


def test_a_backup_never_replaces_a_file(tmp_path, data, capsys):
    existing = tmp_path / "yesterday.sqlite3"
    existing.write_bytes(b"yesterday's backup")

    assert main(["backup", str(existing), "--db", data.database]) == 1

    assert existing.read_bytes() == b"yesterday's backup"
    assert capsys.readouterr().err == (
        f"consentry-server: error: {existing} exists: a backup never replaces a file; name a new file, or a folder\n"
    )


def test_a_backup_of_no_database_says_so_and_creates_none(tmp_path, capsys):
    missing = tmp_path / "nothing" / "consentry.sqlite3"

    assert main(["backup", str(tmp_path / "copy.sqlite3"), "--db", f"sqlite:///{missing}"]) == 1

    assert f"there is no database at {missing} to back up" in capsys.readouterr().err
    assert not missing.parent.exists()
    assert not (tmp_path / "copy.sqlite3").exists()


def test_a_damaged_database_is_not_backed_up(tmp_path, data, capsys):
    assert data.sqlite_path is not None
    data.sqlite_path.write_bytes(b"not a database\n" * 300)

    assert main(["backup", str(tmp_path / "copy.sqlite3"), "--db", data.database]) == 1

    assert "is not a SQLite database, or is damaged" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]  # no copy, no partial file


@pytest.mark.slow
def test_a_postgresql_backup_is_a_pg_dump_archive(tmp_path, fresh_postgres_url, napari):
    storage = open_storage(Settings(database=fresh_postgres_url))
    storage.register_manifest(napari)
    storage.close()
    target = tmp_path / "consentry.dump"

    result = run("backup", str(target), "--db", fresh_postgres_url)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"backed up the database to {target} ({target.stat().st_size} bytes)\n"
    bindir = find_bindir()
    assert bindir is not None
    listing = subprocess.run([bindir / "pg_restore", "--list", target], capture_output=True, text=True, check=True)
    assert "TABLE DATA public manifests" in listing.stdout


def test_a_postgresql_backup_without_pg_dump_says_what_to_run(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "CONSENTRY_ADMIN_TOKEN"}
    env["PATH"] = str(tmp_path)  # no pg_dump there
    target = tmp_path / "consentry.dump"

    result = run("backup", str(target), "--db", "postgresql://telemetry:secret@db.example.org/consentry", env=env)

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("consentry-server: error: pg_dump is not installed here: install PostgreSQL's client")
    assert f"pg_dump --format=custom --file={target} 'postgresql://telemetry@db.example.org/consentry'" in line
    assert "secret" not in line
    assert not target.exists()
