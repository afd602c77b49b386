"""The background thread of a recorder: flushing, runs and active time, reports, and the daily upload.

One daemon thread per recorder. It never runs anything on the host's threads and never holds up its exit. It:

- turns completed days into reports when it starts, and again after each midnight;
- flushes counts every ``flush_interval`` seconds (10 minutes by default) and at midnight (what was counted
  before midnight belongs to the day that ended);
- counts a run once the process has lived a minute, and active time in 10-minute steps;
- at most once a day, when there is something to send and sending is allowed, starts the detached uploader
  (:mod:`consentry.uploader`), or uploads itself when given a transport or when no child process can start.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable

from consentry._guard import guard, logger
from consentry.recorder import Recorder
from consentry.session import AppSession
from consentry.state import load_state
from consentry.store import StoreError
from consentry.transport import HttpTransport, Transport
from consentry.upload import USER_AGENT
from consentry.uploader import BUDGET, can_spawn, reap, spawn

__all__ = ["RUN_AFTER", "STEP", "Worker"]

#: A process counts as a run once it has lived this long (seconds).
RUN_AFTER = 60.0
#: The resolution of active time (seconds).
STEP = 600.0
#: Do not start another uploader within this many seconds of the last one.
SPAWN_GAP = 3600.0


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
        self._thread = threading.Thread(target=self._run, name=f"consentry-{session.manifest.name}", daemon=True)
        self._child: int | None = None
        self._last_spawn = -SPAWN_GAP
        self.uploads = 0

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 0.0) -> None:
        """Ask the thread to end; wait at most ``timeout`` seconds (by default, not at all)."""
        self._stop.set()
        if timeout and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def finish(self) -> None:
        """Stop, and if the day's upload was not started and may be due, start the detached uploader now.

        A tool that exits right after starting never gave the thread its chance; the uploader, which writes the
        reports of completed days itself, takes over. It costs one process start, never a wait on the network.
        """
        self.stop()
        with guard():
            if self.uploads or self._child is not None or self.transport is not None or not can_spawn():
                return
            if not self._due() or not (self.session.outbox.pending() or self._unreported()):
                return
            self.uploads += 1
            self._last_spawn = self._monotonic()
            self._child = spawn(self.session.home.home, self.session.manifest.name)

    def _unreported(self) -> bool:
        try:
            return bool(self.session.store.unreported_days(before=self.session.clock.today()))
        except (StoreError, OSError):
            return False

    def _due(self) -> bool:
        """Sending is allowed, today's upload has not succeeded yet, and no back-off is running."""
        if not self.session.decision.send:
            return False
        state = load_state(self.session.paths)
        now = self.session.clock.now()
        if state.last_success is not None and state.last_success.date() >= now.date():
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
        day = self.session.clock.today()
        self._daily()
        while True:
            now = self._monotonic()
            deadlines = [next_flush, next_step, now + seconds_to_midnight(self.session.clock.now())]
            if run_at is not None:
                deadlines.append(run_at)
            if self._stop.wait(max(0.05, min(deadlines) - now)):
                return
            now = self._monotonic()
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

    def _daily(self) -> None:
        """Reports for completed days, then the upload if one is due."""
        with guard():
            try:
                self.session.prepare_reports()
            except (StoreError, OSError) as error:
                logger.debug("consentry: reports not prepared now: %s", error)
                return
            self.maybe_upload()

    def maybe_upload(self) -> None:
        """Start an upload if one is due: something pending, sending allowed, not yet done today, not backing off."""
        if self._child is not None and reap(self._child):
            self._child = None
        decision = self.session.decision
        pending = self.session.outbox.pending()
        if not pending or (decision.ask_mode and not any(item.approved for item in pending)) or not self._due():
            return
        if self._child is not None or self._monotonic() - self._last_spawn < SPAWN_GAP:
            return
        self._last_spawn = self._monotonic()
        self.uploads += 1
        if self.transport is None and can_spawn():
            self._child = spawn(self.session.home.home, self.session.manifest.name)
            if self._child is not None:
                return
        self.session.upload(self.transport or HttpTransport(user_agent=USER_AGENT), budget=BUDGET)
