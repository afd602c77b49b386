"""Testing an application that embeds Consentry: an isolated home, a fixed clock, an in-memory transport.

::

    from consentry.testing import sandbox

    def test_opening_a_file_is_counted():
        with sandbox() as box:
            telemetry = box.recorder("my_app/telemetry.toml", level="full")
            my_app.open_file("x.tif", telemetry=telemetry)
            box.assert_counted(telemetry, "file.open", 1)

    def test_nothing_is_sent_without_consent():
        with sandbox() as box:
            telemetry = box.init("my_app/telemetry.toml")   # no consent given
            my_app.open_file("x.tif", telemetry=telemetry)
            box.assert_nothing_written()
            box.assert_nothing_sent()

The sandbox never touches the user's real Consentry home, never reads the real environment's kill switches
or CI variables, and never opens a network connection.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import gzip
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from consentry._api import init, set_consent
from consentry._clock import Clock
from consentry._consent.answers import Consent, Mode
from consentry._local.counts import Store
from consentry._local.session import AppSession
from consentry._record.null import NullRecorder
from consentry._record.recorder import Recorder
from consentry._send.upload import UploadResult
from consentry.manifest import Manifest, load_manifest
from consentry.transport import Request, Response
from consentry.wire import Report, decode

__all__ = ["Clock", "FixedClock", "MemoryTransport", "Sandbox", "sandbox"]


class FixedClock:
    """A clock that stands still until moved: for tests, simulations and the demo."""

    def __init__(self, now: datetime.datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._now = now
        self._monotonic = 1000.0

    def now(self) -> datetime.datetime:
        """The time the clock is set to."""
        return self._now

    def today(self) -> datetime.date:
        """The date of :meth:`now` in its own time zone."""
        return self._now.date()

    def monotonic(self) -> float:
        """Advances with :meth:`advance`."""
        return self._monotonic

    def advance(self, delta: datetime.timedelta) -> None:
        """Move the clock forward by ``delta``."""
        if delta < datetime.timedelta(0):
            raise ValueError("time does not go back")
        self._now += delta
        self._monotonic += delta.total_seconds()

    def set(self, now: datetime.datetime) -> None:
        """Move the clock to ``now`` (not earlier than the current time)."""
        self.advance(now - self._now)


_Answer = Response | Exception
_Script = Callable[[Request], _Answer]


class MemoryTransport:
    """A transport that sends nothing: it records requests and answers from a script.

    ``answers`` is a list of responses (or exceptions to raise) used in order, then the default, or a function
    of the request. By default every request gets ``200`` with a body saying it was stored.
    """

    def __init__(self, answers: Iterable[_Answer] | _Script | None = None, *, default: _Answer | None = None) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._script: _Script | None = answers if callable(answers) else None
        self._queue: collections.deque[_Answer] = collections.deque(
            [] if answers is None or callable(answers) else answers
        )
        self._default: _Answer = default if default is not None else Response(200, {}, b'{"status":"stored"}')

    def send(self, request: Request) -> Response:
        """Record ``request`` and answer it."""
        with self._lock:
            self.requests.append(request)
            answer = (
                self._script(request) if self._script else (self._queue.popleft() if self._queue else self._default)
            )
        if isinstance(answer, Exception):
            raise answer
        return answer


_START = datetime.datetime(2026, 6, 3, 10, 0, tzinfo=datetime.timezone.utc)


def _manifest(manifest: Manifest | str | Path) -> Manifest:
    return manifest if isinstance(manifest, Manifest) else load_manifest(manifest)


@dataclass
class Sandbox:
    """An isolated Consentry home with its own environment, clock and transport."""

    home: Path
    clock: FixedClock
    transport: MemoryTransport = field(default_factory=MemoryTransport)
    environ: dict[str, str] = field(default_factory=dict)

    def consent(self, manifest: Manifest | str | Path, mode: Mode = "on", level: str | None = None) -> Consent:
        """Give (or refuse, with ``mode="off"``) consent, as the user would."""
        return set_consent(_manifest(manifest), mode, level, home=self.home, environ=self.environ, clock=self.clock)

    def init(self, manifest: Manifest | str | Path, *, app_version: str = "1.0.0") -> Recorder | NullRecorder:
        """:func:`consentry.init` in the sandbox, without a background thread (the test drives time)."""
        return init(
            _manifest(manifest),
            app_version=app_version,
            home=self.home,
            environ=self.environ,
            clock=self.clock,
            background=False,
            flush_at_exit=False,
        )

    def recorder(
        self,
        manifest: Manifest | str | Path,
        *,
        level: str | None = None,
        mode: Mode = "on",
        app_version: str = "1.0.0",
    ) -> Recorder:
        """Give consent and return the application's recorder."""
        self.consent(manifest, mode, level)
        recorder = self.init(manifest, app_version=app_version)
        if not isinstance(recorder, Recorder):
            raise AssertionError(f"telemetry is off in the sandbox: {recorder.reason}")  # noqa: TRY004 - a failed test
        return recorder

    def counted(self, recorder: Recorder, event: str) -> int:
        """How many times ``event`` was counted, over every day so far (flushes ``recorder`` first)."""
        recorder.flush()
        store = Store(recorder.paths.store)
        total = 0
        day = self.clock.today() - datetime.timedelta(days=60)
        while day <= self.clock.today():
            record = store.read_day(day)
            if record is not None:
                total += record.counters.get(("event", event), 0)
            day += datetime.timedelta(days=1)
        return total

    def assert_counted(self, recorder: Recorder, event: str, expected: int) -> None:
        """Fail unless ``event`` was counted exactly ``expected`` times."""
        actual = self.counted(recorder, event)
        if actual != expected:
            raise AssertionError(f"{event!r} was counted {actual} time(s), not {expected}; drops: {recorder.drops}")

    def next_day(self, days: int = 1) -> None:
        """Move the clock forward by ``days`` days."""
        self.clock.advance(datetime.timedelta(days=days))

    def session(self, manifest: Manifest | str | Path) -> AppSession:
        """The application's session in the sandbox."""
        return AppSession.open(_manifest(manifest), home=self.home, environ=self.environ, clock=self.clock)

    def reports(self, manifest: Manifest | str | Path) -> list[Report]:
        """Write the reports of completed days (as the background thread would) and return every pending one."""
        session = self.session(manifest)
        session.prepare_reports()
        return [decode(item.read()) for item in session.outbox.pending()]

    def upload(self, manifest: Manifest | str | Path) -> UploadResult:
        """Send what may be sent, through the sandbox's in-memory transport."""
        session = self.session(manifest)
        session.prepare_reports()
        return session.upload(self.transport, force=True)

    def sent(self) -> list[Report]:
        """Every report sent through the sandbox's transport."""
        return [decode(gzip.decompress(request.body)) for request in self.transport.requests]

    def assert_nothing_sent(self) -> None:
        """Fail if anything was sent."""
        if self.transport.requests:
            raise AssertionError(f"{len(self.transport.requests)} request(s) were sent")

    def assert_nothing_written(self) -> None:
        """Fail if Consentry wrote anything in the sandbox's home."""
        written = sorted(str(path.relative_to(self.home)) for path in self.home.rglob("*"))
        if written:
            raise AssertionError(f"Consentry wrote {written}")


@contextlib.contextmanager
def sandbox(start: datetime.datetime = _START) -> Iterator[Sandbox]:
    """A :class:`Sandbox` in a temporary folder, removed afterwards; the clock starts at ``start``."""
    folder = Path(tempfile.mkdtemp(prefix="consentry-test-"))
    home = folder / "home"
    home.mkdir()
    try:
        yield Sandbox(home, FixedClock(start), environ={"CONSENTRY_POLICY_FILE": str(folder / "no-policy.json")})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
