"""``consentry-server demo``: a server on 127.0.0.1 filled by simulated installs recording with the real client.

Each simulated install gives consent at a level of its choosing and records days of use through the client's
own :class:`~consentry.Recorder` (the example applications count, time commands and describe data exactly as
an application would); the client's report builder (:func:`consentry._send.reports.build_reports`) turns each day
into that level's reports, with the weekly reporter id derived from the install's secret, encoded by the
client's wire codec and sent over HTTP by the client's transport, many at a time, to the demo server. Only the
machine's characteristics (operating system, memory, screens...), its network and the clock are simulated, and
the client's files are left out: what the client keeps on disk between recording and sending (journal, store,
outbox, history, with an ``fsync`` each) would take a couple of minutes for the demo's 42 days of 300 installs,
and the end-to-end tests run that path on real homes.

Each install is given an address of a real network in its country, which the demo sends in ``X-Forwarded-For``
as a reverse proxy in front of the server would (the demo trusts 127.0.0.1 as that proxy): the server derives
the country and forgets the address, as in production. The server stores the reports in its storing process,
then aggregates and publishes as in production.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import email.utils
import errno
import gzip
import multiprocessing
import queue
import random
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from consentry import Manifest, PluginManifest, Recorder
from consentry._consent.answers import Decision
from consentry._local.counts import DayRecord
from consentry._local.paths import AppPaths
from consentry._record.journal import Batch, Journal
from consentry._record.system import dependency_versions
from consentry._send.reports import build_reports, reporter_id
from consentry.testing import FixedClock
from consentry.transport import HttpTransport, Request, Response, TransportError
from consentry.wire import encode
from consentry_server.config import Settings
from consentry_server.progress import ProgressBar
from consentry_server.publish.release import publish_as_configured
from consentry_server.storage import open_storage

if TYPE_CHECKING:
    from consentry_examples import Example

__all__ = ["BehindProxy", "Simulation", "fill", "rewrite_endpoints", "run_demo", "simulate"]

_OS = (
    ("linux", ("ubuntu-24", "ubuntu-22", "debian-12", "fedora-41", "rocky-9"), 0.45),
    ("macos", ("14", "15", "13"), 0.3),
    ("windows", ("11", "10"), 0.25),
)
_LEVEL_WEIGHTS = (0.4, 0.3, 0.3)
#: A /24 of a real network (universities, registries, well-known hosts) per country, and a share of installs.
_NETWORKS = (
    ("128.112.1", "US", 0.14), ("132.239.1", "US", 0.1), ("141.2.1", "DE", 0.08), ("5.9.0", "DE", 0.03),
    ("131.111.1", "GB", 0.06), ("130.88.1", "GB", 0.03), ("194.254.1", "FR", 0.05), ("133.1.1", "JP", 0.05),
    ("159.226.1", "CN", 0.05), ("142.150.1", "CA", 0.04), ("129.132.1", "CH", 0.04), ("145.100.1", "NL", 0.03),
    ("150.217.1", "IT", 0.03), ("161.111.1", "ES", 0.03), ("14.139.1", "IN", 0.04), ("128.250.1", "AU", 0.03),
    ("200.160.2", "BR", 0.03), ("147.46.1", "KR", 0.02), ("130.237.1", "SE", 0.02), ("130.225.1", "DK", 0.01),
    ("157.193.1", "BE", 0.01), ("137.132.1", "SG", 0.01), ("132.248.1", "MX", 0.01), ("196.11.1", "ZA", 0.01),
)  # fmt: skip
#: Reports on their way at once: enough for the server's group commit to store many per transaction.
SENDERS = 32
#: Times a report the server could not take yet (429, 503, no answer) is sent again before it counts as lost.
_ATTEMPTS = 20
_HEADERS = {"Content-Type": "application/json", "Content-Encoding": "gzip", "User-Agent": "consentry-demo"}


class BehindProxy:
    """The client's HTTP transport, with the address of a simulated install in ``X-Forwarded-For``.

    What a reverse proxy in front of the server would add; ``address`` may change between requests.
    """

    def __init__(self, transport: HttpTransport, address: str = "") -> None:
        self.transport = transport
        self.address = address

    def send(self, request: Request) -> Response:
        """Send ``request`` with the simulated address in ``X-Forwarded-For``."""
        headers = {**request.headers, "X-Forwarded-For": self.address}
        return self.transport.send(dataclasses.replace(request, headers=headers))


def _address(rng: random.Random) -> str:
    network = rng.choices(_NETWORKS, weights=[weight for *_, weight in _NETWORKS])[0][0]
    return f"{network}.{rng.randrange(1, 255)}"


def rewrite_endpoints(manifest: Manifest, base_url: str) -> Manifest:
    """``manifest`` with every level sending to ``{base_url}/v1/reports/{level}``: a deployment of its own."""
    levels = tuple(
        dataclasses.replace(level, endpoint=f"{base_url}/v1/reports/{level.name}") if level.endpoint else level
        for level in manifest.levels
    )
    return dataclasses.replace(manifest, levels=levels)


def _machine(rng: random.Random) -> dict[str, str]:
    family, versions, _ = rng.choices(_OS, weights=[weight for *_, weight in _OS])[0]
    arch = "arm64" if family == "macos" and rng.random() < 0.7 else rng.choices(("x86_64", "arm64"), (0.93, 0.07))[0]
    return {
        "os": family,
        "os_version": rng.choice(versions),
        "arch": arch,
        "python": rng.choices(("3.10", "3.11", "3.12", "3.13"), (0.15, 0.3, 0.35, 0.2))[0],
        "python_impl": "cpython",
        "cpus": rng.choice(("2", "3-4", "5-8", "5-8", "9-16", "17-32")),
        "memory": rng.choice(("4-8GB", "8-16GB", "8-16GB", "16-32GB", "32-64GB", "64-128GB")),
        "gpu": "apple" if arch == "arm64" and family == "macos" else rng.choice(("nvidia", "intel", "amd", "none")),
        "screens": rng.choices(("1", "2", "3+"), (0.6, 0.35, 0.05))[0],
        "screen_size": rng.choice(("1280-1919", "1920-2559", "1920-2559", "2560-3839", "3840+")),
        "screen_scale": rng.choice(("1", "1", "1.25", "1.5", "2")),
        "installer": rng.choices(("pip", "conda", "uv", "bundle"), (0.45, 0.35, 0.1, 0.1))[0],
        "interface": "gui",
    }


class _KeptJournal(Journal):
    """A recorder's journal kept in memory: what each flush took, for the day's reports; nothing is written."""

    def __init__(self) -> None:
        super().__init__(Path("journal"))
        self.batches: list[Batch] = []

    def write(self, batch: Batch) -> Path:
        """Keep ``batch``."""
        self.batches.append(batch)
        return self.folder

    def day(self, day: datetime.date) -> DayRecord | None:
        """What the flushes since the last call recorded on ``day``, as the client's store would hold it."""
        batches, self.batches = self.batches, []
        meta = next((batch.metas[day] for batch in reversed(batches) if day in batch.metas), None)
        if meta is None:
            return None
        counters: collections.Counter[tuple[str, str]] = collections.Counter()
        for batch in batches:
            for (when, kind, key), n in batch.counters.items():
                if when == day:
                    counters[(kind, key)] += n
        return DayRecord(day, meta, dict(counters))


