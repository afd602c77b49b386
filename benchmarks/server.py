"""Server benchmarks: each figure measured side by side with its baseline in one run, printed as a ratio.

    python benchmarks/server.py [--quick] [--rows N] [--seconds S] [--rounds R] [--only PART ...]

1. durable ingest against a naive implementation of NAP-8's proposal (benchmarks/naive_nap8.py: FastAPI,
   pydantic models of the report, one SQLite commit per request) under the same load: reports per second per
   core, that is per CPU-second of the server's processes (target: >= 5x), and the plain throughput ratio beside
   it. The real application runs on SQLite as ``serve`` runs it (a serving process and its storing process; a 2xx
   means committed). Beside them, for reference: the same server stack answering an empty 204 on the same route
   (the ceiling the stack sets; the old ">= 0.5x of it" target is retired) and the steps between the two in one
   process (reading the body, decoding and validating, storing in a thread), which split a request's cost into
   its parts; and the CPU each used per request (server processes and wrk, from /proc);
2. what the storing process earns against storing in a thread of the serving process, to keep two ways of
   storing only while it is at least 1.5x. (A second decoder, for canonical bodies, was measured the same way
   and removed: 1.09x on decoding and validation alone, an upper bound of what it gave ingest.)
3. p99 latency at 80% of the maximum rate measured in 1, with a paced load;
4. PostgreSQL with two server processes (each on its own port, the load split between them): throughput and p99
   (skipped, saying why, when the PostgreSQL backend or server binaries are not available);
5. bytes per stored counter row on SQLite, after VACUUM, less an empty database (target: <= 48);
6. aggregation of 10 million counter rows on SQLite (target: <= 60 s).

Load comes from wrk (Debian package ``wrk``) on 127.0.0.1 only, bounded in time (seconds per phase) with a Lua
script that posts a distinct report in every request (benchmarks/wrk_reports.lua), so idempotency never turns
the load into duplicates. Reports are varied, valid reports of the example applications (benchmarks/reportgen.py),
each in the client's canonical encoding, sent uncompressed (the client gzips it; wrk cannot). Servers run in their
own processes (benchmarks/serve_bench.py) on free ports and are stopped at the end. Throughput is the median over
interleaved rounds, so that every server sees the same machine load; a round measures each server in turn, in a
rotating order.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import hashlib
import importlib.util
import itertools
import json
import os
import queue
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import bulkload
import pgcluster
from consentry_server.storage import SQLiteStorage, open_storage
from consentry_server.storage.base import Arrival
from reportgen import ReportFactory, register_examples, split_template
from serve_bench import settings_for

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk_reports.lua"
INSTALL = "apt-get install -y hey wrk"
PARTS = ("ingest", "postgres", "size", "aggregation")
STARTED = time.monotonic()
_phases = itertools.count(1)


def say(message: str) -> None:
    """A line of progress, with the time since the start."""
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", flush=True)


def at_least(value: float, target: float) -> str:
    """The verdict on a figure that must reach ``target``."""
    return "ok" if value >= target else "UNDER TARGET"


def at_most(value: float, target: float) -> str:
    """The verdict on a figure that must not exceed ``target``."""
    return "ok" if value <= target else "OVER TARGET"


@dataclasses.dataclass(frozen=True)
class Target:
    """One figure of the summary."""

    name: str
    value: str
    target: str
    verdict: str


# ---- load --------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Load:
    """What one wrk run (or several at once, against several ports) measured."""

    requests: int
    seconds: float
    failed: int  # 4xx and 5xx answers
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    generator_cpu: float = 0.0  # CPU seconds wrk used
    server_cpu: tuple[float, ...] = ()  # CPU seconds each server process used (see Server.load)
    idle: float | None = None  # the machine's idle share while the load ran

    @property
    def rate(self) -> float:
        """Successful (2xx) answers per second."""
        return (self.requests - self.failed) / self.seconds

    @property
    def acknowledged(self) -> int:
        """Successful answers."""
        return self.requests - self.failed

    def latency(self) -> str:
        """The latency percentiles, for printing."""
        return f"p50 {self.p50_ms:.1f} ms, p90 {self.p90_ms:.1f} ms, p99 {self.p99_ms:.1f} ms"


# ---- CPU accounting (Linux /proc) -------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int) -> float:
    """CPU seconds (user and system) process ``pid`` has used so far; 0 if it is gone or /proc is missing."""
    try:
        # The name (field 2) may hold spaces and parentheses: the fields that follow start after its last ')'.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime and stime, fields 14 and 15


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (its storing process, for ``consentry``)."""
    found = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def machine_times() -> tuple[int, int] | None:
    """(idle, total) clock ticks of every core since boot, or ``None`` without /proc/stat."""
    try:
        ticks = [int(field) for field in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    return ticks[3] + ticks[4], sum(ticks)  # idle and waiting for I/O


def idle_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of the machine's cores left idle between two :func:`machine_times`."""
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def children_cpu() -> float:
    """CPU seconds used by this process's children that have ended and been waited for (the wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_load(
    ports: Sequence[int], templates: Path, seconds: float, connections: int, rate: float | None = None
) -> Load:
    """Run wrk against every port at once (connections and rate split between them); combine the results.

    With several ports, the percentiles are those of the slowest server (wrk reports them per run).
    """
    processes = []
    generator_before = children_cpu()  # only the wrk runs end while a load runs: servers end at the very end
    for port in ports:
        command = ["wrk", "-t1", f"-c{max(1, connections // len(ports))}", f"-d{seconds:g}s", "--timeout", "10s"]
        command += ["-s", str(LUA), f"http://127.0.0.1:{port}", "--", str(templates), str(next(_phases))]
        if rate:
            command.append(f"{rate / len(ports):.3f}")
        processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=seconds + 120)
        lines = [line for line in stdout.splitlines() if line.startswith("WRK_RESULT ")]
        if process.returncode != 0 or not lines:
            raise RuntimeError(f"wrk failed ({process.returncode}): {stderr.strip() or stdout.strip()}")
        results.append(json.loads(lines[-1].removeprefix("WRK_RESULT ")))
    generator_cpu = children_cpu() - generator_before
    socket_errors = sum(r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"] for r in results)
    return Load(
        requests=sum(r["requests"] for r in results),
        seconds=max(r["duration_us"] for r in results) / 1e6,
        failed=sum(r["status_errors"] for r in results),
        socket_errors=socket_errors,
        p50_ms=max(r["p50_us"] for r in results) / 1000,
        p90_ms=max(r["p90_us"] for r in results) / 1000,
        p99_ms=max(r["p99_us"] for r in results) / 1000,
        generator_cpu=generator_cpu,
    )


class Server:
    """A server process of ``serve_bench.py``, started on a free port of 127.0.0.1."""

    def __init__(self, kind: str, database: str, folder: Path) -> None:
        self.kind = kind
        self.log_path = folder / f"server-{kind}-{next(_phases)}.log"
        self.acknowledged = 0
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(HERE / "serve_bench.py"), kind, database],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        stdout = self.process.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            line = ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the {kind} server did not start:\n{self.log_path.read_text()[-3000:]}")
        self.port = int(line.split()[1])

    def load(self, templates: Path, seconds: float, connections: int, rate: float | None = None) -> Load:
        """Load this server alone; with the CPU its processes used (the serving one first) and the idle share."""
        pids = [self.process.pid, *child_pids(self.process.pid)]
        before, machine = [process_cpu(pid) for pid in pids], machine_times()
        result = run_load([self.port], templates, seconds, connections, rate)
        used = tuple(process_cpu(pid) - start for pid, start in zip(pids, before, strict=True))
        result = dataclasses.replace(result, server_cpu=used, idle=idle_share(machine, machine_times()))
        self.acknowledged += result.acknowledged
        return result

    def stop(self) -> None:
        """Stop the process (SIGTERM: uvicorn finishes what it has, the writer stores what is queued)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@contextlib.contextmanager
def servers(*specs: tuple[str, str], folder: Path) -> Iterator[list[Server]]:
    """Start a server for every (kind, database); stop them all at the end."""
    started: list[Server] = []
    try:
        for kind, database in specs:
            started.append(Server(kind, database, folder))
        yield started
    finally:
        for server in started:
            server.stop()


def prepare_sqlite(path: Path) -> str:
    """A migrated SQLite database with the example applications registered; its URL."""
    url = f"sqlite:///{path}"
    storage = open_storage(settings_for(url))
    register_examples(storage)
    storage.close()
    return url


def write_templates(path: Path, count: int) -> Path:
    """Templates of ``count`` different reports of the ingest mix, checked against the manifests."""
    factory = ReportFactory("ingest")
    with path.open("w", encoding="ascii") as out:
        for seed in range(count):
            report = factory.report(seed)
            factory.check(report)
            before, after = split_template(report)
            out.write(f"{report.level}\t{before}\t{after}\n")
    return path


def stored_rows(path: Path, table: str) -> int:
    """Rows of ``table`` in the SQLite file ``path`` (read on a connection of its own)."""
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608 - our table names
    finally:
        db.close()


def filesystem(path: Path) -> str:
    """The type of the file system ``path`` is on (from /proc/mounts), or ``unknown``."""
    best, kind = "", "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and str(path).startswith(fields[1]) and len(fields[1]) > len(best):
                best, kind = fields[1], fields[2]
    return kind


# ---- 1, 2, 3: ingest on SQLite --------------------------------------------------------------------------------
def interleaved(
    args: argparse.Namespace, by_kind: dict[str, Server], kinds: dict[str, str], templates: Path
) -> dict[str, list[Load]]:
    """``args.rounds`` rounds of a load phase against each server in turn, in a rotating order."""
    loads: dict[str, list[Load]] = {kind: [] for kind in kinds}
    order = list(kinds)
    for number in range(args.rounds):
        for kind in order[number % len(order) :] + order[: number % len(order)]:
            result = by_kind[kind].load(templates, args.seconds, args.connections)
            loads[kind].append(result)
            problems = f", {result.failed} refused, {result.socket_errors} socket errors" if result.failed else ""
            say(f"round {number + 1}/{args.rounds}: {kinds[kind]:<52} {result.rate:8.0f}/s{problems}")
    return loads


def cpu_per_request(results: Sequence[Load]) -> tuple[list[float], float, float | None]:
    """Over all ``results``: µs of CPU per request of each server process and of wrk, and the median idle share."""
    requests = max(1, sum(load.requests for load in results))
    processes = max(len(load.server_cpu) for load in results)
    server = [sum(load.server_cpu[i] for load in results if i < len(load.server_cpu)) for i in range(processes)]
    idles = [load.idle for load in results if load.idle is not None]
    generator = sum(load.generator_cpu for load in results) / requests * 1e6
    idle = statistics.median(idles) if idles else None
    return [cpu / requests * 1e6 for cpu in server], generator, idle


def per_core_ratio(loads: dict[str, list[Load]], kind: str, baseline: str) -> float | None:
    """How many more reports ``kind`` stores per CPU-second of its server processes than ``baseline``."""
    ours, _, _ = cpu_per_request(loads[kind])
    theirs, _, _ = cpu_per_request(loads[baseline])
    if not sum(ours) or not sum(theirs):
        return None  # no /proc: the servers' CPU was not measured
    return sum(theirs) / sum(ours)


def cpu_part(loads: dict[str, list[Load]], kinds: dict[str, str], targets: dict[str, float]) -> None:
    """Where the CPU goes, and what the throughput targets leave for it on this machine.

    At ``rate`` requests per second, the machine's cores give ``cores / rate`` seconds of CPU to each request,
    for the server and the load generator together. If the server and wrk use more than that per request, no
    arrangement of the same work can reach the rate; if less, the shortfall is in how the work overlaps.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    say("CPU per request over all rounds (server processes, serving one first; wrk), and the machine's idle share:")
    used, by_servers = {}, {}
    for kind, label in kinds.items():
        server, generator, idle = cpu_per_request(loads[kind])
        used[kind], by_servers[kind] = sum(server) + generator, sum(server)
        parts = " + ".join(f"{cpu:.0f}" for cpu in server) + (f" = {sum(server):.0f}" if len(server) > 1 else "")
        shown = f"{idle:.0%}" if idle is not None else "unknown"
        print(f"    {label:<52} server {parts + ' us':<20} wrk {generator:3.0f} us   idle {shown}")
    if not by_servers["consentry"]:
        return  # no /proc: the servers' CPU was not measured (wrk's was, from this process's children)
    for name, rate in targets.items():
        available = cores / rate * 1e6
        needed = used["consentry"]
        verdict = (
            f"{needed / available:.2f}x what the cores can give, even if none were ever idle"
            if needed > available
            else "within what the cores can give: the shortfall is in how the processes overlap"
        )
        print(
            f"    at {name} ({rate:.0f}/s), {cores} cores give {available:.0f} us of CPU per request to the server "
            f"and wrk together; durable ingest uses {needed:.0f} us: {verdict}"
        )
    print(f"    decoding and validating alone, storing nothing, uses {used['validate']:.0f} us (server and wrk)")


def paced_part(
    args: argparse.Namespace, by_kind: dict[str, Server], templates: Path, maximum: float, summary: list[Target]
) -> None:
    """Figure 3: p99 at 80% of the maximum rate, paced; the empty stack at the same rate for reference."""
    rate = 0.8 * maximum
    paced = {}
    for kind in ("consentry", "empty"):
        paced[kind] = by_kind[kind].load(templates, args.paced_seconds, args.connections, rate=rate)
    held = paced["consentry"].rate
    print(
        f"3. p99 latency at 80% of the maximum rate ({rate:.0f}/s offered, {held:.0f}/s answered): "
        f"{paced['consentry'].p99_ms:.1f} ms ({paced['consentry'].latency()}); "
        f"the empty 204 stack at the same rate: {paced['empty'].latency()}"
    )
    summary.append(Target("3. p99 at 80% of max rate", f"{paced['consentry'].p99_ms:.1f} ms", "(measured)", ""))
    if held < 0.95 * rate:
        say(f"note: the paced load reached only {held / rate:.0%} of the offered rate")


def ingest_part(args: argparse.Namespace, folder: Path, templates: Path, summary: list[Target]) -> float | None:
    """Figures 1 to 3; returns the durable ingest rate (for the PostgreSQL comparison)."""
    kinds = {
        "empty": "empty 204, same stack",
        "echo": "  + read the body, answer JSON",
        "validate": "  + decode and validate against the manifests",
        "consentry-thread": "consentry, SQLite, durable, storing in a thread",
        "consentry": "consentry, SQLite, durable (storing process)",
    }
    naive = importlib.util.find_spec("fastapi") is not None and importlib.util.find_spec("pydantic") is not None
    if naive:
        kinds["naive"] = "naive NAP-8: FastAPI+pydantic, commit/request, WAL"
        kinds["naive-rollback"] = "naive NAP-8 with SQLite's default journal"
    else:
        say("figure 2 skipped: FastAPI and pydantic are not installed (pip install --group bench, from the root)")
    paths = {kind: folder / f"ingest-{kind}.sqlite3" for kind in kinds}
    specs = [(kind, prepare_sqlite(paths[kind]) if "naive" not in kind else str(paths[kind])) for kind in kinds]
    with servers(*specs, folder=folder) as running:
        by_kind = {server.kind: server for server in running}
        say(f"servers up: {', '.join(f'{s.kind} on :{s.port}' for s in running)}; warming up")
        for server in running:
            server.load(templates, args.warmup, args.connections)
        loads = interleaved(args, by_kind, kinds, templates)
        best = {kind: statistics.median(load.rate for load in results) for kind, results in loads.items()}
        say("ingest throughput, successful answers per second (median of the rounds), latency of the median round:")
        for kind, label in kinds.items():
            middle = sorted(loads[kind], key=lambda load: load.rate)[len(loads[kind]) // 2]
            print(f"    {label:<52} {best[kind]:8.0f}/s   {middle.latency()}")
        steps = ["empty", "echo", "validate", "consentry-thread"]
        costs = [1e6 / best[kind] for kind in steps]
        print(
            "    in one process, a request costs (1/throughput, the server being CPU-bound): "
            + ", ".join(f"{kind} {cost:.0f} us" for kind, cost in zip(steps, costs, strict=True))
            + "; so: body and JSON answer "
            + f"{costs[1] - costs[0]:.0f} us, decoding and validation {costs[2] - costs[1]:.0f} us, rate limits, "
            + f"the writer and storage {costs[3] - costs[2]:.0f} us"
        )
        targets = {"the target of figure 1, 5x the naive server": 5 * best["naive"]} if naive else {}
        cpu_part(loads, kinds, targets)
        if naive:
            per_core = per_core_ratio(loads, "consentry", "naive")
            times = best["consentry"] / best["naive"]
            rollback = best["consentry"] / best["naive-rollback"]
            shown = f"{per_core:.2f}x" if per_core is not None else "not measured (no /proc)"
            figure = per_core if per_core is not None else times
            print(
                f"1. durable ingest / naive NAP-8, reports per second per core: {shown} "
                f"(target >= 5x: {at_least(figure, 5)}); throughput {times:.2f}x (against the naive server with "
                f"SQLite's default journal: {rollback:.2f}x)"
            )
            summary.append(
                Target("1. consentry / naive NAP-8, per core", f"{figure:.2f}x", ">= 5x", at_least(figure, 5))
            )
        print(
            f"   the empty 204 on the same stack, for reference (a ceiling, no longer a target): durable ingest is "
            f"{best['consentry'] / best['empty']:.2f} of it"
        )
        storer = best["consentry"] / best["consentry-thread"]
        verdict = "keep" if storer >= 1.5 else "REMOVE one: earns less than 1.5x"
        print(f"2. the storing process / storing in a thread: {storer:.2f}x ({verdict})")
        summary.append(Target("2. storing process / thread", f"{storer:.2f}x", ">= 1.5x to keep", verdict))

        paced_part(args, by_kind, templates, best["consentry"], summary)

    # Every acknowledged report is in the database (more may be: requests cut off by the end of a phase).
    for kind, path in paths.items():
        if kind in ("consentry", "consentry-thread", "naive", "naive-rollback"):
            stored, acknowledged = stored_rows(path, "reports"), by_kind[kind].acknowledged
            check = "ok" if stored >= acknowledged else "MISSING REPORTS"
            say(f"{kind}: {acknowledged:,} reports acknowledged, {stored:,} stored: {check}")
    return best["consentry"]


# ---- 4: PostgreSQL ------------------------------------------------------------------------------------------------
def postgres_part(
    args: argparse.Namespace, folder: Path, templates: Path, sqlite_rate: float | None, summary: list[Target]
) -> None:
    """Two server processes on one PostgreSQL database, each on its own port, the load split between them."""
    reason = pgcluster.unavailable()
    bindir = pgcluster.find_bindir()
    if reason is not None or bindir is None:
        print(f"4. PostgreSQL with two server processes: skipped: {reason}")
        summary.append(Target("4. PostgreSQL, 2 processes", "skipped", "(measured)", reason or ""))
        return
    cluster = pgcluster.PostgresServer(bindir, pgcluster.SETTINGS)
    try:
        say("starting a throwaway PostgreSQL cluster")
        url = cluster.start()
        try:
            storage = open_storage(settings_for(url))
        except Exception as error:  # noqa: BLE001 - whatever stops it, the figure is skipped with the reason
            reason = f"the server does not open a PostgreSQL URL: {type(error).__name__}: {error}"
            print(f"4. PostgreSQL with two server processes: skipped: {reason}")
            summary.append(Target("4. PostgreSQL, 2 processes", "skipped", "(measured)", reason))
            return
        register_examples(storage)
        storage.close()
        with servers(("consentry", url), ("consentry", url), folder=folder) as running:
            ports = [server.port for server in running]
            say(f"two servers on PostgreSQL, on :{ports[0]} and :{ports[1]}; warming up")
            results = [run_load(ports, templates, args.warmup, args.connections)]
            for number in range(args.rounds):
                result = run_load(ports, templates, args.seconds, args.connections)
                results.append(result)
                say(f"round {number + 1}/{args.rounds}: PostgreSQL, 2 processes: {result.rate:8.0f}/s")
            rate = statistics.median(result.rate for result in results[1:])
            paced = run_load(ports, templates, args.paced_seconds, args.connections, rate=0.8 * rate)
        storage = open_storage(settings_for(url))
        stored, acknowledged = storage.report_count(), sum(r.acknowledged for r in [*results, paced])
        storage.close()
        check = "ok" if stored >= acknowledged else "MISSING REPORTS"
        say(f"PostgreSQL: {acknowledged:,} reports acknowledged, {stored:,} stored: {check}")
        compared = f"; {rate / sqlite_rate:.2f}x SQLite with one process" if sqlite_rate else ""
        print(
            f"4. PostgreSQL, two server processes: {rate:.0f}/s (median of the rounds{compared}); "
            f"p99 at 80% of that rate ({0.8 * rate:.0f}/s offered, {paced.rate:.0f}/s answered): "
            f"{paced.p99_ms:.1f} ms ({paced.latency()})"
        )
        summary.append(
            Target("4. PostgreSQL, 2 processes", f"{rate:.0f}/s, p99 {paced.p99_ms:.1f} ms", "(measured)", "")
        )
        if paced.rate < 0.95 * 0.8 * rate:
            say(f"note: the paced load on PostgreSQL reached only {paced.rate / (0.8 * rate):.0%} of the offered rate")
    finally:
        cluster.stop()


# ---- 5: bytes per counter row -------------------------------------------------------------------------------------
def compacted_size(path: Path) -> int:
    """The size of a SQLite database after a checkpoint and VACUUM (its WAL emptied)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def table_sizes(path: Path) -> dict[str, int]:
    """Bytes of every table and index (SQLite's dbstat)."""
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall())
    finally:
        db.close()


