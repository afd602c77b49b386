"""Nothing lost, nothing counted twice: the races between counting, flushing, building reports and bookkeeping.

Each test drives real processes, threads or forks against a real home folder; ``docs/internals/phases.md`` names
the race each one covers.
"""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import consentry
import consentry.testing
from consentry import Manifest, Recorder
from consentry._local.bookkeeping import load_state
from consentry._local.counts import Store
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from consentry._record.journal import Batch, DayMeta
from consentry.testing import FixedClock
from consentry.wire import decode
from support.e2e import two_level_manifest
from support.processes import client_environment
from support.store import recorded_day

APP = "lost-app"
DAY = datetime.date(2026, 11, 17)
NOON = FixedClock(datetime.datetime.combine(DAY, datetime.time(12), datetime.timezone.utc))


@pytest.fixture
def manifest_path(tmp_path: Path) -> Path:
    path = tmp_path / "lost.toml"
    path.write_text(two_level_manifest(APP, "http://127.0.0.1:9"), encoding="utf-8")
    return path


@pytest.fixture
def manifest(manifest_path: Path) -> Manifest:
    return consentry.load_manifest(manifest_path)


@pytest.fixture
def consented(manifest: Manifest, home: Path, environ: dict[str, str]) -> Manifest:
    consentry.set_consent(manifest, "on", home=home, environ=environ, clock=NOON)
    return manifest


def _opened(record_day: object) -> int:
    counters = getattr(record_day, "counters", {})
    return counters.get(("event", "file.open"), 0)


# ---- building reports while counts arrive ------------------------------------------------------------------------
def test_a_merge_between_reading_a_day_and_marking_it_leaves_the_day_unreported(home):
    store = Store(Paths(home).app(APP).store)
    meta = DayMeta("1.0.0")
    store.add(Batch("on:x", {DAY: meta}, {(DAY, "event", "file.open"): 5}))
    record = store.read_day(DAY)
    assert record is not None
    store.add(Batch("on:x", {}, {(DAY, "event", "file.open"): 3}))  # a flush lands while reports are built from 5
    store.mark_reported([record])
    assert store.unreported_days(before=DAY + datetime.timedelta(days=1)) == [DAY]  # so it is reported again
    again = store.read_day(DAY)
    assert again is not None
    assert _opened(again) == 8
    store.mark_reported([again])
    assert store.unreported_days(before=DAY + datetime.timedelta(days=1)) == []


def test_counts_flushed_while_reports_are_built_are_all_reported(consented, home, environ):
    # A long-running process keeps flushing into a finished day (the midnight flush, a late flush) while another
    # builds that day's reports again and again; in the end the day's report holds every count.
    recorder = consentry.init(
        consented, app_version="1.0.0", home=home, environ=environ, clock=NOON, background=False, flush_at_exit=False
    )
    assert isinstance(recorder, Recorder)
    next_day = FixedClock(NOON.now() + datetime.timedelta(days=1))
    flushes = 200
    done = threading.Event()

    def flush_late() -> None:
        try:
            for _ in range(flushes):
                recorder.count("file.open")
                recorder.flush(day=DAY)
        finally:
            done.set()

    flusher = threading.Thread(target=flush_late)
    flusher.start()
    builds = 0
    while not done.is_set():
        AppSession.open(consented, home=home, environ=environ, clock=next_day).prepare_reports()
        builds += 1
    flusher.join()
    session = AppSession.open(consented, home=home, environ=environ, clock=next_day)
    session.prepare_reports()
    [basic] = [report for report in session.outbox.pending() if report.level == "basic"]
    assert decode(basic.read()).counts == {DAY: {"file.open": flushes}}
    assert builds > 1


# ---- state.json: one lock for every writer -----------------------------------------------------------------------
DROPPING = textwrap.dedent(
    """
    import datetime, sys
    import consentry, consentry.testing

    manifest, home, policy, flushes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    clock = consentry.testing.FixedClock(datetime.datetime(2026, 11, 17, 12, tzinfo=datetime.timezone.utc))
    recorder = consentry.init(manifest, app_version="1.0.0", home=home, environ={"CONSENTRY_POLICY_FILE": policy},
                              clock=clock, background=False, flush_at_exit=False)
    for _ in range(flushes):
        recorder.count("not.declared")  # a drop, recorded in state.json by the flush
        recorder.flush(merge=False)
    print(type(recorder).__name__, recorder.quiet)
    """
)


