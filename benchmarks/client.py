"""Client benchmarks: each figure measured side by side with its baseline in one run, printed as a ratio.

    python benchmarks/client.py [--quick]

- import time added to a bare interpreter start (target: <= 5 ms), and what init() adds without consent;
- a run of a small argparse tool wrapped with ``consentry.cli_tool`` against the same tool as is: without consent
  (target: <= 1.05x) and with consent (target: <= 1.15x), the tool run again and again as a user would;
- count() with consent against a plain dict increment in a function (target: <= 2x), and without consent
  (target: <= 1.5x);
- the host's exit delay when the telemetry server hangs (target: <= 50 ms), and when 8 hosts of 10,000 counts each
  exit at the same moment while another process holds the local store (same target; every count must be stored);
- the cost of flushing 1,000 distinct counters.

Figures are medians over interleaved repetitions, so that the two sides see the same machine load.
"""

from __future__ import annotations

import argparse
import datetime
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from pathlib import Path

import consentry
from consentry import Recorder
from consentry._consent.switches import CI_VARIABLES
from consentry._local.counts import Store, merge_journal
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from consentry._record.journal import Batch, DayMeta
from consentry.manifest import loads_manifest
from consentry.testing import FixedClock


def manifest_text(url: str, events: int = 20, *, command: bool = False) -> str:
    lines = [
        "manifest_version = 1",
        "[app]",
        'name = "bench-app"',
        'consent_text = "Benchmark."',
        "[levels.basic]",
        'description = "Everything."',
        f'endpoint = "{url}/v1/reports/basic"',
        'system = ["os", "python"]',
    ]
    for index in range(events):
        lines += ["[[events]]", f'name = "event.{index}"', 'level = "basic"', 'purpose = "Benchmark."']
    if command:  # a tool without subcommands: its runs are spans under the application's name
        lines += ["[[commands]]", 'name = "bench-app"', 'level = "basic"', 'purpose = "Benchmark."']
        lines += ["[commands.params]", 'level = ["a", "b"]']
    return "\n".join(lines) + "\n"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def python_environment(cache: Path) -> dict[str, str]:
    """The environment of the interpreters started here: as installed applications run, with bytecode caches
    (kept in a folder of their own), and without CI variables, which would stop uploads."""
    env = {key: value for key, value in os.environ.items() if key not in CI_VARIABLES}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


# ---- import time -------------------------------------------------------------------------------------------------
def import_time(home: Path, repeats: int) -> tuple[float, float, float]:
    manifest = home / "startup.toml"
    manifest.write_text(manifest_text("https://bench.example.org"), encoding="utf-8")
    commands = {
        "pass": [],
        "import consentry": [],
        f"import consentry; consentry.init({str(manifest)!r}, home={str(home / 'nobody')!r})": [],
    }
    env = python_environment(home / "pycache")
    for command in commands:  # warm the bytecode cache, as an installed package has it
        subprocess.run([sys.executable, "-c", command], check=True, env=env)
    for _ in range(repeats):
        for command, samples in commands.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", command], check=True, env=env)
            samples.append(time.perf_counter() - started)
    bare, imported, initialised = (median_ms(samples) for samples in commands.values())
    return bare, imported, initialised


