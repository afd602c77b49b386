"""The storing process that ``serve`` starts: a real child process, as the serving process uses it.

The application is built the way ``consentry-server serve`` builds it (``create_app(settings)``, which opens the
database itself and so starts a :class:`~consentry_server.commit.process.ProcessStorer`), and called in-process;
the storing process is a real process beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from consentry.wire import Report, encode
from consentry_server.app import create_app
from consentry_server.commit.process import MAX_MESSAGE, ProcessStorer, _message, _messages
from consentry_server.commit.storer import StoringError, ThreadStorer
from consentry_server.config import Settings
from consentry_server.storage import SQLiteStorage
from support.waiting import wait_for

JSON = {"content-type": "application/json"}
LATE_MANIFEST = """
manifest_version = 1

[app]
name = "late-registered"
title = "Late"
homepage = "https://late.example.org"
contact = "https://late.example.org/telemetry"
consent_text = "A tool registered while the server runs."

[levels.basic]
description = "How often it runs."
endpoint = "https://telemetry.late.example.org/v1/reports/basic"
system = ["os"]

[[events]]
name = "late:run"
level = "basic"
purpose = "How often it runs."
"""


@pytest.fixture
def served(settings: Settings, storage: SQLiteStorage) -> Iterator[TestClient]:
    """The application as ``serve`` builds it, its storing process running, over the registered examples."""
    assert settings.storing_process
    assert storage.apps()  # the examples are registered before the application starts
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def storer_of(client: TestClient) -> ProcessStorer:
    storer = client.app.state.consentry.storer  # type: ignore[attr-defined]
    assert isinstance(storer, ProcessStorer)
    return storer


def send(client: TestClient, report: Report) -> object:
    return client.post(f"/v1/reports/{report.level}", content=encode(report), headers=JSON)


def test_serve_stores_reports_in_a_process_of_its_own(served, storage, make_report):
    storer = storer_of(served)
    assert storer.pid is not None
    assert storer.pid != os.getpid()
    report = make_report("full", reporter=3)

    first = send(served, report)
    again = send(served, report)

    assert first.status_code == 200, first.text
    assert first.json() == {"status": "stored", "days": 1}
    assert again.json() == {"status": "duplicate", "days": 1}
    assert storage.report_count() == 1  # committed before the answer: another connection sees it


@pytest.mark.usefixtures("storage")
def test_refusals_keep_their_status_code_field_and_retry_after(settings, make_report, dump):
    with TestClient(create_app(settings.replace(reporter_burst=1, reporter_rate_per_minute=1))) as client:
        yesterday = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1)
        unknown = make_report("full", reporter=4, counts={yesterday: {"napari:secret": 1}})
        before = dump()

        refused = send(client, unknown)
        stored = send(client, make_report("basic", reporter=5))
        limited = send(client, make_report("basic", reporter=5, app_version="1.0.1"))

    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "event_not_in_manifest"
    assert "napari:secret" in error["field"] + error["message"]
    assert stored.status_code == 200
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    after = dump()
    assert len(after["reports"]) == len(before["reports"]) + 1  # only the one stored report
    assert client.app.state.consentry.drops.snapshot() == {"event_not_in_manifest": 1, "rate_limited": 1}


def test_the_request_log_is_written_by_the_storing_process(settings, storage, make_report):
    with TestClient(create_app(settings)) as client:
        assert send(client, make_report("basic", reporter=6)).status_code == 200
        assert client.post("/v1/reports/basic", content=b"{", headers=JSON).status_code == 400
    # closing the application ended the storing process once it had stored what it was sent

    with contextlib.closing(sqlite3.connect(storage.path)) as db:
        rows = db.execute("SELECT route, status, code FROM request_log").fetchall()

    assert rows == [("/v1/reports", 400, "invalid_report")]


def test_a_killed_storing_process_gives_503_then_is_started_again(served, storage, make_report):
    storer = storer_of(served)
    first = storer.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: storer.pid != first, "the storing process to end")

    while (response := send(served, make_report("basic", reporter=7))).status_code == 503:
        assert response.json()["error"]["code"] == "storage_unavailable"
        assert int(response.headers["retry-after"]) > 0
        assert storer.restarts == 0  # a started process answers
        time.sleep(0.05)

    assert response.status_code == 200, response.text
    assert storer.restarts == 1
    assert storer.pid not in (None, first)
    assert storage.report_count() == 1


def test_each_503_while_the_storing_process_restarts_is_one_line_in_the_log(served, make_report, caplog):
    caplog.set_level(logging.WARNING, logger="consentry_server")
    storer = storer_of(served)
    first = storer.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: storer.pid != first, "the storing process to end")

    refused = 0
    while send(served, make_report("basic", reporter=9)).status_code == 503:
        refused += 1
        time.sleep(0.05)

    records = [record for record in caplog.records if record.name == "consentry_server"]
    assert refused > 0
    assert sum("answered 503" in record.getMessage() for record in records) == refused
    for record in records:
        assert record.exc_info is None, record.getMessage()  # no traceback
        assert "\n" not in record.getMessage()


def test_closing_stores_every_report_already_sent_and_ends_the_process(settings, storage, make_report):
    reports = [make_report("basic", reporter=100 + number) for number in range(200)]

    async def scenario() -> tuple[list[object], int | None, subprocess.Popen[bytes] | None]:
        storer = ProcessStorer(settings)
        await storer.start()
        received = datetime.datetime.now(datetime.timezone.utc)
        pending = [
            asyncio.ensure_future(
                storer.store(
                    "basic",
                    encode(report),
                    content_type="application/json",
                    encoding=None,
                    received=received,
                    country="NZ",
                )
            )
            for report in reports
        ]
        await asyncio.sleep(0)  # every report is written to the channel
        process = storer._process  # to see how the process ended
        await storer.close()
        return await asyncio.gather(*pending), storer.pid, process

    outcomes, pid, process = asyncio.run(scenario())

    assert [outcome.status for outcome in outcomes] == ["stored"] * len(reports)  # type: ignore[attr-defined]
    assert pid is None
    assert process is not None
    assert process.returncode == 0
    assert storage.report_count() == len(reports)
    with contextlib.closing(sqlite3.connect(storage.path)) as db:
        countries = db.execute("SELECT DISTINCT country FROM reports").fetchall()
    assert countries == [("NZ",)]


def test_a_manifest_registered_through_the_admin_api_is_known_to_the_next_report(settings, served, today):
    auth = {"authorization": f"Bearer {settings.admin_token}"}
    late = Report(
        app="late-registered",
        app_version="1.0",
        level="basic",
        consent_version="0" * 16,  # not registered yet
        reporter="ab" * 16,
        first_report=True,
        days=(today - datetime.timedelta(days=1),),
    )
    assert send(served, late).json()["error"]["code"] == "unknown_app"  # the storing process caches that

    registered = served.post(
        "/admin/v1/manifests", content=LATE_MANIFEST, headers={**auth, "content-type": "application/toml"}
    )
    assert registered.status_code == 201, registered.text
    consent_version = registered.json()["consent_version"]
    response = send(served, dataclasses.replace(late, consent_version=consent_version))

    assert registered.status_code == 201
    assert response.status_code == 200, response.text  # at once, not after the cache's second


def test_starting_fails_clearly_when_the_database_cannot_be_opened(tmp_path, settings, capfd):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    broken = settings.replace(database=f"sqlite:///{blocker / 'consentry.sqlite3'}")

    async def scenario() -> None:
        await ProcessStorer(broken).start()

    with pytest.raises(StoringError, match="did not start"):
        asyncio.run(scenario())
    [line] = capfd.readouterr().err.splitlines()  # the storing process's: what is wrong and what to do
    assert line.startswith(f"consentry storing process: ERROR: cannot create the folder {blocker} of the database")


def test_storing_in_a_thread_when_the_setting_is_off(settings, storage, make_report):
    with TestClient(create_app(settings.replace(storing_process=False))) as client:
        assert isinstance(client.app.state.consentry.storer, ThreadStorer)
        assert send(client, make_report("basic", reporter=8)).json()["status"] == "stored"
    assert storage.report_count() == 1


# ---- the channel -------------------------------------------------------------------------------------------
def test_channel_messages_are_taken_whole_and_truncated_ones_wait():
    data = _message("log", 1) + _message("report", 2, b"body")
    buffer = bytearray(data[:-3])

    assert list(_messages(buffer)) == [("log", 1)]
    assert bytes(buffer) == data[len(_message("log", 1)) : -3]  # the partial message stays
    buffer += data[-3:]
    assert list(_messages(buffer)) == [("report", 2, b"body")]
    assert buffer == bytearray()


def test_an_oversized_message_on_the_channel_is_an_error():
    buffer = bytearray((MAX_MESSAGE + 1).to_bytes(4, "big") + b"x")

    with pytest.raises(ValueError, match="bytes on the storing channel"):
        list(_messages(buffer))


def test_the_storing_process_refuses_to_run_without_its_settings_or_its_socket():
    command = [sys.executable, "-c", "import sys; from consentry_server.commit.process import main; sys.exit(main())"]
    usage = subprocess.run([*command, "not-a-number"], capture_output=True, text=True, timeout=60, check=False)
    mine, theirs = socket.socketpair()
    with mine, theirs:
        mine.sendall(_message("report", 1, "basic", b"{}", None, None, 0.0, None))
        mine.shutdown(socket.SHUT_WR)
        wrong = subprocess.run(
            [*command, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert usage.returncode == 2
    assert "usage:" in usage.stderr
    assert wrong.returncode == 2
    assert "not given its settings" in wrong.stderr