class _InstallRecorder(Recorder):
    """The client's recorder of one simulated install: what it drops is counted here, its journal kept in memory."""

    def __init__(
        self,
        manifest: Manifest,
        level: str,
        home: Path,
        clock: FixedClock,
        *,
        app_version: str,
        plugin_choices: Mapping[str, str],
        dependencies: Mapping[str, str],
    ) -> None:
        decision = Decision("on", level, record=True, send=True, ask=False, reason="simulated consent", epoch="demo")
        super().__init__(
            manifest, decision, AppPaths(home), clock, app_version=app_version, plugin_choices=plugin_choices
        )
        self.journal: _KeptJournal = _KeptJournal()
        # The versions installed here, looked up once for all installs rather than by each (20 ms apiece).
        self._dependencies = dict(dependencies)
        self.dropped: collections.Counter[str] = collections.Counter()

    def drop(self, reason: str) -> None:
        """Count what the example counted beyond the install's level (the client keeps it in its state file)."""
        self.dropped[reason] += 1


@dataclasses.dataclass
class _Install:
    """One simulated installation of one example application."""

    manifest: Manifest
    level: str
    plugins: Sequence[tuple[PluginManifest, str]]
    first_day: int
    activity: float
    address: str
    secret: bytes
    recorder: _InstallRecorder
    version_index: int = 0
    reported: bool = False


