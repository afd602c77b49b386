"""The background worker, the exception hooks, runs and active time, threads and fork, with real threads.

The worker's timing is driven by real waits (a tiny ``flush_interval``) or by a monotonic clock the test moves;
tests poll the store for the outcome with a generous limit and never assert how long anything took.
"""

from __future__ import annotations

import datetime
import gzip
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

import consentry
import consentry.wire
from consentry import Manifest, NullRecorder, Recorder
from consentry._local.bookkeeping import load_state, save_state
from consentry._local.counts import Store, merge_journal
from consentry._local.files import exclusive
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from consentry._record.tally import Tallies
from consentry._record.worker import RUN_AFTER, STEP, Worker
from consentry.manifest import loads_manifest
from consentry.testing import FixedClock, MemoryTransport
from support.waiting import wait_for

ADD_IMAGE = "napari:layer:add_image"
ADD_LABELS = "napari:layer:add_labels"
POLL = 10.0
JOIN = 20.0
PRIVATE_TEXT = "private-text-c0ffee"  # an exception message that must never be stored


# ---- helpers ------------------------------------------------------------------------------------------------------


def yesterday_noon() -> FixedClock:
    day = datetime.date.today() - datetime.timedelta(days=1)  # noqa: DTZ011 - reports cover the user's local days
    return FixedClock(datetime.datetime.combine(day, datetime.time(12), datetime.timezone.utc))


def counters(home: Path, app: str, day: datetime.date, kind: str) -> dict[str, int]:
    record = Store(Paths(home).app(app).store).read_day(day)
    if record is None:
        return {}
    return {key: n for (k, key), n in record.counters.items() if k == kind}


def worker_threads(app: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == f"consentry-{app}"]


def stop_workers(app: str) -> None:
    """Wait for the background threads of ``app`` (asked to stop by ``close()``) to end."""
    for thread in worker_threads(app):
        thread.join(JOIN)
    assert worker_threads(app) == []


def start(manifest: Manifest, home: Path, environ: dict[str, str], clock=None, **options) -> Recorder:
    options = {"background": False, "flush_at_exit": False, "app_version": "0.5.6", **options}
    recorder = consentry.init(manifest, home=home, environ=environ, clock=clock, **options)
    assert isinstance(recorder, Recorder)
    return recorder


def record_yesterday(manifest: Manifest, home: Path, environ: dict[str, str], *, mode: str = "on") -> FixedClock:
    """Consent given yesterday and a few counts recorded yesterday (flushed to the store, no report yet)."""
    clock = yesterday_noon()
    consentry.set_consent(manifest, mode, "full", home=home, environ=environ, clock=clock)
    recorder = start(manifest, home, environ, clock, exception_hooks=False)
    recorder.count(ADD_IMAGE, 4)
    recorder.close()
    assert counters(home, manifest.name, clock.today(), "event") == {ADD_IMAGE: 4}
    return clock


def all_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())


# ---- the background flush -----------------------------------------------------------------------------------------
def test_the_background_thread_flushes_counts_without_an_explicit_flush(napari, home, environ, clock):
    consentry.set_consent(napari, "on", "full", home=home, environ=environ, clock=clock)
    transport = MemoryTransport()
    recorder = start(napari, home, environ, clock, background=True, flush_interval=0.05, transport=transport)
    try:
        [thread] = worker_threads(napari.name)
        assert thread.daemon
        recorder.count(ADD_IMAGE, 3)
        assert wait_for(lambda: counters(home, napari.name, clock.today(), "event") == {ADD_IMAGE: 3})
        recorder.count(ADD_IMAGE, 2)
        assert wait_for(lambda: counters(home, napari.name, clock.today(), "event") == {ADD_IMAGE: 5})
    finally:
        recorder.close()
    stop_workers(napari.name)
    assert counters(home, napari.name, clock.today(), "event") == {ADD_IMAGE: 5}
    assert transport.requests == []  # nothing was pending: today is not over


