"""HttpTransport against real misbehaving servers on 127.0.0.1: hangs, resets, drips, redirects, floods, proxies.

Each server is a raw TCP socket served by threads of the test, so it can misbehave at the byte level. The
transport must always come back, with a :class:`Response` or a :class:`TransportError`, and never follow the
server anywhere else. Where a time limit is the point, the call runs in a thread that is joined with a generous
timeout, and the test asserts that it finished and what it returned (never how long it took).
"""

from __future__ import annotations

import base64
import datetime
import gzip
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import consentry
from consentry._local.bookkeeping import load_state
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from consentry._send.upload import upload_pending
from consentry.testing import FixedClock
from consentry.transport import MAX_RESPONSE_BYTES, HttpTransport, Request, Response, TransportError

JOIN = 20.0
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
NO_PROXY_VARIABLES = ("no_proxy", "NO_PROXY")


# ---- raw servers ------------------------------------------------------------------------------------------------
@dataclass
class Connection:
    """One accepted connection: the socket and every byte the client sent on it."""

    sock: socket.socket
    received: bytearray = field(default_factory=bytearray)

    def read_request(self, stop: threading.Event) -> bytes:
        """Read one request (head and ``Content-Length`` body); return what was read, maybe partial."""
        while b"\r\n\r\n" not in self.received:
            if not self._recv(stop):
                return bytes(self.received)
        head, _, rest = bytes(self.received).partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            if not self._recv(stop):
                break
            rest = bytes(self.received).partition(b"\r\n\r\n")[2]
        return bytes(self.received)

    def read_head(self, stop: threading.Event) -> bytes:
        """Read up to the end of the request head (for a proxy's CONNECT)."""
        while b"\r\n\r\n" not in self.received:
            if not self._recv(stop):
                break
        return bytes(self.received)

    def _recv(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return False
            if not chunk:
                return False
            self.received += chunk
            return True
        return False


Handler = Callable[[Connection, threading.Event], None]


class RawServer:
    """A TCP server on 127.0.0.1; each connection is handled by ``handler`` in its own thread until stopped."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stop_event = threading.Event()
        self.connections: list[Connection] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name=f"raw-server-{self.port}", daemon=True)
        self._accepter.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stop_event.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(0.05)
            connection = Connection(sock)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            with self._lock:
                self.connections.append(connection)
                self._threads.append(thread)
            thread.start()

    def _serve(self, connection: Connection) -> None:
        try:
            self.handler(connection, self.stop_event)
        except OSError:
            pass  # the client went away: that is its right
        finally:
            connection.sock.close()

    def requests(self) -> list[bytes]:
        with self._lock:
            return [bytes(connection.received) for connection in self.connections]

    def stop(self) -> None:
        self.stop_event.set()
        self._accepter.join(JOIN)
        self.listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(JOIN)
        assert not self._accepter.is_alive()
        assert not any(thread.is_alive() for thread in threads)


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    """Start raw servers; every one is stopped at the end of the test."""
    servers: list[RawServer] = []

    def serve(handler: Handler) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests go straight to 127.0.0.1 unless a test configures a proxy itself."""
    for name in PROXY_VARIABLES + NO_PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# ---- handlers -----------------------------------------------------------------------------------------------------
def hang(connection: Connection, stop: threading.Event) -> None:
    """Read the request and never answer."""
    connection.read_request(stop)
    stop.wait()


def reset(connection: Connection, stop: threading.Event) -> None:  # noqa: ARG001 - the handler signature
    """Reset the connection at once (SO_LINGER 0: close sends RST)."""
    connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def answer(raw: bytes) -> Handler:
    """Read the request, send ``raw``, close."""

    def handler(connection: Connection, stop: threading.Event) -> None:
        connection.read_request(stop)
        connection.sock.sendall(raw)

    return handler


def drip(head: bytes, *, then: bytes = b"x") -> Handler:
    """Read the request, then send ``head`` and ``then`` forever, one byte every 0.1 s."""

    def handler(connection: Connection, stop: threading.Event) -> None:
        connection.read_request(stop)
        index = 0
        while not stop.wait(0.1):
            byte = head[index : index + 1] or then
            connection.sock.sendall(byte)
            index += 1

    return handler


def flood(size: int) -> Handler:
    """Answer 200 with a body of ``size`` bytes."""

    def handler(connection: Connection, stop: threading.Event) -> None:
        connection.read_request(stop)
        connection.sock.settimeout(5.0)
        connection.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
        chunk = b"x" * 65536
        sent = 0
        while sent < size and not stop.is_set():
            connection.sock.sendall(chunk)  # raises once the client closed the connection
            sent += len(chunk)

    return handler


def proxy_refusing(connection: Connection, stop: threading.Event) -> None:
    """An HTTPS proxy that reads the CONNECT and answers 403."""
    connection.read_head(stop)
    connection.sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def proxy_hanging(connection: Connection, stop: threading.Event) -> None:
    """An HTTPS proxy that reads the CONNECT and never answers."""
    connection.read_head(stop)
    stop.wait()


# ---- helpers ------------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a call made in a thread returned or raised, once the thread finished."""

    finished: bool
    result: object = None
    error: BaseException | None = None


def in_thread(function: Callable[[], object]) -> Outcome:
    """Run ``function`` in a thread; wait at most JOIN seconds for it."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = function()
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(JOIN)
    error = box.get("error")
    return Outcome(not thread.is_alive(), box.get("result"), error if isinstance(error, BaseException) else None)


def post(url: str, *, timeout: float = 5.0, body: bytes = b'{"report": 1}') -> Outcome:
    request = Request(url, body, {"Content-Type": "application/json"}, timeout=timeout)
    return in_thread(lambda: HttpTransport(user_agent="consentry-test").send(request))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- plain answers ----------------------------------------------------------------------------------------------
def test_a_500_answer_is_a_response_and_the_request_is_a_post_of_the_body(serve):
    server = serve(answer(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nConnection: close\r\n\r\noops!"))
    outcome = post(f"{server.url}/v1/reports/basic?x=1", body=b"the report")
    assert outcome.finished
    assert outcome.error is None
    assert isinstance(outcome.result, Response)
    assert (outcome.result.status, outcome.result.body) == (500, b"oops!")
    [request] = server.requests()
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/reports/basic?x=1 HTTP/1.1"
    assert b"User-Agent: consentry-test" in lines
    assert b"Content-Type: application/json" in lines
    assert body == b"the report"


def test_a_429_answer_carries_its_retry_after_header(serve):
    server = serve(answer(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n"))
    outcome = post(f"{server.url}/v1/reports/basic")
    assert outcome.finished
    assert isinstance(outcome.result, Response)
    assert outcome.result.status == 429
    assert outcome.result.header("retry-after") == "120"
    assert outcome.result.header("Retry-After") == "120"


def test_a_redirect_is_returned_and_never_followed(serve):
    target = serve(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    location = f"{target.url}/elsewhere"
    server = serve(answer(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()))
    outcome = post(f"{server.url}/v1/reports/basic")
    assert outcome.finished
    assert isinstance(outcome.result, Response)
    assert outcome.result.status == 302
    assert outcome.result.header("Location") == location
    assert len(server.requests()) == 1
    assert target.requests() == []  # the Location was never contacted


# ---- no answer ----------------------------------------------------------------------------------------------------
def test_a_server_that_never_answers_gives_a_transport_error(serve):
    server = serve(hang)
    outcome = post(f"{server.url}/v1/reports/basic", timeout=0.5)
    assert outcome.finished
    assert isinstance(outcome.error, TransportError)
    assert "time limit" in str(outcome.error)
    [request] = server.requests()
    assert request.startswith(b"POST /v1/reports/basic ")


def test_a_reset_connection_gives_a_transport_error(serve):
    server = serve(reset)
    outcome = post(f"{server.url}/v1/reports/basic")
    assert outcome.finished
    assert isinstance(outcome.error, TransportError)
    assert len(server.requests()) == 1  # the connection was made, then reset


def test_a_refused_connection_gives_a_transport_error():
    outcome = post(f"http://127.0.0.1:{closed_port()}/v1/reports/basic")
    assert outcome.finished
    assert isinstance(outcome.error, TransportError)


@pytest.mark.parametrize(
    ("head", "then"),
    [
        pytest.param(b"HTTP/1.1 200 ", b"O", id="status-line"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Drip: ", b"y", id="headers"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"z", id="body"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffff\r\n", b"z", id="chunked-body"),
    ],
)
def test_a_server_dripping_its_answer_forever_is_cut_off_at_the_time_limit(serve, head, then):
    # One byte every 0.1 s never trips the socket's own timeout: only the watchdog can end this.
    server = serve(drip(head, then=then))
    outcome = post(f"{server.url}/v1/reports/basic", timeout=0.5)
    assert outcome.finished
    assert isinstance(outcome.error, TransportError)
    assert outcome.result is None


def test_a_huge_answer_is_read_only_up_to_the_limit(serve):
    server = serve(flood(10 * 1024 * 1024))
    outcome = post(f"{server.url}/v1/reports/basic", timeout=10.0)
    assert outcome.finished
    assert outcome.error is None
    assert isinstance(outcome.result, Response)
    assert outcome.result.status == 200
    assert len(outcome.result.body) == MAX_RESPONSE_BYTES


def test_an_unsupported_scheme_gives_a_transport_error():
    outcome = post("ftp://127.0.0.1/v1/reports/basic")
    assert outcome.finished
    assert isinstance(outcome.error, TransportError)


# ---- proxies ------------------------------------------------------------------------------------------------------
def _connect_lines(proxy: RawServer) -> list[list[bytes]]:
    return [request.split(b"\r\n\r\n")[0].split(b"\r\n") for request in proxy.requests()]


def test_https_goes_through_the_proxy_with_a_connect_to_the_targets_host_and_port(serve, monkeypatch):
    target = serve(hang)
    proxy = serve(proxy_refusing)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    outcome = post(f"https://127.0.0.1:{target.port}/v1/reports/basic")
    assert outcome.finished
    assert isinstance(outcome.error, TransportError)
    assert "403" in str(outcome.error)
    [lines] = _connect_lines(proxy)
    assert lines[0].startswith(f"CONNECT 127.0.0.1:{target.port} ".encode())
    assert target.requests() == []  # nothing went to the target directly


def test_https_to_a_host_name_connects_through_the_proxy_on_port_443(serve, monkeypatch):
    proxy = serve(proxy_refusing)
    monkeypatch.setenv("https_proxy", f"127.0.0.1:{proxy.port}")  # no scheme: taken as http://
    outcome = post("https://basic.telemetry.example.org/v1/reports/basic")
    assert outcome.finished
    assert isinstance(outcome.error, TransportError)
    [lines] = _connect_lines(proxy)
    assert lines[0].startswith(b"CONNECT basic.telemetry.example.org:443 ")


def test_the_proxys_credentials_are_sent_as_basic_proxy_authorization(serve, monkeypatch):
    proxy = serve(proxy_refusing)
    monkeypatch.setenv("HTTPS_PROXY", f"http://tele%40user:s%3Acret@127.0.0.1:{proxy.port}")
    outcome = post("https://basic.telemetry.example.org/v1/reports/basic")
    assert outcome.finished
    assert isinstance(outcome.error, TransportError)
    [lines] = _connect_lines(proxy)
    expected = base64.b64encode(b"tele@user:s:cret")
    assert b"Proxy-Authorization: Basic " + expected in lines
    assert not any(b"s%3Acret" in line or b"s:cret" in line for line in lines)  # only inside the base64


def test_a_proxy_that_never_answers_the_connect_gives_a_transport_error(serve, monkeypatch):
    proxy = serve(proxy_hanging)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    outcome = post("https://basic.telemetry.example.org/v1/reports/basic", timeout=0.5)
    assert outcome.finished
    assert isinstance(outcome.error, TransportError)
    assert len(proxy.requests()) == 1


def test_no_proxy_sends_https_directly_and_a_silent_tls_server_is_cut_off(serve, monkeypatch):
    target = serve(hang)  # accepts, never answers the TLS handshake
    proxy = serve(proxy_refusing)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    outcome = post(f"https://127.0.0.1:{target.port}/v1/reports/basic", timeout=0.5)
    assert outcome.finished
    assert isinstance(outcome.error, TransportError)
    assert proxy.requests() == []
    assert len(target.requests()) == 1


@pytest.mark.parametrize("proxy", ["http://127.0.0.1:notaport", "http://[::1"], ids=["bad-port", "bad-ipv6"])
def test_a_malformed_proxy_variable_gives_a_transport_error(proxy, monkeypatch):
    # The environment is the user's: a typo in HTTPS_PROXY must be "no response", not a crash of the upload.
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    outcome = post("https://basic.telemetry.example.org/v1/reports/basic")
    assert outcome.finished
    assert isinstance(outcome.error, TransportError), repr(outcome.error)


def test_plain_http_never_uses_the_https_proxy(serve, monkeypatch):
    server = serve(answer(b"HTTP/1.1 204 No Content\r\n\r\n"))
    proxy = serve(proxy_refusing)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    outcome = post(f"{server.url}/v1/reports/basic")
    assert outcome.finished
    assert isinstance(outcome.result, Response)
    assert outcome.result.status == 204
    assert proxy.requests() == []


# ---- upload_pending over a hanging server -------------------------------------------------------------------------
MANIFEST = """
manifest_version = 1

[app]
name = "transport-test"
consent_text = "The transport test application counts one event."

[levels.basic]
description = "Operating system and Python version, and how often files are opened."
endpoint = "{url}/v1/reports/basic"
system = ["os", "python"]

[[events]]
name = "file.open"
level = "basic"
purpose = "How often files are opened."
"""


def test_upload_pending_to_a_hanging_server_keeps_the_report_and_returns(serve, home, environ, tmp_path: Path):
    server = serve(hang)
    path = tmp_path / "manifest.toml"
    path.write_text(MANIFEST.format(url=server.url), encoding="utf-8")
    manifest = consentry.load_manifest(path)
    clock = FixedClock(datetime.datetime(2026, 11, 18, 12, tzinfo=datetime.timezone.utc))
    consentry.set_consent(manifest, "on", "basic", home=home, environ=environ, clock=clock)
    recorder = consentry.init(
        manifest, app_version="1.0.0", home=home, environ=environ, clock=clock, background=False, flush_at_exit=False
    )
    recorder.count("file.open", 3)
    recorder.close()
    clock.advance(datetime.timedelta(days=1))
    session = AppSession.open(manifest, home=home, environ=environ, clock=clock)
    [written] = session.prepare_reports()
    data = written.read_bytes()

    paths = Paths(home).app(manifest.name)
    outcome = in_thread(lambda: upload_pending(manifest, session.decision, paths, HttpTransport(), clock, budget=1.0))
    assert outcome.finished
    assert outcome.error is None
    result = outcome.result
    assert (result.sent, result.dropped, result.kept) == (0, 0, 1)
    assert any("no response" in message for message in result.messages)
    assert [report.read() for report in session.outbox.pending()] == [data]
    assert session.outbox.history() == []
    state = load_state(paths)
    assert state.failures == 1
    assert state.retry_after is not None
    assert state.retry_after > clock.now()
    [request] = server.requests()
    assert gzip.decompress(request.partition(b"\r\n\r\n")[2]) == data  # the whole report reached the server