@dataclasses.dataclass
class Simulation:
    """What :func:`simulate` sent: reports stored, reports refused (with the first reasons), install-days."""

    sent: int = 0
    refused: int = 0
    days_of_use: int = 0
    messages: list[str] = dataclasses.field(default_factory=list)


class _Senders:
    """Threads that send the reports put into :meth:`put`, several at once, each through the client's transport."""

    def __init__(self, count: int) -> None:
        self.queue: queue.Queue[tuple[str, bytes, str] | None] = queue.Queue(maxsize=64 * count)
        self.result = Simulation()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, name=f"demo-sender-{i}", daemon=True) for i in range(count)]
        for thread in self._threads:
            thread.start()

    def put(self, url: str, body: bytes, address: str) -> None:
        self.queue.put((url, body, address))

    def close(self) -> Simulation:
        """Wait until every report was answered; return what happened."""
        for _ in self._threads:
            self.queue.put(None)
        for thread in self._threads:
            thread.join()
        return self.result

    def _run(self) -> None:
        transport = BehindProxy(HttpTransport(user_agent="consentry-demo"))
        while (item := self.queue.get()) is not None:
            url, body, transport.address = item
            outcome = self._send(transport, Request(url, body, _HEADERS, timeout=30.0))
            with self._lock:
                if outcome is None:
                    self.result.sent += 1
                else:
                    self.result.refused += 1
                    if len(self.result.messages) < 3:
                        self.result.messages.append(outcome)

    @staticmethod
    def _send(transport: BehindProxy, request: Request) -> str | None:
        """Send until stored (``None``) or refused for good (the reason); a busy server is given time."""
        reason = "no answer"
        for attempt in range(_ATTEMPTS):
            try:
                response = transport.send(request)
            except TransportError as error:
                reason = f"no answer: {error}"
            else:
                if 200 <= response.status < 300:
                    return None
                reason = f"HTTP {response.status} {response.body[:300].decode('utf-8', 'replace')}"
                if response.status not in (408, 429, 503):
                    return reason
                wait = _retry_after(response)
                if wait is not None:
                    time.sleep(min(wait, 2.0))
                    continue
            time.sleep(min(0.05 * 2**attempt, 2.0))
        return reason


def _retry_after(response: Response) -> float | None:
    value = response.header("Retry-After")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def _population(
    examples: Sequence[Example], manifests: Mapping[str, Manifest], rng: random.Random, *, installs: int, days: int
) -> list[tuple[Example, _Install]]:
    dependencies = {
        name: dependency_versions(dict.fromkeys(d for level in manifest.levels for d in level.dependencies))
        for name, manifest in manifests.items()
    }
    population: list[tuple[Example, _Install]] = []
    for index in range(installs):
        example = rng.choices(examples, weights=[example.weight for example in examples])[0]
        manifest = manifests[example.manifest.name]
        installed = [(plugin, rng.choice(example.plugin_versions)) for plugin in example.plugins if rng.random() < 0.6]
        levels = [level.name for level in manifest.levels[1:]]
        level = rng.choices(levels, weights=_LEVEL_WEIGHTS[: len(levels)])[0]
        start = days - 1 - int(days * rng.random() ** 0.7)  # more installs join as time goes on
        choices = {plugin.name: "allow" for plugin, _ in installed if rng.random() < 0.8}
        recorder = _InstallRecorder(
            manifest,
            level,
            Path("demo-installs") / f"{manifest.name}-{index:04d}",  # a home never written: see the class
            FixedClock(datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)),
            app_version=example.versions[0],
            plugin_choices=choices,
            dependencies=dependencies[manifest.name],
        )
        recorder.supply_system(**_machine(rng))
        secret = rng.randbytes(32)
        install = _Install(manifest, level, installed, start, rng.uniform(0.25, 0.85), _address(rng), secret, recorder)
        population.append((example, install))
    return population