def test_a_worker_prepares_completed_days_at_start_and_uploads_them_through_its_transport(napari, home, environ):
    record_yesterday(napari, home, environ)
    recorder = start(napari, home, environ, exception_hooks=False)  # the real clock: today
    session = AppSession.open(napari, home=home, environ=environ)
    assert session.outbox.pending() == []  # nothing prepared yet
    transport = MemoryTransport()
    worker = Worker(recorder, session, flush_interval=3600, transport=transport)
    worker.start()
    try:
        assert wait_for(lambda: len(session.outbox.history()) == 3)
    finally:
        worker.stop(timeout=JOIN)
        recorder.close()
    assert not worker.alive
    assert worker.uploads == 1
    assert session.outbox.pending() == []
    assert sorted(request.url.rsplit("/", 1)[1] for request in transport.requests) == ["basic", "full", "middle"]
    sent = sorted(gzip.decompress(request.body) for request in transport.requests)
    assert sent == sorted(entry.report.encode() for entry in session.outbox.history())
    [full] = [consentry.wire.decode(data) for data in sent if consentry.wire.decode(data).level == "full"]
    assert full.total(ADD_IMAGE) == 4
    assert full.days == (yesterday_noon().today(),)
    state = load_state(session.paths)
    assert state.sent_ever is True
    assert state.last_success is not None

    # Something is pending again the same day: neither this worker nor a new one uploads it.
    [entry] = [entry for entry in session.outbox.history() if entry.url.endswith("/basic")]
    session.outbox.put(consentry.wire.decode(entry.report.encode()), epoch=session.decision.epoch)
    assert len(session.outbox.pending()) == 1
    worker.maybe_upload()
    fresh = Worker(recorder, session, transport=transport)
    fresh.maybe_upload()
    assert len(transport.requests) == 3
    assert (worker.uploads, fresh.uploads) == (1, 0)
    assert len(session.outbox.pending()) == 1

    # The same new worker uploads once the last success was on an earlier day (so the day is what held it).
    save_state(session.paths, replace(state, last_success=state.last_success - datetime.timedelta(days=1)))
    fresh.maybe_upload()
    assert len(transport.requests) == 4
    assert session.outbox.pending() == []


def test_in_ci_init_records_nothing_and_starts_no_thread(napari, home, environ):
    record_yesterday(napari, home, environ)  # counted outside CI, not yet reported
    environ = {**environ, "CI": "true"}
    recorder = consentry.init(napari, home=home, environ=environ, app_version="0.5.6", flush_at_exit=False)
    assert isinstance(recorder, NullRecorder)
    assert "CI" in recorder.reason
    assert worker_threads(napari.name) == []
    session = AppSession.open(napari, home=home, environ=environ)
    assert session.prepare_reports() == []
    assert session.upload(MemoryTransport()).sent == 0


def test_the_worker_sends_nothing_in_local_mode(napari, home, environ):
    record_yesterday(napari, home, environ, mode="local")
    transport = MemoryTransport()
    recorder = start(napari, home, environ, background=True, flush_interval=0.05, transport=transport)
    session = AppSession.open(napari, home=home, environ=environ)
    try:
        assert wait_for(lambda: len(session.outbox.pending()) == 3)  # the worker prepared the reports ...
    finally:
        recorder.close()
    stop_workers(napari.name)
    worker = Worker(recorder, session, transport=transport)
    worker.maybe_upload()
    assert transport.requests == []  # ... and sent none of them
    assert worker.uploads == 0
    assert len(session.outbox.pending()) == 3
    assert session.outbox.history() == []


