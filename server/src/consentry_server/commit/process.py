"""The storing process: reports are decoded, validated and stored beside the serving process, not inside it.

Python runs one thread at a time per process. Decoding a report and writing it to the database take about as
long as everything else a request costs, so in one process the writer thread and the event loop take turns
instead of working at once. ``consentry-server serve`` therefore starts this process (:func:`main`, given the
inherited socket's file descriptor) and talks to it over a socket pair:

- the serving process sends each accepted body (with its level, content type and encoding, the time it was
  received, the country of its source and the source's salted key, never the address), the lines of the request
  log, and the names of applications whose manifests the admin API registered (so that the next reports see them
  at once);
- the storing process decodes and validates what has arrived (:class:`~consentry_server.ingest.accept.Acceptor`),
  stores it in one durable transaction (group commit), and answers each report: stored (with its outcome),
  refused (with the rejection), or failed (the database failed: the client gets 503 and retries).

A report is answered 2xx only once the storing process has committed it. Messages are length-prefixed pickles
between two processes of the same installation; nothing from a request is ever unpickled (bodies are bytes).
If the storing process dies, the requests waiting on it get 503 and it is started again; when the serving
process goes away (even by ``kill -9``), the storing process sees the socket close, stores what it has read
and exits. It ignores SIGINT and SIGTERM, which a terminal or a service manager sends to both processes, so
that it always ends that way, after the serving process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import logging
import pickle
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from consentry_server.commit.batches import Outage, commit, take
from consentry_server.commit.storer import Overloaded, StoringError
from consentry_server.config import Settings
from consentry_server.ingest.accept import Acceptor, rate_limiter
from consentry_server.ingest.manifests import Registry
from consentry_server.ingest.validate import Rejection
from consentry_server.storage import open_storage
from consentry_server.storage.base import Arrival, RequestLog, Storage, StorageUnavailable, StoreOutcome

__all__ = ["MAX_MESSAGE", "ProcessStorer", "main"]

logger = logging.getLogger("consentry_server")

_HEADER = struct.Struct(">I")
#: A message on the channel: its kind, then what that kind carries (see the module's docstring).
_Message = tuple[Any, ...]
#: Largest message: a request body (at most max_body_bytes, 512 KiB by default) and a little more.
MAX_MESSAGE = 64 * 1024 * 1024
#: Seconds to wait before starting a storing process again after one stopped.
_RESTART_DELAY = 1.0
#: Seconds the storing process may take to open the database and say it is ready.
_START_TIMEOUT = 60.0


#: What the storing process runs (``-m`` would warn: the package imports this module before running it).
_CHILD = "import sys; from consentry_server.commit.process import main; sys.exit(main())"


def _message(*parts: object) -> bytes:
    data = pickle.dumps(parts, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def _messages(buffer: bytearray) -> Iterator[_Message]:
    """Take the complete messages off the front of ``buffer``."""
    offset = 0
    while len(buffer) - offset >= _HEADER.size:
        (size,) = _HEADER.unpack_from(buffer, offset)
        if size > MAX_MESSAGE:
            raise ValueError(f"a message of {size} bytes on the storing channel")
        if len(buffer) - offset - _HEADER.size < size:
            break
        start = offset + _HEADER.size
        yield pickle.loads(buffer[start : start + size])  # noqa: S301 - written by our own other process
        offset = start + size
    del buffer[:offset]


# ---- the serving process's side ----------------------------------------------------------------------------
class _Channel(asyncio.Protocol):
    def __init__(self, storer: ProcessStorer) -> None:
        self.storer = storer
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            for message in _messages(self.buffer):
                self.storer._answer(message)  # noqa: SLF001 - the storer's own channel
        except (ValueError, pickle.UnpicklingError):
            logger.exception("the storing process sent something unreadable")
            if self.storer._transport is not None:  # noqa: SLF001
                self.storer._transport.abort()  # noqa: SLF001

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - why is in the process's own messages
        self.storer._lost(self)  # noqa: SLF001


class ProcessStorer:
    """Hands request bodies to a storing process and waits for its answers (see the module's docstring)."""

    def __init__(self, settings: Settings, *, max_pending: int = 20_000, python: str = sys.executable) -> None:
        self.settings = settings
        self.max_pending = max_pending
        self.python = python
        self.restarts = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[StoreOutcome]] = {}
        self._ready: asyncio.Future[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._channel: _Channel | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._closing = False
        self._restart: asyncio.TimerHandle | None = None

    @property
    def pid(self) -> int | None:
        """The storing process's id, while it runs."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    async def start(self) -> None:
        """Start the storing process and wait until it has opened the database; raise if it cannot."""
        self._closing = False
        ready = await self._spawn()
        try:
            await asyncio.wait_for(asyncio.shield(ready), _START_TIMEOUT)
        except (TimeoutError, StoringError):
            await self.close()
            raise StoringError("the storing process did not start; see its messages above") from None

    async def _spawn(self) -> asyncio.Future[None]:
        """Start a storing process; the future resolves once it is ready."""
        loop = asyncio.get_running_loop()
        mine, theirs = socket.socketpair()
        command = [self.python, "-c", _CHILD, str(theirs.fileno())]
        try:
            self._process = await asyncio.to_thread(
                subprocess.Popen, command, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        ready = self._ready = loop.create_future()
        transport, channel = await loop.connect_accepted_socket(lambda: _Channel(self), sock=mine)
        self._transport, self._channel = transport, channel
        transport.write(_message("settings", self.settings))
        return ready

    def _answer(self, message: _Message) -> None:
        kind = message[0]
        if kind == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            return
        future = self._pending.get(message[1])
        if future is None or future.done():
            return  # the request went away (the client disconnected); its report was handled all the same
        if kind == "stored":
            future.set_result(StoreOutcome(message[2], message[3]))
        elif kind == "refused":
            status, code, field, text, retry_after = message[2:]
            future.set_exception(Rejection(status, code, field, text, retry_after))
        else:
            future.set_exception(StoringError(str(message[2])))

    def _lost(self, channel: _Channel) -> None:
        if channel is not self._channel:
            return
        self._transport = self._channel = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(StoringError("the storing process stopped"))
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(StoringError("the storing process stopped before it was ready"))
            self._ready.exception()  # retrieved: start() reports it, or nobody waits
        if not self._closing:
            logger.error("the storing process stopped; starting it again in %s s", _RESTART_DELAY)
            loop = asyncio.get_running_loop()
            self._restart = loop.call_later(_RESTART_DELAY, lambda: loop.create_task(self._respawn()))

    async def _respawn(self) -> None:
        self._restart = None
        if self._closing:
            return
        await self._reap()
        try:
            await self._spawn()
        except OSError:
            logger.exception("starting the storing process again failed")
            return
        self.restarts += 1

    async def _reap(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)

    async def store(
        self,
        level: str,
        body: bytes,
        *,
        content_type: str | None,
        encoding: str | None,
        received: datetime.datetime,
        country: str | None,
        source: str | None = None,
        first_report_known: bool = True,
    ) -> StoreOutcome:
        """Send the body to the storing process; return its outcome once committed, or raise its refusal."""
        if self._transport is None or self._transport.is_closing():
            raise StoringError("the storing process is not running")
        if len(self._pending) >= self.max_pending:
            raise Overloaded("too many reports are waiting to be stored")
        number = next(self._ids)
        future: asyncio.Future[StoreOutcome] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        try:
            parts = (
                number,
                level,
                body,
                content_type,
                encoding,
                received.timestamp(),
                country,
                source,
                first_report_known,
            )
            self._send(_message("report", *parts))
            return await future
        finally:
            del self._pending[number]

    def _send(self, message: bytes) -> None:
        # Written at once: batching writes until the event loop has run what is ready was measured slower (it
        # delays the storing process's next batch more than it saves in system calls).
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(message)

    def log(self, entry: RequestLog) -> None:
        """Send a request-log line to the storing process (lost if it is not running)."""
        self._send(_message("log", entry))

    def forget_manifests(self, app: str) -> None:
        """Tell the storing process to read the manifests of ``app`` again (before any report sent after this).

        If the storing process is not running, the one started next reads every manifest afresh.
        """
        self._send(_message("forget", app))

    async def close(self) -> None:
        """Tell the storing process there is nothing more to store, and wait until it has stored the rest."""
        self._closing = True
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write_eof()  # the storing process reads to the end, answers, and exits
        await self._reap()
        if transport is not None:
            transport.close()


# ---- the storing process -----------------------------------------------------------------------------------
class _Connection:
    """The storing process's end of the socket pair: blocking reads, locked writes (two threads answer)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.closed = False
        self._sending = threading.Lock()

    def _receive(self, *, wait: bool) -> bool:
        try:
            data = self.sock.recv(1 << 20) if wait else self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buffer += data
        return True

    def receive(self) -> list[_Message]:
        """The messages that have arrived, waiting for one if none has; empty once the socket is closed."""
        messages: list[_Message] = []
        while not messages and not self.closed:
            self._receive(wait=True)
            while self._receive(wait=False):  # whatever else is already there
                pass
            messages.extend(_messages(self.buffer))
        return messages

    def send(self, messages: Sequence[bytes]) -> None:
        """Send ``messages`` in one write; lost if the serving process went away (nobody waits for them)."""
        if messages:
            with self._sending, contextlib.suppress(OSError):
                self.sock.sendall(b"".join(messages))


_STOP = ("stop",)


def _accepting(
    connection: _Connection, acceptor: Acceptor, work: queue.SimpleQueue[_Message], first: list[_Message]
) -> None:
    """Read messages, decode and validate reports (answering refusals at once), and queue the rest for storing.

    Runs in a thread of its own, so that the next reports are decoded while a batch is written and flushed.
    ``first``: messages already read.
    """
    try:
        while messages := first or connection.receive():
            first = []
            refusals = []
            for message in messages:
                if message[0] == "log":
                    work.put(message)
                elif message[0] == "forget":
                    acceptor.registry.invalidate(message[1])
                elif message[0] == "report":
                    _, number, level, body, content_type, encoding, received, country, source, known = message
                    try:
                        report = acceptor.admit(
                            level, body, content_type=content_type, encoding=encoding, source=source
                        )
                    except Rejection as rejection:
                        refusals.append(_message("refused", number, *_rejection_parts(rejection)))
                        continue
                    except StorageUnavailable as error:  # reading its manifests: the serving process logs it
                        refusals.append(_message("failed", number, str(error)))
                        continue
                    except Exception as error:  # a fault of ours with one report must not stop the others
                        logger.exception("accepting a report failed")
                        refusals.append(_message("failed", number, f"accepting failed: {type(error).__name__}"))
                        continue
                    when = datetime.datetime.fromtimestamp(received, datetime.timezone.utc)
                    work.put(("arrival", number, Arrival(report, when, country, bool(known))))
            connection.send(refusals)
    finally:
        work.put(_STOP)


def _storing(storage: Storage, connection: _Connection, work: queue.SimpleQueue[_Message]) -> None:
    """Store what :func:`_accepting` queued, everything queued at once in one transaction, and answer."""
    outage = Outage()
    stopping = False
    while not stopping:
        items = take(work.get, work.get_nowait)
        stopping = _STOP in items
        logs = [item[1] for item in items if item[0] == "log"]
        arrivals = [item for item in items if item[0] == "arrival"]
        outcomes = commit(storage, [item[2] for item in arrivals], logs, outage)
        if not arrivals:
            continue
        answers = []
        for (_, number, _), outcome in zip(arrivals, outcomes, strict=True):
            if isinstance(outcome, StoreOutcome):
                answers.append(_message("stored", number, outcome.status, outcome.days))
            else:
                answers.append(_message("failed", number, f"storing failed: {type(outcome).__name__}: {outcome}"))
        connection.send(answers)


def _rejection_parts(rejection: Rejection) -> tuple[object, ...]:
    return rejection.status, rejection.code, rejection.field, rejection.message, rejection.retry_after


def _run(sock: socket.socket) -> int:
    """Serve the storing channel on ``sock`` until the other end closes it."""
    connection = _Connection(sock)
    first = connection.receive()
    if not first or first[0][0] != "settings":
        logger.error("the storing process was not given its settings")
        return 2
    settings: Settings = first[0][1]
    try:
        storage = open_storage(settings)
    except StorageUnavailable as error:  # one line: the serving process says that the storing one did not start
        logger.error("%s", error)  # noqa: TRY400 - what is wrong and what to do; a traceback would not help
        return 1
    try:
        acceptor = Acceptor(settings, Registry(storage), rate_limiter(settings))
        work: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        connection.send([_message("ready")])
        arguments = (connection, acceptor, work, first[1:])
        reader = threading.Thread(target=_accepting, args=arguments, name="consentry-accepting")
        reader.start()
        _storing(storage, connection, work)
        reader.join()
    finally:
        storage.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The storing process, given ``FD``: serve the socket inherited as that file descriptor."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 1 or not arguments[0].isdigit():
        sys.stderr.write("usage: storing_process FD (the storing process is started by consentry-server serve)\n")
        return 2
    # The serving process ends first, and its closing the socket is what ends this one (see the docstring).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(format="consentry storing process: %(levelname)s: %(message)s", level=logging.WARNING)
    with socket.socket(fileno=int(arguments[0])) as sock:
        return _run(sock)
