"""What operators run: retention (command and background task), export (command and admin API), the public side
alone (``serve --public-only``), and the group-commit writer (batches under concurrent load, 503 when full).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import http.client
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from consentry.manifest import Manifest, PluginManifest
from consentry.wire import Report, encode
from consentry_server.admin.retention import apply_retention
from consentry_server.app import create_app, create_public_app
from consentry_server.cli import bind, main
from consentry_server.commit.storer import ThreadStorer
from consentry_server.commit.writer import BatchWriter, Overloaded
from consentry_server.config import Settings
from consentry_server.ingest.accept import Acceptor
from consentry_server.ingest.limits import Rate, RateLimiter
from consentry_server.ingest.manifests import Registry
from consentry_server.ingest.routes import DropCounter, Ingest
from consentry_server.publish.release import publish
from consentry_server.storage import PublicStore, SQLiteStorage
from consentry_server.storage.base import Arrival, RequestLog, StoreOutcome, store_report
from support.processes import script, start, stop
from support.waiting import wait_for

NOW = datetime.datetime.now(datetime.timezone.utc)
WAIT = 60.0  # the longest any condition below is waited for; never an expectation of speed


def reporter_id(number: int) -> str:
    return f"{number:032x}"


def db_options(settings: Settings) -> list[str]:
    return ["--db", settings.database, "--public-db", str(settings.public_path)]


def admin(settings: Settings) -> dict[str, str]:
    return {"authorization": f"Bearer {settings.admin_token}"}


def stored_reporters(storage: SQLiteStorage, app: str = "napari-like") -> set[str]:
    return {str(row["reporter"]) for row in storage.export(app)}


# ---- retention -------------------------------------------------------------------------------------------------
@pytest.fixture
def aged(storage: SQLiteStorage, make_report, today) -> SQLiteStorage:
    """Reports of days 61 (expired), 60 and 59 days ago, and request-log lines of 15 and 13 days ago."""
    for number, age in ((1, 61), (2, 60), (3, 59)):
        report = make_report(reporter=number, days=(today - datetime.timedelta(days=age),))
        store_report(storage, report, received=NOW)
    storage.log_requests(
        [
            RequestLog(NOW - datetime.timedelta(days=15), "/v1/reports", 400, "invalid_report", 12),
            RequestLog(NOW - datetime.timedelta(days=13), "/v1/reports", 415, "unsupported_media_type", 5),
        ]
    )
    return storage


def test_the_retention_command_deletes_expired_raw_rows_and_log_lines_and_keeps_aggregates(capsys, settings, aged):
    aggregates = aged.aggregate()
    assert {row.start for row in aggregates.installs if row.period == "day"} == {
        (NOW - datetime.timedelta(days=age)).date() for age in (61, 60, 59)
    }

    assert main(["retention", *db_options(settings)]) == 0

    out = capsys.readouterr().out
    assert "deleted 1 raw report row(s) older than 60 days, 1 log line(s) older than 14 days" in out
    assert stored_reporters(aged) == {reporter_id(2), reporter_id(3)}
    assert aged.statistics()["request_log"] == 1
    assert aged.aggregates() == aggregates  # aggregates are kept forever
    assert main(["retention", *db_options(settings)]) == 0
    assert "deleted 0 raw report row(s)" in capsys.readouterr().out


def test_the_retention_command_reads_the_windows_from_the_config_file(capsys, tmp_path, settings, aged):
    config = tmp_path / "server.toml"
    config.write_text("raw_retention_days = 60\nlog_retention_days = 1\n", "utf-8")
    assert main(["retention", "--config", str(config), *db_options(settings)]) == 0
    assert "1 raw report row(s) older than 60 days, 2 log line(s) older than 1 days" in capsys.readouterr().out
    config.write_text("raw_retention_days = 7\n", "utf-8")
    assert main(["retention", "--config", str(config), *db_options(settings)]) == 0
    assert "deleted 2 raw report row(s) older than 7 days" in capsys.readouterr().out
    assert aged.report_count() == 0


def test_apply_retention_measures_from_the_time_it_is_given(settings, aged):
    assert apply_retention(aged, settings, now=NOW - datetime.timedelta(days=5)).raw_rows == 0
    result = apply_retention(aged, settings, now=NOW + datetime.timedelta(days=1))
    assert (result.raw_rows, result.log_rows) == (2, 1)  # 62 and 61 days old by then; log lines 16 days old
    assert stored_reporters(aged) == {reporter_id(3)}


def test_the_running_server_applies_retention_itself_when_it_starts(settings, aged):
    with TestClient(create_app(settings.replace(retention_interval_hours=1), aged)) as client:
        wait_for(lambda: aged.report_count() == 2, "the background retention task")
        assert client.get("/healthz").status_code == 200
    assert stored_reporters(aged) == {reporter_id(2), reporter_id(3)}
    assert aged.statistics()["request_log"] == 1


def test_a_server_with_retention_interval_0_leaves_retention_to_the_command(settings, aged, make_report):
    with TestClient(create_app(settings.replace(retention_interval_hours=0), aged)) as client:
        response = client.post(
            "/v1/reports/basic", content=encode(make_report(reporter=4)), headers={"content-type": "application/json"}
        )
        assert response.status_code == 200
    assert stored_reporters(aged) == {reporter_id(n) for n in (1, 2, 3, 4)}


# ---- export ----------------------------------------------------------------------------------------------------
@pytest.fixture
def three_days(storage: SQLiteStorage, make_report, today) -> list[datetime.date]:
    """Reporter n (1..3) reported on the n-th of the three days before today (reporter 2 from Japan)."""
    days = [today - datetime.timedelta(days=age) for age in (3, 2, 1)]
    for number, day in enumerate(days, 1):
        report = make_report(reporter=number, days=(day,), system={"os": "linux"})
        store_report(storage, report, received=NOW, country="JP" if number == 2 else None)
    return days


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_the_export_command_writes_json_lines(capsys, settings, three_days):
    assert main(["export", "napari-like", *db_options(settings)]) == 0
    captured = capsys.readouterr()
    rows = lines(captured.out)
    assert [(row["reporter"], row["day"]) for row in rows] == [
        (reporter_id(n), day.isoformat()) for n, day in enumerate(three_days, 1)
    ]
    assert rows[1] == {
        "app": "napari-like",
        "level": "basic",
        "reporter": reporter_id(2),
        "day": three_days[1].isoformat(),
        "received": datetime.datetime.fromtimestamp(int(NOW.timestamp()), datetime.timezone.utc).isoformat(),
        "app_version": "1.0.0",
        "first_report": False,
        "country": "JP",
        "facts": {"system.os": "linux"},
        "counters": [],
    }
    assert captured.out.splitlines()[0] == json.dumps(rows[0], sort_keys=True)
    assert "exported 3 row(s) of napari-like" in captured.err


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [(1, None, [2, 3]), (None, 1, [1, 2]), (1, 1, [2]), (0, 2, [1, 2, 3]), (2, 0, [])],
)
def test_the_export_command_selects_days(capsys, settings, three_days, since, until, expected):
    options = []
    if since is not None:
        options += ["--since", three_days[since].isoformat()]
    if until is not None:
        options += ["--until", three_days[until].isoformat()]
    assert main(["export", "napari-like", *options, *db_options(settings)]) == 0
    assert [row["reporter"] for row in lines(capsys.readouterr().out)] == [reporter_id(n) for n in expected]


def test_the_export_command_writes_to_a_file(capsys, tmp_path, settings, three_days):
    output = tmp_path / "export.jsonl"
    since = three_days[2].isoformat()
    assert main(["export", "napari-like", "--output", str(output), "--since", since, *db_options(settings)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "exported 1 row(s)" in captured.err
    assert [row["reporter"] for row in lines(output.read_text("utf-8"))] == [reporter_id(3)]


@pytest.mark.usefixtures("three_days")
def test_the_export_command_refuses_a_bad_date(capsys, settings):
    with pytest.raises(SystemExit) as exited:
        main(["export", "napari-like", "--since", "2026-13-01", *db_options(settings)])
    assert exited.value.code == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.usefixtures("three_days")
def test_the_export_api_wants_the_admin_token(client):
    assert client.get("/admin/v1/export/napari-like").status_code == 401
    response = client.get("/admin/v1/export/napari-like", headers={"authorization": "Bearer not-the-token"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert "reporter" not in response.text


def test_the_export_api_knows_no_unknown_application(client, settings):
    response = client.get("/admin/v1/export/not-registered", headers=admin(settings))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_app"


@pytest.mark.usefixtures("three_days")
@pytest.mark.parametrize("query", ["since=2026-13-01", "until=yesterday", "since=2026-1-1", "until=2026-11-01T00"])
def test_the_export_api_refuses_a_bad_date(client, settings, query):
    response = client.get(f"/admin/v1/export/napari-like?{query}", headers=admin(settings))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_date"


def test_the_export_api_streams_json_lines_of_the_days_asked(client, settings, three_days, capsys):
    response = client.get("/admin/v1/export/napari-like", headers=admin(settings))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert main(["export", "napari-like", *db_options(settings)]) == 0
    assert response.text == capsys.readouterr().out  # the same rows as the command

    since, until = three_days[1].isoformat(), three_days[2].isoformat()
    response = client.get(f"/admin/v1/export/napari-like?since={since}&until={until}", headers=admin(settings))
    assert [row["reporter"] for row in lines(response.text)] == [reporter_id(2), reporter_id(3)]


# ---- the public side alone -------------------------------------------------------------------------------------
class FileWatch:
    """Records the files opened, SQLite databases connected to and directories made while ``active``."""

    EVENTS = ("open", "sqlite3.connect", "os.mkdir")
    installed = False
    active: list[str] | None = None

    @classmethod
    def hook(cls, event: str, args: tuple[object, ...]) -> None:
        if cls.active is not None and event in cls.EVENTS and args:
            cls.active.append(f"{event} {args[0]!r}")

    @classmethod
    @contextlib.contextmanager
    def watching(cls) -> Iterator[list[str]]:
        if not cls.installed:  # audit hooks cannot be removed: one, switched on and off
            sys.addaudithook(cls.hook)
            cls.installed = True
        cls.active = seen = []
        try:
            yield seen
        finally:
            cls.active = None


@pytest.fixture
def public_only(tmp_path, settings, storage, make_report) -> Settings:
    """Settings of a public-only server: a published store in its own folder, a raw database that is
    ``settings.database`` (it exists: ``storage`` is open on it)."""
    for number in range(3):
        store_report(storage, make_report(reporter=number, system={"os": "linux"}), received=NOW)
    storage.aggregate()
    public = tmp_path / "public" / "public.sqlite3"
    publish(storage, PublicStore(public), threshold=1)
    return settings.replace(public_database=str(public))


def test_the_public_app_serves_published_data_and_never_touches_the_raw_database(public_only):
    raw = public_only.sqlite_path
    assert raw is not None
    assert raw.exists()
    with FileWatch.watching() as seen, TestClient(create_public_app(public_only)) as client:
        installs = client.get("/api/v1/apps/napari-like/installs?period=day")
        report = client.post("/v1/reports/basic", content=b"{}", headers={"content-type": "application/json"})
        admin_stats = client.get("/admin/v1/stats", headers=admin(public_only))
        deletion = client.post("/v1/deletions", content=b"{}", headers={"content-type": "application/json"})
    assert installs.status_code == 200
    assert [row["reporters"] for row in installs.json()["rows"]] == [3]
    assert (report.status_code, admin_stats.status_code, deletion.status_code) == (404, 404, 404)
    assert any("public.sqlite3" in line for line in seen)  # the watch works: the public store was read
    assert [line for line in seen if raw.name in line or str(raw.parent) in line] == []


@pytest.mark.slow
def test_serve_public_only_never_creates_the_raw_database(tmp_path, public_only):
    raw = tmp_path / "raw" / "consentry.sqlite3"
    command = [script("consentry-server"), "serve", "--public-only", "--db", f"sqlite:///{raw}"]
    command += ["--public-db", str(public_only.public_path), "--host", "127.0.0.1", "--port", "0"]
    started = start(command, dict(os.environ), r"listening on http://127\.0\.0\.1:(\d+)")
    try:
        port = int(started.match.group(1))
        answers = {
            path: request(port, "GET", path) for path in ("/api/v1/apps/napari-like/installs?period=day", "/healthz")
        }
        answers["/v1/reports/basic"] = request(port, "POST", "/v1/reports/basic", b"{}")
        answers["/admin/v1/stats"] = request(port, "GET", "/admin/v1/stats")
    finally:
        assert stop(started) == 0, "".join(started.output)
    assert answers["/healthz"][0] == 200
    status, body = answers["/api/v1/apps/napari-like/installs?period=day"]
    assert status == 200
    assert [row["reporters"] for row in json.loads(body)["rows"]] == [3]
    assert answers["/v1/reports/basic"][0] == 404
    assert answers["/admin/v1/stats"][0] == 404
    assert not raw.parent.exists()


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        connection.request(method, path, body=body, headers={"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# ---- group commit ----------------------------------------------------------------------------------------------
class GatedStorage(SQLiteStorage):
    """The SQLite storage, whose batches wait for ``gate``; ``entered`` is set when the first one arrives."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def store_batch(self, arrivals: Sequence[Arrival]) -> list[StoreOutcome | Exception]:
        self.entered.set()
        if not self.gate.wait(WAIT):
            raise TimeoutError("the test never opened the gate")
        return super().store_batch(arrivals)