def command_line_cost(home: Path, repeats: int) -> tuple[float, float, float]:
    """A run of a small argparse tool, as is and wrapped with ``consentry.cli_tool``, without and with consent.

    With consent, the same home serves every run, as on a user's machine: each run flushes its span to the journal,
    and the first one starts the detached uploader (which finds nothing listening at the endpoint, and ends).
    """
    manifest = home / "tool.toml"
    manifest.write_text(manifest_text("http://127.0.0.1:9", command=True), encoding="utf-8")
    consented = home / "consented"
    consentry.set_consent(consentry.load_manifest(manifest), "on", "basic", home=consented, environ={})
    tool = (
        "import argparse{extra}\n"
        "parser = argparse.ArgumentParser(prog='bench-app')\n"
        "parser.add_argument('--level', choices=('a', 'b'))\n"
        "def main(argv=None):\n"
        "    return 0 if parser.parse_args(argv) else 1\n"
        "{wrap}"
        "raise SystemExit(main(['--level', 'a']))\n"
    )
    wrap = "main = consentry.cli_tool(parser, {manifest!r}, home={home!r})(main)\n"
    plain = tool.format(extra="", wrap="")
    without = tool.format(extra=", consentry", wrap=wrap.format(manifest=str(manifest), home=str(home / "nobody")))
    with_consent = tool.format(extra=", consentry", wrap=wrap.format(manifest=str(manifest), home=str(consented)))
    env = python_environment(home / "pycache")
    env["CONSENTRY_POLICY_FILE"] = str(home / "none.json")
    samples: dict[str, list[float]] = {plain: [], without: [], with_consent: []}
    for command in samples:
        subprocess.run([sys.executable, "-c", command], check=True, env=env, stdin=subprocess.DEVNULL)
    for _ in range(repeats):
        for command, times in samples.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", command], check=True, env=env, stdin=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
    return median_ms(samples[plain]), median_ms(samples[without]), median_ms(samples[with_consent])


# ---- count() -----------------------------------------------------------------------------------------------------
def count_cost(home: Path) -> dict[str, float]:
    manifest = loads_manifest(manifest_text("https://bench.example.org"))
    env = {"CONSENTRY_POLICY_FILE": str(home / "none.json")}
    clock = FixedClock(datetime.datetime(2026, 11, 18, 12, tzinfo=datetime.timezone.utc))
    off = consentry.init(manifest, home=home / "off", environ=env, clock=clock, background=False, flush_at_exit=False)
    consentry.set_consent(manifest, "on", "basic", home=home / "on", environ=env, clock=clock)
    on = consentry.init(manifest, home=home / "on", environ=env, clock=clock, background=False, flush_at_exit=False)
    assert isinstance(on, Recorder)
    counts: dict[str, int] = {}

    def dict_increment(event: str, n: int = 1) -> None:
        counts[event] = counts.get(event, 0) + n

    scope = {"dict_increment": dict_increment, "on": on, "off": off, "counts": counts}
    statements = {
        "dict increment (function)": "dict_increment('event.1')",
        "dict increment (inline)": "counts['event.1'] = counts.get('event.1', 0) + 1",
        "count() with consent": "on.count('event.1')",
        "count() without consent": "off.count('event.1')",
    }
    number = 200_000
    results: dict[str, list[float]] = {name: [] for name in statements}
    for _ in range(15):
        for name, statement in statements.items():
            results[name].append(timeit.timeit(statement, globals=scope, number=number) / number)
    on.close()
    return {name: statistics.median(samples) * 1e9 for name, samples in results.items()}


# ---- exit delay --------------------------------------------------------------------------------------------------
HOST = """
import sys, time
{setup}
print(time.time(), flush=True)
"""
SETUP = """
import consentry
telemetry = consentry.init({manifest!r}, home={home!r})
telemetry.count("event.1")
"""


def hanging_server() -> tuple[socket.socket, threading.Event]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            held.append(connection)  # never answered

    threading.Thread(target=accept, daemon=True).start()
    return listener, stop