def new_storage(path: Path) -> SQLiteStorage:
    """A migrated SQLite storage with the examples registered."""
    storage = SQLiteStorage(path)
    storage.migrate()
    register_examples(storage)
    return storage


def size_part(folder: Path, reports: int, mix: str) -> tuple[float, str]:
    """Store ``reports`` reports of ``mix`` through store_batch; bytes per counter row and a breakdown."""
    empty = new_storage(folder / f"size-empty-{mix}.sqlite3")
    empty.close()
    storage = new_storage(folder / f"size-{mix}.sqlite3")
    factory = ReportFactory(mix)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    received = datetime.datetime.now(datetime.timezone.utc)
    started = time.perf_counter()
    batch: list[Arrival] = []
    for number in range(reports):
        day = today - datetime.timedelta(days=1 + number % 28)
        reporter = hashlib.blake2b(f"size/{number}".encode(), digest_size=16).hexdigest()
        batch.append(Arrival(factory.report(number, reporter, day), received, bulkload.COUNTRIES[number % 9]))
        if len(batch) == 500 or number == reports - 1:
            for outcome in storage.store_batch(batch):
                if isinstance(outcome, Exception):
                    raise outcome
            batch = []
    elapsed = time.perf_counter() - started
    counts = storage.statistics()
    storage.close()
    base = compacted_size(folder / f"size-empty-{mix}.sqlite3")
    full = compacted_size(folder / f"size-{mix}.sqlite3")
    rows = counts["counters"]
    sizes = table_sizes(folder / f"size-{mix}.sqlite3")
    counter_table = sizes.get("counters", 0) / rows
    reports_share = sizes.get("reports", 0) + sum(v for k, v in sizes.items() if "reports" in k and k != "reports")
    detail = (
        f"{rows:,} counter rows of {counts['reports']:,} reports ({rows / counts['reports']:.1f} per report), "
        f"{full - base:,} bytes; the counters table alone {counter_table:.1f} bytes per row, reports and their "
        f"indexes {reports_share / rows:.1f}, facts {sizes.get('facts', 0) / rows:.1f}; "
        f"store_batch took {elapsed / reports * 1e6:.0f} us per report"
    )
    return (full - base) / rows, detail


