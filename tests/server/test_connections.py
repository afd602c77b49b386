"""Hostile connections against a real ``consentry-server serve`` on 127.0.0.1 (uvicorn, as in production).

The servers run with at most 256 open files (``RLIMIT_NOFILE``), so that more half-sent requests than the
process has descriptors take a few hundred sockets instead of thousands. Other loopback addresses (127.0.0.2 and
up) play other clients. Each test says what the server must still do: serve a normal client, refuse clearly
(JSON with a code), cut slow requests, refuse huge heads, and log a client that hangs up in one line.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import selectors
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from consentry import load_manifest
from consentry.wire import Report, encode
from support.paths import NAPARI
from support.processes import ADMIN_TOKEN, RunningServer, script, start, stop
from support.waiting import wait_for

pytestmark = pytest.mark.slow

#: Open files the servers may have: fewer than the half-sent requests the tests make.
DESCRIPTORS = 256
HALF_SENT = 300
WAIT = 30.0
#: Sets the limit on open files, then becomes the server.
LIMITED = "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]),) * 2); "
LIMITED += "os.execv(sys.argv[2], sys.argv[2:])"


def serve(tmp_path: Path, config: str = "") -> contextlib.AbstractContextManager[RunningServer]:
    """``consentry-server serve`` with ``config`` (TOML) and at most DESCRIPTORS open files, napari-like registered."""

    @contextlib.contextmanager
    def running() -> Iterator[RunningServer]:
        data = tmp_path / "server"
        settings = tmp_path / "consentry.toml"
        settings.write_text(config, "utf-8")
        database, public = data / "consentry.sqlite3", data / "public.sqlite3"
        command = [sys.executable, "-c", LIMITED, str(DESCRIPTORS), script("consentry-server"), "serve"]
        command += ["--config", str(settings), "--db", f"sqlite:///{database}", "--public-db", str(public)]
        command += ["--host", "127.0.0.1", "--port", "0"]
        env = {**os.environ, "CONSENTRY_ADMIN_TOKEN": ADMIN_TOKEN}
        started = start(command, env, r"listening on (http://127\.0\.0\.1:\d+)")
        try:
            server = RunningServer(started.match.group(1), database, public, started)
            server.admin("/admin/v1/manifests", NAPARI.read_bytes())
            yield server
        finally:
            stop(started)

    return running()


def port(server: RunningServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def connect(server: RunningServer, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(WAIT)
    sock.connect(("127.0.0.1", port(server)))
    return sock


def half_sent(server: RunningServer, source: str, path: str = "/v1/reports/basic") -> socket.socket:
    """A request whose head is sent and of whose 1000-byte body one byte is: then nothing more."""
    sock = connect(server, source)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    sock.sendall(head.encode() + b"{")
    return sock


def answer(sock: socket.socket) -> tuple[int, str | None]:
    """The status and error code of the answer read until the server closes the connection."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head else 0
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    return status, code


def get(server: RunningServer, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=WAIT) as response:  # noqa: S310 - our own server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post_report(server: RunningServer, reporter: int) -> int:
    manifest = load_manifest(NAPARI)
    report = Report(
        app="napari-like",
        app_version="1.0.0",
        level="basic",
        consent_version=manifest.consent_version,
        reporter=f"{reporter:032x}",
        first_report=False,
        days=(datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1),),
    )
    request = urllib.request.Request(  # noqa: S310 - our own server
        server.url + "/v1/reports/basic", data=encode(report), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=WAIT) as response:  # noqa: S310
        return response.status


