"""``consentry-server demo``: a server on 127.0.0.1 filled by simulated installs running the real client.

Every simulated install has its own Consentry home under ``<data-dir>/clients/``, gives consent at a level of
its choosing, records days of use through :func:`consentry.init` and uploads its reports over HTTP to the
demo server, exactly as an application would; only the machine's characteristics (operating system, memory,
screens...), its network and the clock are simulated. Each install is given an address of a real network in
its country, which the demo sends in ``X-Forwarded-For`` as a reverse proxy in front of the server would (the
demo trusts 127.0.0.1 as that proxy): the server derives the country and forgets the address, as in
production. The server then aggregates and publishes as in production.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import shutil
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import consentry
from consentry import FixedClock, HttpTransport, Manifest, PluginManifest
from consentry.session import AppSession
from consentry.transport import Request, Response
from consentry_server.config import Settings
from consentry_server.progress import ProgressBar
from consentry_server.publish import publish_as_configured
from consentry_server.storage import open_storage

__all__ = ["BehindProxy", "rewrite_endpoints", "run_demo", "simulate"]

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


@dataclasses.dataclass
class _Install:
    """One simulated installation of one example application."""

    home: Path
    manifest: Manifest
    plugins: Sequence[tuple[PluginManifest, str]]
    machine: dict[str, str]
    first_day: int
    activity: float
    address: str
    version_index: int = 0


def simulate(
    examples: Sequence[object],
    base_url: str,
    clients: Path,
    *,
    installs: int,
    days: int,
    seed: int,
    today: datetime.date,
) -> int:
    """Run ``installs`` simulated installs over ``days`` days ending yesterday; return reports sent."""
    from consentry_examples import Example  # noqa: PLC0415 - the examples are an optional distribution

    rng = random.Random(seed)
    apps = [example for example in examples if isinstance(example, Example)]
    manifests = {example.manifest.name: rewrite_endpoints(example.manifest, base_url) for example in apps}
    population: list[tuple[Example, _Install]] = []
    for index in range(installs):
        example = rng.choices(apps, weights=[example.weight for example in apps])[0]
        manifest = manifests[example.manifest.name]
        home = clients / f"{manifest.name}-{index:04d}"
        installed = [(plugin, rng.choice(example.plugin_versions)) for plugin in example.plugins if rng.random() < 0.6]
        levels = [level.name for level in manifest.levels[1:]]
        level = rng.choices(levels, weights=_LEVEL_WEIGHTS[: len(levels)])[0]
        start = days - 1 - int(days * rng.random() ** 0.7)  # more installs join as time goes on
        consentry.set_consent(manifest, "on", level, home=home, environ={})
        for plugin, _ in installed:
            if rng.random() < 0.8:
                consentry.set_plugin_consent(manifest, plugin.name, allow=True, home=home, environ={})
        install = _Install(home, manifest, installed, _machine(rng), start, rng.uniform(0.25, 0.85), _address(rng))
        population.append((example, install))

    transport = BehindProxy(HttpTransport(user_agent="consentry-demo"))
    environ = {"CONSENTRY_POLICY_FILE": str(clients / "no-policy.json")}
    bar = ProgressBar("simulating days of use")
    sent = 0
    for offset in range(days):
        day = today - datetime.timedelta(days=days - offset)
        for example, install in population:
            if offset < install.first_day or rng.random() > install.activity:
                continue
            clock = FixedClock(
                datetime.datetime.combine(day, datetime.time(9 + rng.randrange(10)), datetime.timezone.utc)
            )
            sent += _upload(install, clock, transport, environ)  # what the client's daily upload does
            newest = min(len(example.versions) - 1, offset * len(example.versions) // days)
            if rng.random() < 0.3:
                install.version_index = newest
            recorder = consentry.init(
                install.manifest,
                app_version=example.versions[install.version_index],
                home=install.home,
                environ=environ,
                clock=clock,
                background=False,
                flush_at_exit=False,
            )
            if isinstance(recorder, consentry.Recorder):
                recorder.supply_system(**install.machine)
                example.simulate_day(recorder, rng, install.plugins)
                recorder.flush()
        bar(offset + 1, days, f"{sent} reports sent")
    now = FixedClock(datetime.datetime.combine(today, datetime.time(8), datetime.timezone.utc))
    for _, install in population:
        sent += _upload(install, now, transport, environ)
    bar.finish(f"({installs} installs, {sent} reports sent)")
    return sent


def _upload(install: _Install, clock: FixedClock, transport: BehindProxy, environ: dict[str, str]) -> int:
    transport.address = install.address
    session = AppSession.open(install.manifest, home=install.home, environ=environ, clock=clock)
    session.prepare_reports()
    result = session.upload(transport, force=True)
    if result.dropped:
        sys.stderr.write(f"demo: {result.dropped} report(s) refused: {result.messages[0]}\n")
    return result.sent


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
    try:
        from consentry_examples import all_examples  # noqa: PLC0415
    except ImportError:
        sys.stderr.write(
            "consentry-server: error: the demo needs the example applications.\n"
            "hint: pip install ./examples (from a clone of the Consentry repository)\n"
        )
        return 1
    if not 1 <= installs <= 100_000 or not 1 <= days <= 56:
        sys.stderr.write("consentry-server: error: --installs must be 1..100000 and --days 1..56\n")
        return 2
    import uvicorn  # noqa: PLC0415

    from consentry_server.app import create_app  # noqa: PLC0415
    from consentry_server.cli import bind  # noqa: PLC0415

    for name in ("consentry.sqlite3", "consentry.sqlite3-wal", "consentry.sqlite3-shm", "public.sqlite3"):
        (data_dir / name).unlink(missing_ok=True)
    shutil.rmtree(data_dir / "clients", ignore_errors=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    # Every simulated install uploads from 127.0.0.1, a proxy to be trusted (see the module's docstring); the
    # per-source limits are lifted, since a few simulated installs share each address.
    settings = Settings(
        database=f"sqlite:///{data_dir / 'consentry.sqlite3'}",
        port=port,
        source_rate_per_minute=1_000_000,
        source_burst=1_000_000,
        source_new_reporters_per_day=1_000_000,
        trusted_proxies="127.0.0.1",
        noise_epsilon=noise_epsilon,
    )
    sock = bind("127.0.0.1", port)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    storage = open_storage(settings)
    examples = all_examples()
    for example in examples:
        storage.register_manifest(rewrite_endpoints(example.manifest, base_url))
        for plugin in example.plugins:
            storage.register_manifest(plugin)

    config = uvicorn.Config(
        create_app(settings, storage), log_level="warning", access_log=False, server_header=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="consentry-demo-server", daemon=True)
    thread.start()
    try:
        today = datetime.datetime.now(datetime.timezone.utc).date()
        simulate(examples, base_url, data_dir / "clients", installs=installs, days=days, seed=seed, today=today)
        storage.aggregate()
        publication = publish_as_configured(storage, settings)
        noise = f"; noise: epsilon {settings.noise_epsilon} per number" if settings.noise_epsilon else ""
        sys.stdout.write(
            f"Published {len(publication.installs)} install rows and {len(publication.counters)} counter rows "
            f"(numbers below {settings.reporter_threshold} installs are suppressed{noise}).\n"
            f"Dashboard: {base_url}/\nJSON API:  {base_url}/api/v1/apps\n"
        )
        sys.stdout.flush()
        if serve_forever:
            sys.stdout.write("Serving until interrupted (Ctrl-C).\n")
            sys.stdout.flush()
            while thread.is_alive():
                thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.should_exit = True
        thread.join(10)
        storage.close()
    return 0