@pytest.mark.slow
@pytest.mark.usefixtures("consented")
def test_drops_recorded_by_many_processes_at_once_all_count(manifest_path, home, environ, tmp_path):
    processes, flushes = 6, 40
    command = [sys.executable, "-c", DROPPING, str(manifest_path), str(home), environ["CONSENTRY_POLICY_FILE"]]
    env = client_environment(home, tmp_path)
    running = [
        subprocess.Popen([*command, str(flushes)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(processes)
    ]
    for process in running:
        out, err = process.communicate(timeout=120)
        assert (process.returncode, out.strip()) == (0, "Recorder None"), err
    assert load_state(Paths(home).app(APP)).drops == {"not in the manifest": processes * flushes}


# ---- the exit flush ----------------------------------------------------------------------------------------------
EXITING = textwrap.dedent(
    """
    import datetime, os, sys, time
    import consentry, consentry.testing

    manifest, home, policy, counts, go = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    clock = consentry.testing.FixedClock(datetime.datetime(2026, 11, 17, 12, tzinfo=datetime.timezone.utc))
    recorder = consentry.init(manifest, app_version="1.0.0", home=home, environ={"CONSENTRY_POLICY_FILE": policy},
                              clock=clock, background=False)
    for _ in range(counts):
        recorder.count("file.open")
    print("ready", flush=True)
    deadline = time.monotonic() + 300  # a bound, should the test die before it says "go"
    while not os.path.exists(go) and time.monotonic() < deadline:  # every process exits at the same moment
        time.sleep(0.001)
    """
)


@pytest.mark.slow
@pytest.mark.usefixtures("consented")
def test_many_hosts_exiting_together_while_the_store_is_busy_lose_nothing(manifest_path, home, environ, tmp_path):
    hosts, counts = 8, 10_000
    go = tmp_path / "go"
    store = Paths(home).app(APP).store
    Store(store).add(Batch("on:x", {DAY: DayMeta("1.0.0")}))  # the store exists ...
    command = [sys.executable, "-c", EXITING, str(manifest_path), str(home), environ["CONSENTRY_POLICY_FILE"]]
    command += [str(counts), str(go)]
    env = client_environment(home, tmp_path)
    running = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(hosts)
    ]
    for process in running:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    blocker = sqlite3.connect(store, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # ... and another process holds it for as long as the hosts exit
        go.touch()
        for process in running:
            _, err = process.communicate(timeout=120)  # they all exit while the store is still held
            assert process.returncode == 0, err
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert _opened(recorded_day(home, APP, DAY)) == hosts * counts
    assert load_state(Paths(home).app(APP)).drops == {}


def test_counts_that_cannot_be_written_at_exit_are_counted_as_lost(consented, home, environ):
    recorder = consentry.init(
        consented, app_version="1.0.0", home=home, environ=environ, clock=NOON, background=False, flush_at_exit=False
    )
    assert isinstance(recorder, Recorder)
    Paths(home).app(APP).journal.write_bytes(b"")  # a file where the journal folder should be
    recorder.count("file.open", 4)
    recorder.count("export.png")
    recorder.close(merge=False)  # as at exit
    assert recorder.quiet is not None
    assert recorder.drops == {"counts lost: the journal cannot be written": 5}
    assert load_state(Paths(home).app(APP)).drops == {"counts lost: the journal cannot be written": 5}


def test_a_damaged_journal_file_is_set_aside_and_counted(consented, home, environ):
    journal = Paths(home).app(APP).journal
    journal.mkdir(parents=True)
    damaged = journal / f"{'0' * 20}-1-abcdef01.json"
    damaged.write_bytes(b'{"format": 1, "epoch": "on:x", "days": {"2026-11-17": {"counters": [["event", "fil')
    recorder = consentry.init(
        consented, app_version="1.0.0", home=home, environ=environ, clock=NOON, background=False, flush_at_exit=False
    )
    assert isinstance(recorder, Recorder)
    recorder.count("file.open", 2)
    recorder.close()
    assert _opened(recorded_day(home, APP, DAY)) == 2
    assert not damaged.exists()
    assert damaged.with_name(damaged.name + ".corrupt").exists()
    assert load_state(Paths(home).app(APP)).drops == {"damaged journal file": 1}


def test_a_journal_file_left_after_its_merge_is_not_added_twice(consented, home, environ):
    paths = Paths(home).app(APP)
    recorder = consentry.init(
        consented, app_version="1.0.0", home=home, environ=environ, clock=NOON, background=False, flush_at_exit=False
    )
    assert isinstance(recorder, Recorder)
    recorder.count("file.open", 3)
    recorder.flush(merge=False)
    [written] = list(paths.journal.iterdir())
    kept = written.read_bytes()
    recorder.flush()  # merges it, and removes it
    written.write_bytes(kept)  # as if the process had died between the merge's commit and the file's removal
    recorder.count("file.open")
    recorder.close()
    assert _opened(recorded_day(home, APP, DAY)) == 4
    assert list(paths.journal.iterdir()) == []


# ---- fork ----------------------------------------------------------------------------------------------------------
FORKING = textwrap.dedent(
    """
    import datetime, json, os, sys, threading, time, warnings
    import consentry

    manifest, home, policy, rounds, children = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    recorder = consentry.init(manifest, app_version="1.0.0", home=home, environ={"CONSENTRY_POLICY_FILE": policy},
                              flush_interval=0.05)
    stop = threading.Event()

    def busy():  # the host flushes too: with the background thread, somebody is inside SQLite most of the time
        while not stop.is_set():
            recorder.count("export.png")
            recorder.flush()

    busy_thread = threading.Thread(target=busy)
    busy_thread.start()
    hung = started = 0
    warnings.simplefilter("ignore", DeprecationWarning)
    for _ in range(rounds):
        pids = []
        for _ in range(children):
            pid = os.fork()
            if pid == 0:
                recorder.count("file.open")
                sys.exit(0)  # a normal exit: the flush at exit runs in the child
            pids.append(pid)
            started += 1
        for pid in pids:
            deadline = time.monotonic() + 10
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    break
                if time.monotonic() > deadline:
                    hung += 1
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.005)
    stop.set()
    busy_thread.join()
    recorder.close()
    print(json.dumps({"hung": hung, "children": started}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
@pytest.mark.usefixtures("consented")
def test_children_forked_while_sqlite_is_busy_exit_and_keep_their_counts(manifest_path, home, environ, tmp_path):
    env = client_environment(home, tmp_path)
    rounds, children = 30, 8
    arguments = [str(manifest_path), str(home), environ["CONSENTRY_POLICY_FILE"], str(rounds), str(children)]
    done = subprocess.run(
        [sys.executable, "-c", FORKING, *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome == {"hung": 0, "children": rounds * children}
    today = datetime.date.today()  # noqa: DTZ011 - the processes record on the user's local day
    assert _opened(recorded_day(home, APP, today)) == rounds * children


FORKED_WORKER = textwrap.dedent(
    """
    import os, sys, time, warnings
    import consentry

    manifest, home, policy = sys.argv[1], sys.argv[2], sys.argv[3]
    recorder = consentry.init(manifest, app_version="1.0.0", home=home, environ={"CONSENTRY_POLICY_FILE": policy},
                              flush_interval=0.05)
    journal = os.path.join(home, "apps", "lost-app", "journal")
    warnings.simplefilter("ignore", DeprecationWarning)
    pid = os.fork()
    if pid == 0:
        recorder.count("file.open", 3)  # starts the child's own background thread
        mine = f"-{os.getpid()}-"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            mine in name and name.endswith(".json") and not name.startswith(".") for name in os.listdir(journal)
        ):  # its own file, complete (not the temporary file it is written to first)
            time.sleep(0.01)
        os._exit(0)  # like a worker of multiprocessing: no exit handlers; only the child's thread flushed
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
@pytest.mark.usefixtures("consented")
def test_a_forked_child_flushes_on_its_own_thread(manifest_path, home, environ, tmp_path):
    env = client_environment(home, tmp_path)
    paths = Paths(home).app(APP)
    Store(paths.store).add(Batch("on:x", {DAY: DayMeta("1.0.0")}))
    paths.journal.mkdir()
    blocker = sqlite3.connect(paths.store, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # nobody merges: the child's journal file stays for it to see
        done = subprocess.run(
            [sys.executable, "-c", FORKED_WORKER, str(manifest_path), str(home), environ["CONSENTRY_POLICY_FILE"]],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (done.returncode, done.stdout.strip()) == (0, "0"), done.stderr
    today = datetime.date.today()  # noqa: DTZ011
    assert _opened(recorded_day(home, APP, today)) == 3