def test_a_worker_counts_a_run_after_a_minute_and_active_time_every_ten_minutes(napari, home, environ, clock):
    consentry.set_consent(napari, "on", "full", home=home, environ=environ, clock=clock)
    recorder = start(napari, home, environ, clock, exception_hooks=False)
    session = AppSession.open(napari, home=home, environ=environ, clock=clock)
    # The worker's monotonic clock runs with the real one, plus an offset the test moves forward.
    shift = SimpleNamespace(seconds=0.0)
    worker = Worker(
        recorder,
        session,
        flush_interval=0.05,
        transport=MemoryTransport(),
        monotonic=lambda: time.monotonic() + shift.seconds,
    )

    def runs() -> dict[str, int]:
        return counters(home, napari.name, clock.today(), "runs")

    def active() -> dict[str, int]:
        return counters(home, napari.name, clock.today(), "active_minutes")

    worker.start()
    try:
        shift.seconds = RUN_AFTER / 2
        for n in (1, 2):  # the second flush comes from a loop of the worker that saw the half minute
            recorder.count(ADD_IMAGE)
            assert wait_for(lambda n=n: counters(home, napari.name, clock.today(), "event") == {ADD_IMAGE: n})
        assert runs() == {}
        shift.seconds = RUN_AFTER
        assert wait_for(lambda: runs() == {"": 1})
        assert active() == {}
        shift.seconds = STEP
        assert wait_for(lambda: active() == {"": 10})
        shift.seconds = 2 * STEP
        assert wait_for(lambda: active() == {"": 20})
    finally:
        worker.stop(timeout=JOIN)
        recorder.close()
    assert not worker.alive
    assert runs() == {"": 1}
    assert active() == {"": 20}


# ---- exception hooks ----------------------------------------------------------------------------------------------
@pytest.fixture
def own_hooks() -> Iterator[SimpleNamespace]:
    """The host's own hooks, installed before Consentry's; the original hooks are restored afterwards."""
    saved = (sys.excepthook, threading.excepthook)
    calls: list[tuple[str, type[BaseException]]] = []

    def sys_hook(kind, value, traceback) -> None:  # noqa: ARG001 - the signature of sys.excepthook
        calls.append(("sys", kind))

    def thread_hook(args) -> None:
        calls.append(("thread", args.exc_type))

    sys.excepthook, threading.excepthook = sys_hook, thread_hook
    try:
        yield SimpleNamespace(calls=calls, sys_hook=sys_hook, thread_hook=thread_hook)
    finally:
        sys.excepthook, threading.excepthook = saved


def _raise_in_thread(error: BaseException) -> None:
    def target() -> None:
        raise error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(JOIN)
    assert not thread.is_alive()


@pytest.fixture
def full_recorder(napari, home, environ, clock, own_hooks) -> Iterator[Recorder]:  # noqa: ARG001 - ordering
    consentry.set_consent(napari, "on", "full", home=home, environ=environ, clock=clock)
    recorder = start(napari, home, environ, clock)
    assert recorder.collects_exceptions
    yield recorder
    recorder.close()


def test_an_uncaught_exception_counts_its_type_never_its_message(full_recorder, own_hooks, home, clock):
    assert sys.excepthook is not own_hooks.sys_hook  # Consentry's hook is on top ...
    sys.excepthook(ValueError, ValueError(PRIVATE_TEXT), None)
    assert own_hooks.calls == [("sys", ValueError)]  # ... and still calls the host's
    full_recorder.flush()
    assert counters(home, "napari-like", clock.today(), "exception") == {"ValueError": 1}
    assert PRIVATE_TEXT.encode() not in all_bytes(home)


def test_an_exception_in_a_thread_counts_through_threading_excepthook(full_recorder, own_hooks, home, clock):
    _raise_in_thread(RuntimeError(PRIVATE_TEXT))
    assert own_hooks.calls == [("thread", RuntimeError)]
    full_recorder.flush()
    assert counters(home, "napari-like", clock.today(), "exception") == {"RuntimeError": 1}
    assert PRIVATE_TEXT.encode() not in all_bytes(home)


def test_keyboard_interrupt_and_system_exit_are_not_counted(full_recorder, own_hooks, home, clock):
    class Cancelled(KeyboardInterrupt):
        pass

    sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
    sys.excepthook(Cancelled, Cancelled(), None)
    sys.excepthook(SystemExit, SystemExit(2), None)
    _raise_in_thread(SystemExit(1))
    _raise_in_thread(KeyboardInterrupt())
    sys.excepthook(KeyError, KeyError("k"), None)  # counted: the hooks are working
    assert [kind for _, kind in own_hooks.calls] == [
        KeyboardInterrupt,
        Cancelled,
        SystemExit,
        SystemExit,
        KeyboardInterrupt,
        KeyError,
    ]
    full_recorder.flush()
    assert counters(home, "napari-like", clock.today(), "exception") == {"KeyError": 1}


