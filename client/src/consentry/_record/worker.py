"""The background thread of a recorder: flushing, runs and active time, reports, and the daily upload.

One daemon thread per recorder. It never runs anything on the host's threads and never holds up its exit. It:

- turns completed days into reports a few seconds after it starts, and again after each midnight;
- flushes counts every ``flush_interval`` seconds (10 minutes by default) and at midnight (what was counted
  before midnight belongs to the day that ended);
- counts a run once the process has lived a minute, and active time in 10-minute steps;
- at most once a day, when sending is allowed, starts the detached uploader (:mod:`consentry._send.detached`), or
  uploads itself when given a transport or when no child process can start.

After a fork, the child's first count starts a thread of its own (the parent's did not survive the fork) that
only flushes: runs, active time, reports and uploads stay the parent's. Nothing network-related is imported
unless this process uploads itself.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Callable

from consentry._guard import guard, logger
from consentry._local.bookkeeping import load_state
from consentry._local.session import AppSession
from consentry._record.recorder import Recorder

TYPE_CHECKING = False  # not imported from typing: see pyproject.toml
if TYPE_CHECKING:
    from pathlib import Path

    from consentry.transport import Transport

__all__ = ["RUN_AFTER", "STEP", "Worker"]

#: A process counts as a run once it has lived this long (seconds).
RUN_AFTER = 60.0
#: The resolution of active time (seconds).
STEP = 600.0
#: Do not start another uploader within this many seconds of the last one.
SPAWN_GAP = 3600.0
#: The first reports and upload wait this long after start (seconds): a command-line tool that ends sooner hands
#: them to the detached uploader at exit, instead of competing with the tool for its interpreter while it runs.
SETTLE = 5.0


def seconds_to_midnight(now: datetime.datetime) -> float:
    """Seconds from ``now`` (timezone-aware) to the next local midnight."""
    local = now.astimezone()
    midnight = datetime.datetime.combine(local.date() + datetime.timedelta(days=1), datetime.time(), local.tzinfo)
    return max(1.0, (midnight - local).total_seconds())


class Worker:
    """Runs the recorder's background duties on a daemon thread."""

    def __init__(
        self,
        recorder: Recorder,
        session: AppSession,
        *,
        flush_interval: float = 600.0,
        transport: Transport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.recorder = recorder
        self.session = session
        self.flush_interval = flush_interval
        self.transport = transport
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._thread = self._new_thread(self._run)
        self._pid = os.getpid()
        self._child: int | None = None
        self._last_spawn = -SPAWN_GAP
        self.uploads = 0

    def _new_thread(self, target: Callable[[], None]) -> threading.Thread:
        return threading.Thread(target=target, name=f"consentry-{self.session.manifest.name}", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def restart_after_fork(self) -> None:
        """In a forked child: start a thread of its own that only flushes (the parent's thread is not here)."""
        if self._pid == os.getpid() or self._stop.is_set():
            return
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._child = None
        self.uploads = 1  # the parent's to do: a child never starts an uploader
        self._thread = self._new_thread(self._run_in_child)
        self._thread.start()

    def stop(self, timeout: float = 0.0) -> None:
        """Ask the thread to end; wait at most ``timeout`` seconds (by default, not at all)."""
        self._stop.set()
        if timeout and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def finish(self) -> None:
        """Stop, and if the day's upload was not started and may be due, start the detached uploader now.

        A tool that exits right after starting never gave the thread its chance; the uploader, which merges the
        journal and writes the reports of completed days itself, takes over. It costs one process start, at most
        once a day, never a wait on the network, and never opens the store here.
        """
        self.stop()
        with guard():
            if self.uploads or self._child is not None or self.transport is not None or self._pid != os.getpid():
                return
            from consentry._send.detached import can_spawn, spawn  # noqa: PLC0415 - only when an upload may start

            if not can_spawn() or not self._due() or not self._anything_to_do() or not self._claim_spawn():
                return
            self.uploads += 1
            self._last_spawn = self._monotonic()
            self._child = spawn(self.session.home.home, self.session.manifest.name)

    def _claim_spawn(self) -> bool:
        """Whether this process may start the detached uploader: none was started by any process this past hour.

        Eight copies of a tool exiting together start one uploader, not eight. The claim is made under the outbox
        lock, which a running uploader holds too.
        """
        from consentry._local.files import exclusive  # noqa: PLC0415 - see the imports

        marker = self.session.paths.uploader_started
        with exclusive(self.session.paths.outbox_lock) as held:
            if not held:
                return False
            try:
                if time.time() - marker.stat().st_mtime < SPAWN_GAP:
                    return False
            except OSError:
                pass
            marker.touch()
            return True

    def _anything_to_do(self) -> bool:
        """Whether there are reports, journal files or a store to look at (without opening any of them)."""
        paths = self.session.paths
        return paths.store.exists() or _has_entries(paths.journal) or _has_entries(paths.pending)

    def _due(self) -> bool:
        """Sending is allowed, today's upload has not succeeded nor found nothing to do, and no back-off runs."""
        if not self.session.decision.send:
            return False
        state = load_state(self.session.paths, repair=False)
        now = self.session.clock.now()
        if state.last_success is not None and state.last_success.date() >= now.date():
            return False
        if state.idle_day is not None and state.idle_day >= now.date():
            return False
        return state.retry_after is None or now >= state.retry_after

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread.is_alive()

    # ---- the loop -----------------------------------------------------------------------------------------
    def _run(self) -> None:
        started = self._monotonic()
        next_flush = started + self.flush_interval
        next_step = started + STEP
        run_at: float | None = started + RUN_AFTER
        daily_at: float | None = started + SETTLE
        day = self.session.clock.today()
        while True:
            now = self._monotonic()
            deadlines = [next_flush, next_step, now + seconds_to_midnight(self.session.clock.now())]
            deadlines += [when for when in (run_at, daily_at) if when is not None]
            if self._stop.wait(max(0.05, min(deadlines) - now)):
                return
            now = self._monotonic()
            if daily_at is not None and now >= daily_at:
                daily_at = None
                self._daily()
            with guard():
                if run_at is not None and now >= run_at:
                    self.recorder.add_run()
                    run_at = None
                if now >= next_step:
                    self.recorder.tick_activity()
                    next_step += STEP
                today = self.session.clock.today()
                if today != day:
                    self.recorder.flush(day=day)  # what was counted before midnight belongs to the day that ended
                    day = today
                    next_flush = now + self.flush_interval
                    self._daily()
                elif now >= next_flush:
                    self.recorder.flush()
                    next_flush = now + self.flush_interval

    def _run_in_child(self) -> None:
        """A forked child's thread: flush on the interval and at midnight (the recorder only writes journals)."""
        day = self.session.clock.today()
        while not self._stop.wait(max(0.05, min(self.flush_interval, seconds_to_midnight(self.session.clock.now())))):
            with guard():
                today = self.session.clock.today()
                self.recorder.flush(day=day if today != day else None)
                day = today

    def _daily(self) -> None:
        """Reports for completed days, then the upload if one is due."""
        from consentry._local.counts import StoreError  # noqa: PLC0415 - SQLite only in the background

        with guard():
            try:
                self.session.prepare_reports()
            except (StoreError, OSError) as error:
                logger.debug("consentry: reports not prepared now: %s", error)
                return
            self.maybe_upload()

    def maybe_upload(self) -> None:
        """Start an upload if one is due: something may be sent, not yet done today, not backing off."""
        from consentry._send.detached import BUDGET, can_spawn, reap, spawn  # noqa: PLC0415 - see the imports

        if self._child is not None and reap(self._child):
            self._child = None
        decision = self.session.decision
        sendable = [r for r in self.session.outbox.pending() if r.approved or decision.sends_unasked(r.epoch)]
        if not sendable or not self._due():
            return
        if self._child is not None or self._monotonic() - self._last_spawn < SPAWN_GAP:
            return
        self._last_spawn = self._monotonic()
        if self.transport is None and can_spawn():
            if not self._claim_spawn():
                return
            self.uploads += 1
            self._child = spawn(self.session.home.home, self.session.manifest.name)
            if self._child is not None:
                return
        self.uploads += 1
        from consentry._send.upload import USER_AGENT  # noqa: PLC0415
        from consentry.transport import HttpTransport  # noqa: PLC0415 - only when this process uploads itself

        self.session.upload(self.transport or HttpTransport(user_agent=USER_AGENT), budget=BUDGET)


def _has_entries(folder: Path) -> bool:
    try:
        return any(folder.iterdir())
    except OSError:
        return False
