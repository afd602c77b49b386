"""A 2xx means durable: every report acknowledged before ``kill -9`` of the server is in the database after it.

A real ``consentry-server serve`` process (SQLite, then PostgreSQL) receives a few hundred distinct valid reports
from concurrent threads; once a good part of them has been acknowledged, and while requests are still in
flight, the server is killed with SIGKILL. The database is then opened directly (sqlite3 or psycopg) and must
hold every acknowledged (reporter, day); the SQLite file must pass ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import datetime
import http.client
import os
import signal
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from consentry.manifest import load_manifest
from consentry.wire import Report, encode
from support.e2e import NO_RATE_LIMITS, run, utc_yesterday
from support.paths import NAPARI
from support.processes import Started, script, start, stop

REPORTS = 600
SENDERS = 16
KILL_AFTER = 100  # acknowledgements before the kill: the rest are still being sent
EPOCH = datetime.date(1970, 1, 1)


def reports() -> list[Report]:
    """Distinct valid napari-like reports: one reporter each, some covering two days."""
    napari = load_manifest(NAPARI)
    yesterday = utc_yesterday()
    made = []
    for number in range(REPORTS):
        days = (yesterday - datetime.timedelta(days=1), yesterday) if number % 3 == 0 else (yesterday,)
        made.append(
            Report(
                app=napari.name,
                app_version=f"1.{number % 7}.0",
                level="basic",
                consent_version=napari.consent_version,
                reporter=f"{number:032x}",
                first_report=number % 2 == 0,
                days=days,
                system={"os": "linux", "python": "3.12"},
            )
        )
    return made


class Load:
    """Threads sending reports until they run out or the server is gone, recording each acknowledgement."""

    def __init__(self, port: int, to_send: list[Report]) -> None:
        self.port = port
        self.queue: Iterator[Report] = iter(to_send)
        self.lock = threading.Lock()
        self.acknowledged: list[Report] = []
        self.failures: list[str] = []
        self.enough = threading.Event()
        self.threads = [threading.Thread(target=self.send, name=f"sender-{n}") for n in range(SENDERS)]

    def next_report(self) -> Report | None:
        with self.lock:
            return next(self.queue, None)

    def send(self) -> None:
        while (report := self.next_report()) is not None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                connection.request(
                    "POST", "/v1/reports/basic", body=encode(report), headers={"content-type": "application/json"}
                )
                # The status line is the acknowledgement: the server answers only once the report is committed.
                status = connection.getresponse().status
            except (OSError, http.client.HTTPException):  # killed: refused, reset, or no answer
                return
            finally:
                connection.close()
            self.record(report, status)

    def record(self, report: Report, status: int) -> None:
        with self.lock:
            if 200 <= status < 300:
                self.acknowledged.append(report)
                if len(self.acknowledged) >= KILL_AFTER:
                    self.enough.set()
            else:
                self.failures.append(f"{status} for {report.reporter}")
                self.enough.set()

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in self.threads)


def acknowledged_rows(acknowledged: list[Report]) -> set[tuple[str, int]]:
    return {(report.reporter, (day - EPOCH).days) for report in acknowledged for day in report.days}


def run_and_kill(database: str, tmp_path: Path) -> tuple[list[Report], int]:
    """Register the manifest, serve ``database``, load it, SIGKILL it; return the acknowledged reports."""
    config = tmp_path / "server.toml"
    config.write_text(NO_RATE_LIMITS, "utf-8")
    options = ["--config", str(config), "--db", database, "--public-db", str(tmp_path / "public.sqlite3")]
    env = {key: value for key, value in os.environ.items() if key != "CONSENTRY_ADMIN_TOKEN"}
    added = run([script("consentry-server"), "apps", "add", *options, str(NAPARI)], env)
    assert added.returncode == 0, added.stderr.decode()

    server: Started = start(
        [script("consentry-server"), "serve", *options, "--host", "127.0.0.1", "--port", "0"],
        env,
        r"listening on http://127\.0\.0\.1:(\d+)",
    )
    to_send = reports()
    load = Load(int(server.match.group(1)), to_send)
    load.start()
    try:
        assert load.enough.wait(120), "the server acknowledged too few reports"
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(30)
    finally:
        stop(server)
        load.join()
    assert server.process.returncode == -signal.SIGKILL
    assert load.failures == []
    with load.lock:
        acknowledged = list(load.acknowledged)
    # The kill came while reports were still being sent: some were never acknowledged.
    assert KILL_AFTER <= len(acknowledged) < len(to_send)
    return acknowledged, len(to_send)


@pytest.mark.slow
def test_every_acknowledged_report_survives_kill_9_on_sqlite(tmp_path):
    path = tmp_path / "consentry.sqlite3"

    acknowledged, _ = run_and_kill(f"sqlite:///{path}", tmp_path)

    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {(bytes(reporter).hex(), day) for reporter, day in db.execute("SELECT reporter, day FROM reports")}
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        orphans = db.execute("SELECT count(*) FROM counters WHERE report_id NOT IN (SELECT id FROM reports)")
        assert orphans.fetchone() == (0,)
    finally:
        db.close()
    missing = acknowledged_rows(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged report rows lost, e.g. {sorted(missing)[:3]}"


@pytest.mark.slow
def test_every_acknowledged_report_survives_kill_9_on_postgresql(tmp_path, fresh_postgres_url):
    acknowledged, _ = run_and_kill(fresh_postgres_url, tmp_path)

    with psycopg.connect(fresh_postgres_url) as connection:
        rows = connection.execute("SELECT reporter, day FROM reports").fetchall()
    stored = {(bytes(reporter).hex(), day) for reporter, day in rows}
    missing = acknowledged_rows(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged report rows lost, e.g. {sorted(missing)[:3]}"


def test_the_reports_sent_are_distinct():
    made = reports()
    assert len({report.reporter for report in made}) == REPORTS
    assert len(acknowledged_rows(made)) == REPORTS + len(range(0, REPORTS, 3))