@pytest.fixture
def gated(
    tmp_path,
    manifests: dict[str, Manifest],
    napari_plugins: dict[str, PluginManifest],
) -> Iterator[GatedStorage]:
    storage = GatedStorage(tmp_path / "gated" / "consentry.sqlite3")
    try:
        storage.migrate()
        for manifest in [*manifests.values(), *napari_plugins.values()]:
            storage.register_manifest(manifest)
        yield storage
    finally:
        storage.gate.set()
        storage.close()


@contextlib.contextmanager
def uvicorn_in_a_thread(app: Starlette) -> Iterator[int]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1 in a thread; stop it on exit."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-under-test")
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), "uvicorn to start")
        assert server.started, "uvicorn did not start"
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(WAIT)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


async def nodelay_of_an_accepted_connection(sock: socket.socket) -> int:
    """Serve ``sock`` with asyncio, as uvicorn does, connect once, and read TCP_NODELAY on the server's side."""
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(handle, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            return await asyncio.wait_for(accepted, WAIT)
        finally:
            writer.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_served_socket_answers_without_waiting_for_delayed_acks(host):
    # With Nagle's algorithm on, an answer written in two parts (headers, then body) waits for the client's
    # delayed acknowledgement: about 40 ms per request on a kept-alive connection.
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    sock = bind(host, 0)
    assert asyncio.run(nodelay_of_an_accepted_connection(sock)) != 0


def post_report(port: int, report: Report) -> tuple[int, bytes]:
    return request(port, "POST", f"/v1/reports/{report.level}", encode(report))


@pytest.mark.slow
def test_50_concurrent_reports_are_all_stored_in_few_batches(settings, gated, make_report):
    reports = [make_report(reporter=number) for number in range(50)]
    app = create_app(settings.replace(retention_interval_hours=0), gated)
    writer: BatchWriter = app.state.consentry.storer.writer
    with uvicorn_in_a_thread(app) as port, ThreadPoolExecutor(max_workers=50) as pool:
        answers = [pool.submit(post_report, port, report) for report in reports]
        # The writer holds the first batch at the gate; every other report queues up behind it.
        wait_for(lambda: writer._queue.unfinished_tasks == 50, "all 50 reports to reach the writer")
        assert not any(answer.done() for answer in answers)  # no 2xx before the commit
        gated.gate.set()
        results = [answer.result(WAIT) for answer in answers]

    assert [status for status, _ in results] == [200] * 50
    assert {json.loads(body)["status"] for _, body in results} == {"stored"}
    assert stored_reporters(gated) == {reporter_id(number) for number in range(50)}
    assert writer.stored == 50
    assert writer.batches <= 2  # the batch held at the gate, then everything that queued meanwhile


def test_a_full_writer_queue_answers_503_with_retry_after(settings, gated, make_report):
    writer = BatchWriter(gated, max_queue=2)
    limiter = RateLimiter(Rate(600, 600), Rate(10, 60))
    storer = ThreadStorer(Acceptor(settings, Registry(gated), limiter), writer)
    ingest = Ingest(settings, storer, DropCounter(), limiter)
    app = Starlette(routes=[Route("/v1/reports/{level}", ingest.endpoint, methods=["POST"])])
    try:
        held = writer.submit(Arrival(make_report(reporter=1), NOW))
        assert gated.entered.wait(WAIT)  # the writer took it and waits at the gate
        queued = [writer.submit(Arrival(make_report(reporter=n), NOW)) for n in (2, 3)]
        with pytest.raises(Overloaded):
            writer.submit(Arrival(make_report(reporter=4), NOW))

        with TestClient(app) as client:
            response = client.post(
                "/v1/reports/basic",
                content=encode(make_report(reporter=5)),
                headers={"content-type": "application/json"},
            )

        assert response.status_code == 503
        assert response.headers["retry-after"].isdigit()
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["code"] == "overloaded"
        assert ingest.drops.snapshot() == {"overloaded": 1}
        gated.gate.set()
        assert [future.result(WAIT).status for future in (held, *queued)] == ["stored"] * 3
    finally:
        gated.gate.set()
        writer.close()
    assert stored_reporters(gated) == {reporter_id(n) for n in (1, 2, 3)}
    assert gated.statistics()["request_log"] == 1  # the refusal, logged