# ---- 6: aggregation -----------------------------------------------------------------------------------------------
def aggregation_part(folder: Path, rows: int, summary: list[Target]) -> None:
    """Fill a database with ``rows`` counter rows (see bulkload.py) and time ``storage.aggregate()``."""
    checked = bulkload.verify(folder)
    say(f"bulk loading checked: the same rows as store_batch on a database of {checked:,} counter rows")
    path = folder / "aggregate.sqlite3"
    started = time.perf_counter()
    bulkload.fill(path, rows, progress=say)
    storage = SQLiteStorage(path)
    counts = storage.statistics()
    say(
        f"{counts['counters']:,} counter rows in {counts['reports']:,} reports over "
        f"{len(bulkload.days_of(path))} days, loaded in {time.perf_counter() - started:.1f} s; aggregating"
    )
    spent: dict[str, float] = {}
    last = [time.perf_counter()]

    def progress(label: str, done: int, total: int) -> None:
        now = time.perf_counter()
        period = label.split(maxsplit=1)[0]
        spent[period] = spent.get(period, 0.0) + now - last[0]
        last[0] = now
        if done % 20 == 0 or done == total:
            say(f"aggregating: {done}/{total} buckets")

    started = last[0] = time.perf_counter()
    tables = storage.aggregate(progress)
    seconds = time.perf_counter() - started
    storage.close()
    shares = ", ".join(f"{period} buckets {value:.1f} s" for period, value in spent.items())
    shares += f", the rest (reading every aggregate back) {seconds - sum(spent.values()):.1f} s"
    print(
        f"6. aggregation of {counts['counters']:,} counter rows on SQLite: {seconds:.1f} s "
        f"(target <= 60 s: {at_most(seconds, 60)}); {shares}; "
        f"{len(tables.installs):,} install, {len(tables.counters):,} counter and {len(tables.values):,} value rows"
    )
    summary.append(
        Target(f"6. aggregate {counts['counters']:,} rows", f"{seconds:.1f} s", "<= 60 s", at_most(seconds, 60))
    )
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter phases, 1,000,000 rows to aggregate")
    parser.add_argument("--rows", type=int, help="counter rows to aggregate (default 10,000,000; --quick 1,000,000)")
    parser.add_argument("--seconds", type=float, help="seconds of each load phase (default 5; --quick 3)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of the throughput phases (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections of wrk (default 32)")
    parser.add_argument("--dir", type=Path, help="where the databases go (default: a temporary folder)")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only these parts (repeatable)")
    args = parser.parse_args()
    args.rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    args.seconds = args.seconds or (3.0 if args.quick else 5.0)
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.warmup = 1.0 if args.quick else 2.0
    args.paced_seconds = args.seconds * 2
    parts = args.only or list(PARTS)
    summary: list[Target] = []

    with tempfile.TemporaryDirectory(prefix="consentry-bench-", dir=args.dir) as name:
        folder = Path(name)
        kind = filesystem(folder.resolve())
        say(f"databases in {folder} ({kind} file system)")
        if kind in ("tmpfs", "ramfs"):
            say("warning: fsync costs nothing on this file system: use --dir on a disk for the durable figures")
        sqlite_rate = None
        if {"ingest", "postgres"} & set(parts):
            if shutil.which("wrk") is None:
                print(f"figures 1 to 4 skipped: the load generator wrk is not installed ({INSTALL})")
                parts = [part for part in parts if part not in ("ingest", "postgres")]
            else:
                templates = write_templates(folder / "templates.txt", 2000)
        if "ingest" in parts:
            sqlite_rate = ingest_part(args, folder, templates, summary)
        if "postgres" in parts:
            postgres_part(args, folder, templates, sqlite_rate, summary)
        if "size" in parts:
            reports = 5_000 if args.quick else 20_000
            say(f"storing {reports:,} reports with many counters for the size figure")
            per_row, detail = size_part(folder, reports, "rich")
            print(f"5. bytes per stored counter row on SQLite: {per_row:.1f} (target <= 48: {at_most(per_row, 48)})")
            print(f"    {detail}")
            summary.append(Target("5. bytes per counter row", f"{per_row:.1f}", "<= 48", at_most(per_row, 48)))
            mixed, detail = size_part(folder, reports // 2, "ingest")
            print(f"    with the ingest mix (many basic reports of two counters): {mixed:.1f} bytes per row; {detail}")
        if "aggregation" in parts:
            aggregation_part(folder, args.rows, summary)

    say("done")
    print("\nsummary")
    for target in summary:
        print(f"    {target.name:<34} {target.value:>22}   target {target.target:<10} {target.verdict}")


if __name__ == "__main__":
    main()