def test_the_hook_called_without_an_exception_still_reaches_the_hosts_hook(full_recorder, own_hooks, home, clock):
    # `sys.excepthook(*sys.exc_info())` outside an except block passes (None, None, None); Python's own hook
    # prints a message and returns. Consentry's must neither raise into the host nor skip the host's hook.
    sys.excepthook(*sys.exc_info())
    assert own_hooks.calls == [("sys", None)]
    full_recorder.flush()
    assert counters(home, "napari-like", clock.today(), "exception") == {}


def test_close_restores_the_previous_hooks(full_recorder, own_hooks, home, clock):
    full_recorder.close()
    assert sys.excepthook is own_hooks.sys_hook
    assert threading.excepthook is own_hooks.thread_hook
    sys.excepthook(ValueError, ValueError("after close"), None)
    full_recorder.flush()
    assert counters(home, "napari-like", clock.today(), "exception") == {}


def test_close_leaves_a_hook_installed_on_top_in_place(full_recorder, own_hooks, home, clock):
    below_sys, below_thread = sys.excepthook, threading.excepthook
    on_top: list[str] = []

    def top_sys(kind, value, traceback) -> None:
        on_top.append("sys")
        below_sys(kind, value, traceback)

    def top_thread(args) -> None:
        on_top.append("thread")
        below_thread(args)

    sys.excepthook, threading.excepthook = top_sys, top_thread
    full_recorder.close()
    assert sys.excepthook is top_sys
    assert threading.excepthook is top_thread
    sys.excepthook(ValueError, ValueError("after close"), None)
    _raise_in_thread(OSError("after close"))
    assert on_top == ["sys", "thread"]
    assert own_hooks.calls == [("sys", ValueError), ("thread", OSError)]  # the chain still reaches the host
    full_recorder.flush()
    assert counters(home, "napari-like", clock.today(), "exception") == {}  # ours records nothing any more


def test_no_hooks_when_the_level_does_not_collect_exceptions(napari, home, environ, clock, own_hooks):
    consentry.set_consent(napari, "on", "basic", home=home, environ=environ, clock=clock)
    recorder = start(napari, home, environ, clock)
    try:
        assert not recorder.collects_exceptions
        assert sys.excepthook is own_hooks.sys_hook
        assert threading.excepthook is own_hooks.thread_hook
        recorder.exception(ValueError)
        recorder.flush()
        assert counters(home, "napari-like", clock.today(), "exception") == {}
    finally:
        recorder.close()


# ---- runs and active time -----------------------------------------------------------------------------------------
def _activity(home: Path, clock: FixedClock) -> tuple[dict[str, int], dict[str, int]]:
    day = clock.today()
    return counters(home, "napari-like", day, "runs"), counters(home, "napari-like", day, "active_minutes")


@pytest.fixture
def basic_recorder(napari, home, environ, clock) -> Iterator[Recorder]:
    consentry.set_consent(napari, "on", "basic", home=home, environ=environ, clock=clock)
    recorder = start(napari, home, environ, clock)
    assert recorder.collects_activity
    yield recorder
    recorder.close()


def test_every_tick_counts_ten_minutes_when_the_host_never_marks_activity(basic_recorder, home, clock):
    basic_recorder.add_run()
    for _ in range(3):
        basic_recorder.tick_activity()
    basic_recorder.flush()
    assert _activity(home, clock) == ({"": 1}, {"": 30})


def test_once_activity_is_marked_only_ticks_with_activity_count(basic_recorder, home, clock):
    basic_recorder.tick_activity()  # no marking yet: counts
    basic_recorder.mark_active()
    basic_recorder.tick_activity()  # active: counts
    basic_recorder.tick_activity()  # idle: does not
    basic_recorder.tick_activity()  # idle: does not
    basic_recorder.mark_active()
    basic_recorder.mark_active()
    basic_recorder.tick_activity()  # active (twice): counts once
    basic_recorder.tick_activity()  # idle
    basic_recorder.flush()
    assert _activity(home, clock) == ({}, {"": 30})