def exit_delay(home: Path, repeats: int) -> tuple[float, float]:
    listener, stop = hanging_server()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    manifest_path = home / "exit.toml"
    manifest_path.write_text(manifest_text(url), encoding="utf-8")
    manifest = consentry.load_manifest(manifest_path)
    client_home = home / "exit-home"
    env = {"CONSENTRY_POLICY_FILE": str(home / "none.json")}
    yesterday = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    consentry.set_consent(manifest, "on", "basic", home=client_home, environ=env, clock=FixedClock(yesterday))
    environment = python_environment(home / "pycache")
    environment["CONSENTRY_POLICY_FILE"] = env["CONSENTRY_POLICY_FILE"]
    scripts = {
        "bare": HOST.format(setup=""),
        "consentry": HOST.format(setup=SETUP.format(manifest=str(manifest_path), home=str(client_home))),
    }
    delays: dict[str, list[float]] = {name: [] for name in scripts}
    for _ in range(repeats):
        # A pending report each time, so that an upload is due and the server's hang matters.
        recorder = consentry.init(
            manifest, home=client_home, environ=env, clock=FixedClock(yesterday), background=False, flush_at_exit=False
        )
        recorder.count("event.2")
        recorder.flush()
        AppSession.open(manifest, home=client_home, environ=env).prepare_reports()
        (client_home / "apps" / "bench-app" / "state.json").unlink(missing_ok=True)
        for name, script in scripts.items():
            process = subprocess.Popen(
                [sys.executable, "-c", script], stdout=subprocess.PIPE, env=environment, text=True
            )
            stdout, _ = process.communicate(timeout=60)
            ended = time.time()
            delays[name].append(ended - float(stdout.split()[-1]))
    stop.set()
    listener.close()
    subprocess.run(["pkill", "-f", f"consentry._send.detached --home {client_home}"], check=False)
    return median_ms(delays["bare"]), median_ms(delays["consentry"])


TOGETHER = """
import os, sys, time
{setup}
for _ in range(10_000):
    telemetry.count("event.1")
print("ready", flush=True)
while not os.path.exists({go!r}):
    time.sleep(0.0005)
print(time.time(), flush=True)
"""


BARE_TELEMETRY = """
class Nothing:
    def count(self, event):
        pass
telemetry = Nothing()
"""


