"""PostgreSQL down: every report is answered 503 with ``Retry-After`` before its client gives up, and ingest
resumes by itself once PostgreSQL is back.

A real ``consentry-server serve`` process stores into a PostgreSQL cluster of this test's own, which the test
stops (``pg_ctl stop -m fast``: the server closes every connection, as in an outage or a restart) and starts
again. Reports are sent with the client's own HTTP transport and the time limit the client gives each upload:
a request the server does not answer in that time fails the test as it would fail the client.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from consentry.manifest import Manifest
from consentry.transport import HttpTransport, Request, Response
from consentry.wire import Report, encode
from consentry_server.config import Settings
from consentry_server.storage import open_storage
from consentry_server.storage.postgres import CONNECTION_WAIT
from support.pgserver import BINARIES, PostgresServer, find_bindir
from support.postgres import MISSING
from support.processes import script, start, stop

#: How long the client waits for an answer to an upload (consentry.transport.Request's default).
CLIENT_TIMEOUT = Request("", b"").timeout


@pytest.fixture
def postgres_to_stop() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of this test's own: the session's one must keep running for the others."""
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(MISSING.format(pattern=BINARIES), pytrace=False)
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def upload(url: str, report: Report) -> Response:
    """Send ``report`` as the client does (its transport, its time limit); raises if no answer came in time."""
    headers = {"Content-Type": "application/json"}
    return HttpTransport().send(Request(f"{url}/v1/reports/{report.level}", encode(report), headers, CLIENT_TIMEOUT))


def test_the_storage_waits_for_a_connection_well_within_the_clients_time_limit():
    # The storing process may wait for the batch before a report's and then for the report's own batch.
    assert 2 * CONNECTION_WAIT <= CLIENT_TIMEOUT / 2


@pytest.mark.slow
def test_reports_get_503_with_retry_after_in_time_while_postgresql_is_down_then_are_stored(
    tmp_path: Path, postgres_to_stop: PostgresServer, napari: Manifest, make_report
) -> None:
    database = postgres_to_stop.url()
    storage = open_storage(Settings(database=database))
    storage.register_manifest(napari)
    storage.close()
    env = {key: value for key, value in os.environ.items() if key != "CONSENTRY_ADMIN_TOKEN"}
    command = [script("consentry-server"), "serve", "--port", "0", "--db", database]
    server = start([*command, "--public-db", str(tmp_path / "public.sqlite3")], env, r"listening on (http://\S+)")
    url = server.match.group(1)
    try:
        assert upload(url, make_report("basic", reporter=1)).status == 200

        postgres_to_stop.halt()
        answers = [upload(url, make_report("basic", reporter=number)) for number in range(2, 5)]  # one by one
        with ThreadPoolExecutor(16) as senders:  # and many at once: none waits for the others' failures
            answers += senders.map(lambda number: upload(url, make_report("basic", reporter=number)), range(5, 37))
        forget = json.dumps({"app": napari.name, "reporters": [make_report(reporter=1).reporter]}).encode()
        headers = {"Content-Type": "application/json"}  # consentry forget: served by the serving process itself
        answers.append(HttpTransport().send(Request(f"{url}/v1/deletions", forget, headers, CLIENT_TIMEOUT)))

        for answer in answers:
            assert answer.status == 503, answer.body
            assert json.loads(answer.body)["error"]["code"] == "storage_unavailable"
            assert int(answer.header("Retry-After") or 0) > 0

        postgres_to_stop.resume()
        for _ in range(120):  # the pool reconnects by itself; the client would retry later
            if (answer := upload(url, make_report("basic", reporter=100))).status == 200:
                break
            assert answer.status == 503, answer.body
            time.sleep(0.5)
        assert answer.status == 200, answer.body
    finally:
        stop(server)

    storage = open_storage(Settings(database=database))
    try:
        assert storage.report_count() == 2  # before and after: nothing of the refused ones
    finally:
        storage.close()
    output = "".join(server.output)
    assert "Traceback" not in output
    assert sum("answered 503, not stored" in line for line in output.splitlines()) >= len(answers)  # a line each