ACTIVITY_AT_FULL = """
manifest_version = 1

[app]
name = "quiet-app"
consent_text = "The quiet application counts runs and active time only at its full level."

[levels.basic]
description = "Operating system."
endpoint = "https://basic.telemetry.quiet-app.example.org/v1/reports/basic"
system = ["os"]

[levels.full]
description = "Runs and active time."
endpoint = "https://full.telemetry.quiet-app.example.org/v1/reports/full"
activity = true

[[events]]
name = "file.open"
level = "basic"
purpose = "How often files are opened."
"""


def test_runs_and_activity_are_dropped_when_the_level_does_not_collect_them(home, environ, clock):
    manifest = loads_manifest(ACTIVITY_AT_FULL, source="<quiet-app>")
    consentry.set_consent(manifest, "on", "basic", home=home, environ=environ, clock=clock)
    recorder = start(manifest, home, environ, clock)
    assert not recorder.collects_activity
    recorder.add_run()
    recorder.tick_activity()
    recorder.mark_active()
    recorder.tick_activity()
    recorder.count("file.open")
    recorder.close()
    day = clock.today()
    assert counters(home, "quiet-app", day, "event") == {"file.open": 1}
    assert counters(home, "quiet-app", day, "runs") == {}
    assert counters(home, "quiet-app", day, "active_minutes") == {}


# ---- threads ------------------------------------------------------------------------------------------------------
def _run_threads(target: Callable[[], None], n: int) -> None:
    threads = [threading.Thread(target=target) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN)
    assert not any(thread.is_alive() for thread in threads)


def test_eight_threads_counting_at_once_give_an_exact_total(full_recorder, home, clock):
    barrier = threading.Barrier(8)

    def count() -> None:
        barrier.wait(JOIN)
        for _ in range(10_000):
            full_recorder.count(ADD_IMAGE)
        full_recorder.count(ADD_LABELS, 3)

    _run_threads(count, 8)
    full_recorder.flush()
    assert counters(home, "napari-like", clock.today(), "event") == {ADD_IMAGE: 80_000, ADD_LABELS: 24}


def test_counting_threads_and_a_flushing_thread_at_once_give_an_exact_total(full_recorder, home, clock):
    barrier = threading.Barrier(9)
    counted = threading.Barrier(9)
    may_end = threading.Event()

    def count() -> None:
        barrier.wait(JOIN)
        for _ in range(10_000):
            full_recorder.count(ADD_IMAGE)
        counted.wait(JOIN)
        may_end.wait(JOIN)

    flushes = 0

    def flush_until_counted() -> None:
        nonlocal flushes
        barrier.wait(JOIN)
        while counted.n_waiting < 8:
            full_recorder.flush()
            flushes += 1
        counted.wait(JOIN)

    threads = [threading.Thread(target=count) for _ in range(8)]
    threads.append(threading.Thread(target=flush_until_counted))
    for thread in threads:
        thread.start()
    threads[-1].join(JOIN)
    may_end.set()
    for thread in threads:
        thread.join(JOIN)
    assert not any(thread.is_alive() for thread in threads)
    full_recorder.flush()
    assert flushes > 0
    assert counters(home, "napari-like", clock.today(), "event") == {ADD_IMAGE: 80_000}


def test_counts_of_a_thread_that_ended_are_still_flushed_once(full_recorder, home, clock):
    alive = threading.Event()
    finish = threading.Event()

    def count() -> None:
        full_recorder.count(ADD_IMAGE, 2)
        alive.set()
        finish.wait(JOIN)
        full_recorder.count(ADD_IMAGE, 5)

    thread = threading.Thread(target=count)
    thread.start()
    assert alive.wait(JOIN)
    full_recorder.flush()  # takes the 2 while the thread lives
    assert counters(home, "napari-like", clock.today(), "event") == {ADD_IMAGE: 2}
    finish.set()
    thread.join(JOIN)
    assert not thread.is_alive()
    _run_threads(lambda: full_recorder.count(ADD_LABELS), 3)  # threads that counted once and ended
    full_recorder.flush()
    full_recorder.flush()
    assert counters(home, "napari-like", clock.today(), "event") == {ADD_IMAGE: 7, ADD_LABELS: 3}


