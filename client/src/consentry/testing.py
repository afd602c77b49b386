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

import contextlib
import datetime
import gzip
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from consentry.api import init, set_consent
from consentry.clock import FixedClock
from consentry.consent import Consent, Mode
from consentry.manifest import Manifest, load_manifest
from consentry.recorder import NullRecorder, Recorder
from consentry.session import AppSession
from consentry.store import Store
from consentry.transport import MemoryTransport
from consentry.upload import UploadResult
from consentry.wire import Report, decode

__all__ = ["Sandbox", "sandbox"]

START = datetime.datetime(2026, 6, 3, 10, 0, tzinfo=datetime.timezone.utc)


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
def sandbox(start: datetime.datetime = START) -> Iterator[Sandbox]:
    """A :class:`Sandbox` in a temporary folder, removed afterwards; the clock starts at ``start``."""
    folder = Path(tempfile.mkdtemp(prefix="consentry-test-"))
    home = folder / "home"
    home.mkdir()
    try:
        yield Sandbox(home, FixedClock(start), environ={"CONSENTRY_POLICY_FILE": str(folder / "no-policy.json")})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