def simulate(
    base_url: str,
    *,
    installs: int,
    days: int,
    seed: int,
    today: datetime.date,
    senders: int = SENDERS,
    progress: Callable[[int, int], None] | None = None,
) -> Simulation:
    """Run ``installs`` simulated installs of the example applications over ``days`` days ending yesterday.

    Each day's reports are sent to ``base_url`` as soon as the day is over, by ``senders`` threads.
    ``progress(days_done, reports_stored)`` is called after each day.
    """
    from consentry_examples import all_examples  # noqa: PLC0415 - the examples are an optional distribution

    rng = random.Random(seed)
    examples = all_examples()
    manifests = {example.manifest.name: rewrite_endpoints(example.manifest, base_url) for example in examples}
    population = _population(examples, manifests, rng, installs=installs, days=days)
    pool = _Senders(senders)
    used = 0
    try:
        for offset in range(days):
            day = today - datetime.timedelta(days=days - offset)
            for example, install in population:
                if offset < install.first_day or rng.random() > install.activity:
                    continue
                newest = min(len(example.versions) - 1, offset * len(example.versions) // days)
                if rng.random() < 0.3:
                    install.version_index = newest
                used += 1
                for url, body in _day_of_use(example, install, rng, day):
                    pool.put(url, body, install.address)
            if progress is not None:
                progress(offset + 1, pool.result.sent)
    finally:
        result = pool.close()
    result.days_of_use = used
    return result


def _day_of_use(example: Example, install: _Install, rng: random.Random, day: datetime.date) -> list[tuple[str, bytes]]:
    """One day of use of ``install`` through its recorder, and the day's reports as the client would send them."""
    recorder = install.recorder
    recorder.app_version = example.versions[install.version_index]
    example.simulate_day(recorder, rng, install.plugins)
    recorder.flush(day=day, merge=False)
    record = recorder.journal.day(day)
    if record is None:  # the recorder stopped (its ``quiet`` says why): nothing to send
        return []
    reports = build_reports(
        install.manifest,
        install.level,
        record,
        reporter=reporter_id(install.secret, install.manifest.name, day),
        first_report=not install.reported,
        consent_version=install.manifest.consent_version,
    )
    install.reported = True
    return [
        (install.manifest.level(report.level).endpoint or "", gzip.compress(encode(report), mtime=0))
        for report in reports
    ]


@dataclasses.dataclass(frozen=True)
class _Plan:
    base_url: str
    installs: int
    days: int
    seed: int
    today: datetime.date


def _simulate_apart(plan: _Plan, progress: Connection) -> None:
    """:func:`simulate` in a process of its own, telling ``progress`` how far it got and, at the end, the result."""
    try:
        result = simulate(
            plan.base_url,
            installs=plan.installs,
            days=plan.days,
            seed=plan.seed,
            today=plan.today,
            progress=lambda done, sent: progress.send(("day", done, sent)),
        )
        progress.send(("done", dataclasses.asdict(result), 0))
    except KeyboardInterrupt:
        pass
    finally:
        progress.close()


def fill(base_url: str, *, installs: int, days: int, seed: int, today: datetime.date) -> Simulation:
    """Run :func:`simulate` in a process of its own, showing its progress on stderr; return what it sent.

    Apart, so that the demo's three busy parts use the machine's cores: the simulated installs building and
    sending reports, the server answering them, and its storing process storing them.
    """
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(
        target=_simulate_apart,
        args=(_Plan(base_url, installs, days, seed, today), writer),
        name="consentry-demo-installs",
        daemon=True,
    )
    process.start()
    writer.close()
    bar = ProgressBar("simulating days of use")
    result: Simulation | None = None
    try:
        while result is None:
            try:
                kind, value, sent = reader.recv()
            except EOFError:
                break
            if kind == "day":
                bar(value, days, f"{sent} reports stored")
            else:
                result = Simulation(**value)
    finally:
        reader.close()
        process.join(30)
        if process.is_alive():
            process.terminate()
    if result is None:
        raise RuntimeError(f"the simulated installs stopped early (exit status {process.exitcode})")
    bar.finish(f"({installs} installs, {result.days_of_use} days of use, {result.sent} reports stored)")
    return result


def _port_taken(port: int) -> str:
    return (
        f"consentry-server: error: port {port} on 127.0.0.1 is already in use (another demo or server?): stop it, "
        f"or choose another port, e.g. consentry-server demo --port {port + 1} (--port 0 picks a free one)\n"
    )


def _settings(data_dir: Path, port: int, noise_epsilon: float | None) -> Settings:
    """The demo server's settings, with an admin token of its own.

    Every simulated install uploads from 127.0.0.1, a proxy to be trusted (see the module's docstring). The limits
    per source and per reporter are lifted: a few simulated installs share each address, and each sends a week of
    reports within a second or two instead of a week.
    """
    return Settings(
        database=f"sqlite:///{data_dir / 'consentry.sqlite3'}",
        port=port,
        admin_token=secrets.token_urlsafe(18),
        source_rate_per_minute=1_000_000,
        source_burst=1_000_000,
        source_new_reporters_per_day=1_000_000,
        reporter_rate_per_minute=1_000_000,
        reporter_burst=1_000_000,
        trusted_proxies="127.0.0.1",
        noise_epsilon=noise_epsilon,
    )


def _check(installs: int, days: int, port: int) -> str | None:
    """What is wrong with the demo's options, if anything."""
    if not 1 <= installs <= 100_000 or not 1 <= days <= 56:
        return "--installs must be 1..100000 and --days 1..56"
    if not 0 <= port <= 65535:
        return "--port must be 0..65535 (0 picks a free one)"
    return None


def run_demo(
    data_dir: Path,
    *,
    port: int,
    installs: int,
    days: int,
    seed: int,
    serve_forever: bool = True,
    noise_epsilon: float | None = None,
) -> int:
    """Build the demo in ``data_dir`` and serve it; returns the exit code.

    ``noise_epsilon``: publish with calibrated noise, as the setting of that name does.
    """
    problem = _check(installs, days, port)
    if problem is not None:
        sys.stderr.write(f"consentry-server: error: {problem}\n")
        return 1 if problem.startswith("the demo needs") else 2
    from consentry_examples import all_examples  # noqa: PLC0415
    from consentry_server.app import create_app  # noqa: PLC0415
    from consentry_server.cli import bind, uvicorn_server  # noqa: PLC0415

    started = time.monotonic()
    try:  # first, so that a demo already serving on the port keeps its data
        sock = bind("127.0.0.1", port)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        sys.stderr.write(_port_taken(port))
        return 1
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for name in ("consentry.sqlite3", "consentry.sqlite3-wal", "consentry.sqlite3-shm", "public.sqlite3"):
        (data_dir / name).unlink(missing_ok=True)
    shutil.rmtree(data_dir / "clients", ignore_errors=True)  # the client homes earlier versions of the demo made
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = _settings(data_dir, port, noise_epsilon)
    storage = open_storage(settings)
    for example in all_examples():
        storage.register_manifest(rewrite_endpoints(example.manifest, base_url))
        for plugin in example.plugins:
            storage.register_manifest(plugin)
    # The server opens the database itself, so that reports are stored by its storing process, on a core of its own.
    server = uvicorn_server(create_app(settings), settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="consentry-demo-server", daemon=True)
    thread.start()
    try:
        today = datetime.datetime.now(datetime.timezone.utc).date()
        result = fill(base_url, installs=installs, days=days, seed=seed, today=today)
        if result.refused:
            sys.stderr.write(f"demo: {result.refused} report(s) not stored: {'; '.join(result.messages)}\n")
        storage.aggregate()
        publication = publish_as_configured(storage, settings)
        noise = f"; noise: epsilon {settings.noise_epsilon} per number" if settings.noise_epsilon else ""
        sys.stdout.write(
            f"Published {len(publication.installs)} install rows and {len(publication.counters)} counter rows "
            f"(numbers below {settings.reporter_threshold} installs are suppressed{noise}), "
            f"{time.monotonic() - started:.1f} s after the start.\n"
            f"Dashboard: {base_url}/\nJSON API:  {base_url}/api/v1/apps\n"
        )
        if serve_forever:
            sys.stdout.write(_how_to_add(settings, base_url) + "Serving until interrupted (Ctrl-C).\n")
            sys.stdout.flush()
            while thread.is_alive():
                thread.join(0.5)
        sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        server.should_exit = True
        thread.join(10)
        storage.close()
    return 0


def _how_to_add(settings: Settings, base_url: str) -> str:
    """How to add an application to the running demo, and to show its data."""
    database = f"--db {settings.database}"
    return (
        "Add your application to this server (the admin token is this demo's, printed for you only):\n"
        f"  CONSENTRY_ADMIN_TOKEN={settings.admin_token} consentry-server apps add my_app/telemetry.toml "
        f"--server {base_url}\n"
        f"and once its reports are in: consentry-server aggregate {database} && consentry-server publish {database}\n"
    )