def test_threads_that_end_while_counts_are_taken_lose_nothing():
    # Short-lived threads count and end while another thread takes the counts without pause, as the
    # background flush does. A tiny switch interval makes the interleavings that matter frequent.
    events = [f"event.{n}" for n in range(200)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for round_ in range(20):
            tallies = Tallies(prefill=events)
            taken = 0
            done = threading.Event()

            def take(tallies: Tallies = tallies, done: threading.Event = done) -> None:
                nonlocal taken
                while not done.is_set():
                    taken += sum(tallies.take().values())

            def count(tallies: Tallies = tallies) -> None:
                counts = tallies.mine()
                for _ in range(200):
                    counts["event.5"] += 1

            taker = threading.Thread(target=take)
            taker.start()
            _run_threads(count, 300)
            done.set()
            taker.join(JOIN)
            taken += sum(tallies.take().values())
            assert taken == 300 * 200, f"round {round_}: {300 * 200 - taken} increments lost"
    finally:
        sys.setswitchinterval(interval)


class _SlowKey(str):
    """A key whose hashing, in the taking thread, first runs ``pause``: it holds the taker inside take()."""

    __slots__ = ()
    pause: Callable[[], None] | None = None

    def __hash__(self) -> int:
        pause = _SlowKey.pause
        if pause is not None and threading.current_thread() is threading.main_thread():
            _SlowKey.pause = None
            pause()
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other)


def test_an_increment_made_just_before_a_thread_ends_is_not_lost_by_a_take_in_progress():
    # The thread's counts are copied, then the thread counts once more and ends, then take() looks at
    # whether the thread is alive: the last increment must still be taken, now or at the next take.
    tallies = Tallies(prefill=["event"])
    resume = threading.Event()

    def count() -> None:
        tallies.add(("slow", _SlowKey("key")), 1)
        resume.wait(JOIN)
        tallies.mine()["event"] += 1

    thread = threading.Thread(target=count)

    def pause() -> None:
        resume.set()
        thread.join(JOIN)

    thread.start()
    assert wait_for(lambda: len(tallies._threads) == 1)
    _SlowKey.pause = pause
    try:
        first = tallies.take()
    finally:
        _SlowKey.pause = None
    assert not thread.is_alive()
    second = tallies.take()
    assert first.get(("slow", "key")) == 1
    assert first.get("event", 0) + second.get("event", 0) == 1


# ---- fork ---------------------------------------------------------------------------------------------------------
posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")


def _fork() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _child(action: Callable[[], int]) -> None:
    """In the forked child: run ``action`` and leave with its exit code, whatever happens."""
    code = 99
    try:
        code = action()
    finally:
        os._exit(code)