def exit_together(home: Path, repeats: int, hosts: int = 8) -> tuple[float, float, int, int]:
    """``hosts`` processes (10,000 counts each) exiting at once while another process holds the store.

    Returns the median exit delay of the bare and the Consentry hosts, and the counts stored against counted.
    """
    manifest_path = home / "together.toml"
    manifest_path.write_text(manifest_text("http://127.0.0.1:9"), encoding="utf-8")
    manifest = consentry.load_manifest(manifest_path)
    client_home = home / "together-home"
    env = {"CONSENTRY_POLICY_FILE": str(home / "none.json")}
    consentry.set_consent(manifest, "on", "basic", home=client_home, environ=env)
    environment = python_environment(home / "pycache")
    environment["CONSENTRY_POLICY_FILE"] = env["CONSENTRY_POLICY_FILE"]
    paths = Paths(client_home).app(manifest.name)
    Store(paths.store).add(Batch("bench", {datetime.date.today(): DayMeta("1.0")}))  # noqa: DTZ011 - local days
    delays: dict[str, list[float]] = {"bare": [], "consentry": []}
    counted = 0
    for round_ in range(repeats):
        for name, samples in delays.items():
            go = home / f"go-{round_}-{name}"
            setup = BARE_TELEMETRY if name == "bare" else SETUP
            script = TOGETHER.format(setup=setup.format(manifest=str(manifest_path), home=str(client_home)), go=str(go))
            running = [
                subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=environment, text=True)
                for _ in range(hosts)
            ]
            for process in running:
                assert process.stdout is not None
                assert process.stdout.readline().strip() == "ready"
            blocker = sqlite3.connect(paths.store, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            ended: list[float] = [0.0] * len(running)
            outputs: list[str] = [""] * len(running)

            def wait(
                index: int, process: subprocess.Popen[str], outputs: list[str] = outputs, ended: list[float] = ended
            ) -> None:
                outputs[index], _ = process.communicate(timeout=60)
                ended[index] = time.time()

            waiters = [threading.Thread(target=wait, args=item) for item in enumerate(running)]
            for waiter in waiters:
                waiter.start()
            try:
                go.touch()
                for waiter in waiters:
                    waiter.join(90)
                samples.extend(end - float(out.split()[-1]) for end, out in zip(ended, outputs, strict=True))
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            counted += hosts * 10_001 if name == "consentry" else 0  # SETUP counts one more
    merge_journal(paths)
    record = Store(paths.store).read_day(datetime.date.today())  # noqa: DTZ011
    stored = record.counters.get(("event", "event.1"), 0) if record else 0
    subprocess.run(["pkill", "-f", f"consentry._send.detached --home {client_home}"], check=False)
    return median_ms(delays["bare"]), median_ms(delays["consentry"]), stored, counted


# ---- flush -------------------------------------------------------------------------------------------------------
def flush_cost(home: Path, repeats: int) -> tuple[float, float]:
    manifest = loads_manifest(manifest_text("https://bench.example.org", events=1000))
    env = {"CONSENTRY_POLICY_FILE": str(home / "none.json")}
    clock = FixedClock(datetime.datetime(2026, 11, 18, 12, tzinfo=datetime.timezone.utc))
    consentry.set_consent(manifest, "on", "basic", home=home / "flush", environ=env, clock=clock)
    recorder = consentry.init(
        manifest, home=home / "flush", environ=env, clock=clock, background=False, flush_at_exit=False
    )
    assert isinstance(recorder, Recorder)
    recorder.flush()  # the first flush creates the store
    empty, full = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        recorder.flush()
        empty.append(time.perf_counter() - started)
        for index in range(1000):
            recorder.count(f"event.{index}")
        started = time.perf_counter()
        recorder.flush()
        full.append(time.perf_counter() - started)
    return median_ms(empty), median_ms(full)


def verdict(ok: bool, /) -> str:
    return "ok" if ok else "OVER TARGET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeats = 8 if args.quick else 30
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        bare, imported, initialised = import_time(home, repeats)
        added = imported - bare
        print(
            f"import consentry: {imported:.1f} ms vs bare interpreter {bare:.1f} ms: +{added:.1f} ms "
            f"(target <= 5 ms: {verdict(added <= 5)})"
        )
        print(
            f"import and init() without consent: {initialised:.1f} ms: +{initialised - bare:.1f} ms over a bare "
            "interpreter (mostly re, collections and threading, which most applications import anyway)"
        )
        tool, without, with_consent = command_line_cost(home, repeats)
        for name, wrapped, target in (("no consent yet", without, 1.05), ("with consent", with_consent, 1.15)):
            print(
                f"a command-line tool's run (argparse) wrapped with cli_tool, {name}: {wrapped:.1f} ms vs "
                f"{tool:.1f} ms unwrapped: +{wrapped - tool:.1f} ms, {wrapped / tool:.2f}x "
                f"(target <= {target}x: {verdict(wrapped / tool <= target)})"
            )
        costs = count_cost(home)
        base = costs["dict increment (function)"]
        for name, value in costs.items():
            print(f"{name:<28} {value:6.1f} ns  = {value / base:4.2f}x the function dict increment")
        on_ratio = costs["count() with consent"] / base
        off_ratio = costs["count() without consent"] / base
        print(
            f"count() with consent: {on_ratio:.2f}x (target <= 2x: {verdict(on_ratio <= 2)}); "
            f"without consent: {off_ratio:.2f}x (target <= 1.5x: {verdict(off_ratio <= 1.5)})"
        )
        bare_exit, consentry_exit = exit_delay(home, max(5, repeats // 3))
        delay = consentry_exit - bare_exit
        print(
            f"exit with a hanging server: {consentry_exit:.1f} ms vs bare {bare_exit:.1f} ms: +{delay:.1f} ms "
            f"(target <= 50 ms: {verdict(delay <= 50)})"
        )
        bare_together, consentry_together, stored, counted = exit_together(home, max(2, repeats // 8))
        delay = consentry_together - bare_together
        print(
            "8 hosts of 10,000 counts exiting together while another process holds the store: "
            f"{consentry_together:.1f} ms vs bare {bare_together:.1f} ms: +{delay:.1f} ms each "
            f"(target <= 50 ms: {verdict(delay <= 50)}); "
            f"{stored:,} of {counted:,} counts stored ({'none lost' if stored == counted else 'COUNTS LOST'})"
        )
        empty, full = flush_cost(home, max(5, repeats // 3))
        print(
            f"flush of 1,000 distinct counters: {full:.1f} ms ({full / 1000 * 1000:.1f} us per counter); "
            f"an empty flush: {empty:.1f} ms; ratio {full / empty:.1f}x"
        )


if __name__ == "__main__":
    main()