@pytest.fixture
def default_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server with the default settings."""
    with serve(tmp_path) as server:
        yield server


# ---- many slow connections -------------------------------------------------------------------------------------
def test_a_normal_client_is_served_while_another_address_holds_more_half_sent_requests_than_descriptors(
    default_server,
):
    slow = [half_sent(default_server, "127.0.0.2") for _ in range(HALF_SENT)]
    try:
        assert get(default_server, "/healthz") == (200, {"status": "ok"})
        assert post_report(default_server, 1) == 200
        # One address holds at most max_connections_per_source (64): every other one was refused at once, clearly.
        refused = answered(slow, HALF_SENT - 64)
        assert len(refused) == HALF_SENT - 64
        assert {answer(sock) for sock in refused} == {(503, "too_many_connections_from_source")}
    finally:
        for sock in slow:
            sock.close()


def answered(socks: list[socket.socket], count: int) -> list[socket.socket]:
    """The sockets of ``socks`` the server wrote to, once ``count`` of them are (then any more at that moment)."""
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        ready: set[socket.socket] = set()
        deadline = time.monotonic() + WAIT
        while len(ready) < count and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                ready.add(key.fileobj)  # type: ignore[arg-type]
                selector.unregister(key.fileobj)
        ready.update(key.fileobj for key, _ in selector.select(timeout=0.5))  # type: ignore[misc]
    return [sock for sock in socks if sock in ready]


def test_over_the_connection_limit_clients_are_refused_at_once_then_served_once_slow_requests_time_out(tmp_path):
    # Five addresses, 60 half-sent requests each: under the limit per address, over the limit of the server (at
    # most 256 open files leave 128 for connections).
    with serve(tmp_path, "request_timeout_seconds = 2\n") as server:
        slow = [half_sent(server, f"127.0.0.{2 + number % 5}") for number in range(HALF_SENT)]
        statuses: list[tuple[int, object]] = []

        def served() -> bool:
            status, body = get(server, "/healthz")
            statuses.append((status, body))
            return status == 200

        wait_for(served, "/healthz to be served")
        answers = [answer(sock) for sock in slow]

    # Until the slow requests were cut, a client was refused at once, with a reason (not left waiting).
    for status, body in statuses[:-1]:
        assert status == 503
        assert body["error"]["code"] == "too_many_connections"  # type: ignore[index]
    assert statuses[-1] == (200, {"status": "ok"})
    assert sorted(set(answers)) == [(408, "request_timeout"), (503, "too_many_connections")]
    assert answers.count((408, "request_timeout")) == 128


# ---- the time a request may take to arrive -------------------------------------------------------------------
def test_requests_that_do_not_arrive_whole_in_time_get_408_and_are_counted(tmp_path):
    with serve(tmp_path, "request_timeout_seconds = 1\n") as server:
        idle = connect(server)
        head_only = connect(server)
        head_only.sendall(b"POST /v1/reports/basic HTTP/1.1\r\nHost: x\r\n")
        trickle = connect(server)
        half = half_sent(server, "127.0.0.1")
        # A head sent one byte at a time, each in time to keep the connection alive, is still cut.
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 1000
        sent = 0
        with contextlib.suppress(OSError):
            for byte in head:
                trickle.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.01)

        assert answer(idle) == (408, "request_timeout")
        assert answer(head_only) == (408, "request_timeout")
        assert answer(half) == (408, "request_timeout")
        assert answer(trickle) == (408, "request_timeout")
        assert sent < len(head)
        # The request whose body was awaited is counted as a refusal, like any other.
        assert server.admin("/admin/v1/stats")["refused"] == {"request_timeout": 1}  # type: ignore[index]
        assert get(server, "/healthz") == (200, {"status": "ok"})
        output = "".join(server.started.output)
    assert "Traceback" not in output
    assert "127.0.0.1" not in output.replace(server.url, "")


# ---- the size of request heads -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        b"X-Huge: " + b"a" * (32 * 1024 * 1024) + b"\r\n",  # 32 MiB, in many reads
        b"".join(b"X-%d: %s\r\n" % (number, b"b" * 1000) for number in range(100)),  # 100 KB, likely in one read
        b"X-Long-Line: " + b"c" * (65 * 1024) + b"\r\n",
    ],
    ids=["32MiB_header", "100_headers_of_1KB", "a_65KiB_header"],
)
def test_request_heads_over_the_limit_get_431(default_server, headers):
    sock = connect(default_server)
    with contextlib.suppress(OSError):  # the server may stop reading before the client stops sending
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert answer(sock) == (431, "headers_too_large")
    assert get(default_server, "/healthz") == (200, {"status": "ok"})


def test_a_request_head_under_the_limit_is_served(default_server):
    sock = connect(default_server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"d" * 60_000 + b"\r\nConnection: close\r\n\r\n")
    assert answer(sock)[0] == 200


# ---- a client that hangs up --------------------------------------------------------------------------------
INGEST_PATHS = ["/v1/reports/basic", "/v1/traces", "/telemetry/napari-like", "/dfx/v1/commands", "/v1/deletions"]


def test_a_client_that_hangs_up_mid_body_costs_one_line_of_log_on_every_ingest_route(default_server):
    output = default_server.started.output
    for path in INGEST_PATHS:
        sock = half_sent(default_server, "127.0.0.1", path)
        time.sleep(0.2)  # the body is being read
        sock.close()

    def hung_up() -> list[str]:
        return [line for line in output if "hung up" in line]

    wait_for(lambda: len(hung_up()) == len(INGEST_PATHS), "a line per hang-up")
    assert get(default_server, "/healthz") == (200, {"status": "ok"})
    text = "".join(output)
    assert "Traceback" not in text
    assert "Exception in ASGI application" not in text
    assert sorted(line.split("'")[1] for line in hung_up()) == sorted(INGEST_PATHS)
    assert "127.0.0.1" not in text.replace(default_server.url, "")
    refused = default_server.admin("/admin/v1/stats")["refused"]  # type: ignore[index]
    assert refused == {"client_disconnected": len(INGEST_PATHS)}