def _wait_child(pid: int, timeout: float) -> int | None:
    """The child's exit status, or ``None`` if it did not end within ``timeout`` (it is then killed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _count_and_flush(recorder: Recorder, n: int) -> Callable[[], int]:
    def action() -> int:
        recorder.count(ADD_LABELS, n)
        recorder.flush()
        return 0 if recorder.quiet is None else 2

    return action


@posix_only
def test_a_forked_child_flushes_only_its_own_counts(full_recorder, home, clock):
    full_recorder.count(ADD_IMAGE, 5)  # before the fork: the parent's to flush
    pid = _fork()
    if pid == 0:
        _child(_count_and_flush(full_recorder, 3))
    assert _wait_child(pid, JOIN) == 0
    assert counters(home, "napari-like", clock.today(), "event") == {}  # the child only writes its journal
    merge_journal(Paths(home).app("napari-like"))  # ... which the parent (or the next run) merges
    assert counters(home, "napari-like", clock.today(), "event") == {ADD_LABELS: 3}
    full_recorder.count(ADD_IMAGE, 2)
    full_recorder.flush()
    assert counters(home, "napari-like", clock.today(), "event") == {ADD_IMAGE: 7, ADD_LABELS: 3}


@pytest.mark.slow
@posix_only
def test_a_child_forked_while_a_flush_is_in_progress_can_flush(full_recorder, home, clock):
    # A flush in progress (here: a thread holding the flush lock, as the background flush does while it writes)
    # when the host forks. The child has no such thread: its own flush must not wait for it. (A fork in the
    # middle of an SQLite transaction is another matter: SQLite's own locks are copied too, which is why a child
    # never opens the store: it writes its journal, which the parent or the next run merges.)
    full_recorder.flush()
    holding, release = threading.Event(), threading.Event()

    def hold_the_flush_lock() -> None:
        with full_recorder._flush_lock:
            holding.set()
            release.wait(JOIN)

    holder = threading.Thread(target=hold_the_flush_lock)
    holder.start()
    try:
        assert holding.wait(JOIN)
        pid = _fork()
        if pid == 0:
            _child(_count_and_flush(full_recorder, 3))
    finally:
        release.set()
    holder.join(JOIN)
    status = _wait_child(pid, POLL)
    assert status == 0, "the forked child hung in flush(): it waits for a flush of its parent's thread"
    full_recorder.count(ADD_IMAGE)
    full_recorder.flush()
    assert counters(home, "napari-like", clock.today(), "event") == {ADD_IMAGE: 1, ADD_LABELS: 3}


@pytest.mark.slow
@posix_only
def test_a_child_forked_while_counts_are_being_taken_is_not_deadlocked(full_recorder, home, clock):
    # The background flush holds the counters' lock while it takes them; a fork at that moment must
    # give a child that can run (the lock's holder does not exist in the child).
    taking = threading.Event()
    forked = threading.Event()

    def take_in_progress() -> None:
        with full_recorder._tallies._lock:
            taking.set()
            forked.wait(JOIN)

    holder = threading.Thread(target=take_in_progress)
    holder.start()
    try:
        assert taking.wait(JOIN)
        pid = _fork()
        if pid == 0:
            _child(_count_and_flush(full_recorder, 3))
    finally:
        forked.set()
        holder.join(JOIN)
    status = _wait_child(pid, POLL)
    assert status == 0, "the forked child deadlocked in the after-fork reset of the recorder"
    merge_journal(Paths(home).app("napari-like"))
    assert counters(home, "napari-like", clock.today(), "event") == {ADD_LABELS: 3}


@posix_only
def test_drops_made_before_a_fork_are_recorded_once(full_recorder, home):
    full_recorder.count("napari:no_such_event")  # dropped in the parent, before the fork: the parent's to record
    pid = _fork()
    if pid == 0:
        _child(_count_and_flush(full_recorder, 1))
    assert _wait_child(pid, JOIN) == 0
    full_recorder.flush()
    assert load_state(Paths(home).app("napari-like")).drops == {"not in the manifest": 1}


def test_one_uploader_an_hour_however_many_processes_exit(napari, home, environ, clock):
    # Eight copies of a tool exiting together must start one detached uploader, not eight.
    consentry.set_consent(napari, "on", "full", home=home, environ=environ, clock=clock)
    recorders = [start(napari, home, environ, clock) for _ in range(3)]
    sessions = [AppSession.open(napari, home=home, environ=environ, clock=clock) for _ in recorders]
    workers = [Worker(recorder, session) for recorder, session in zip(recorders, sessions, strict=True)]
    assert [worker._claim_spawn() for worker in workers] == [True, False, False]
    marker = Paths(home).app(napari.name).uploader_started
    an_hour_ago = time.time() - 3601
    os.utime(marker, (an_hour_ago, an_hour_ago))
    assert [worker._claim_spawn() for worker in workers] == [True, False, False]
    with exclusive(Paths(home).app(napari.name).outbox_lock):  # an uploader at work: nobody starts another
        os.utime(marker, (an_hour_ago, an_hour_ago))
        assert workers[1]._claim_spawn() is False
    for recorder in recorders:
        recorder.close()
