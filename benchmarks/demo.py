"""The demo, before and after: time from ``consentry-server demo`` to its dashboard with data, side by side.

    python benchmarks/demo.py [--installs N] [--days N] [--seed N]

Both run the same simulated installs of the example applications (300 installs over 42 days by default: the
README's first command) into a fresh folder, aggregate, publish, and stop where the demo prints its dashboard URL:

- **before**: the demo as it was until issue 16, kept here as the reference: each simulated install is a real
  client home (consent, journal, store, outbox, history, each file flushed to disk), records each day through
  ``consentry.init``, and uploads with ``AppSession.upload`` one report at a time; the server runs in a thread of
  the same process and stores in a thread too;
- **after**: ``consentry-server demo --no-serve``: the client's recorder, report builder, wire codec and transport
  in a process of their own, many reports on their way at once, the server's storing process on its own core.

Printed: seconds of each (wall clock, to the dashboard URL), reports stored, and the ratio before/after.
Machines shared with others vary by several times from one minute to the next: compare the ratio, measured
in one run, not the seconds of different runs.
"""

from __future__ import annotations

import argparse
import datetime
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import consentry
from consentry._local.session import AppSession
from consentry.testing import FixedClock
from consentry.transport import HttpTransport
from consentry_examples import all_examples
from consentry_examples.demo import BehindProxy, rewrite_endpoints
from consentry_server.app import create_app
from consentry_server.cli import bind
from consentry_server.config import Settings
from consentry_server.publish.release import publish_as_configured
from consentry_server.storage import open_storage

_NETWORK = "128.112.1"


def before(data: Path, installs: int, days: int, seed: int) -> int:  # noqa: PLR0915 - the old demo, whole
    """The demo as it was: real client homes, one upload at a time; the reports stored."""
    import uvicorn  # noqa: PLC0415

    settings = Settings(
        database=f"sqlite:///{data / 'consentry.sqlite3'}",
        port=0,
        source_rate_per_minute=1_000_000,
        source_burst=1_000_000,
        source_new_reporters_per_day=1_000_000,
        trusted_proxies="127.0.0.1",
    )
    sock = bind("127.0.0.1", 0)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    storage = open_storage(settings)
    examples = all_examples()
    for example in examples:
        storage.register_manifest(rewrite_endpoints(example.manifest, base_url))
        for plugin in example.plugins:
            storage.register_manifest(plugin)
    config = uvicorn.Config(create_app(settings, storage), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    rng = random.Random(seed)
    manifests = {example.manifest.name: rewrite_endpoints(example.manifest, base_url) for example in examples}
    clients = data / "clients"
    population = []
    for index in range(installs):
        example = rng.choices(examples, weights=[example.weight for example in examples])[0]
        manifest = manifests[example.manifest.name]
        home = clients / f"{manifest.name}-{index:04d}"
        installed = [(plugin, rng.choice(example.plugin_versions)) for plugin in example.plugins if rng.random() < 0.6]
        level = rng.choices(
            [level.name for level in manifest.levels[1:]], weights=(0.4, 0.3, 0.3)[: len(manifest.levels) - 1]
        )[0]
        consentry.set_consent(manifest, "on", level, home=home, environ={})
        for plugin, _ in installed:
            if rng.random() < 0.8:
                consentry.set_plugin_consent(manifest, plugin.name, allow=True, home=home, environ={})
        start = days - 1 - int(days * rng.random() ** 0.7)
        population.append(
            (example, manifest, home, installed, start, rng.uniform(0.25, 0.85), f"{_NETWORK}.{index % 250 + 1}")
        )
    transport = BehindProxy(HttpTransport(user_agent="consentry-demo"))
    environ = {"CONSENTRY_POLICY_FILE": str(clients / "no-policy.json")}
    today = datetime.datetime.now(datetime.timezone.utc).date()
    sent = 0

    def upload(manifest: consentry.Manifest, home: Path, clock: FixedClock, address: str) -> int:
        transport.address = address
        session = AppSession.open(manifest, home=home, environ=environ, clock=clock)
        session.prepare_reports()
        return session.upload(transport, force=True).sent

    for offset in range(days):
        day = today - datetime.timedelta(days=days - offset)
        clock = FixedClock(datetime.datetime.combine(day, datetime.time(12), datetime.timezone.utc))
        for example, manifest, home, installed, first, activity, address in population:
            if offset < first or rng.random() > activity:
                continue
            sent += upload(manifest, home, clock, address)
            recorder = consentry.init(
                manifest, app_version=example.versions[-1], home=home, environ=environ, clock=clock,
                background=False, flush_at_exit=False,
            )  # fmt: skip
            if isinstance(recorder, consentry.Recorder):
                recorder.supply_system(os="linux", arch="x86_64", python="3.12")
                example.simulate_day(recorder, rng, installed)
                recorder.flush()
    now = FixedClock(datetime.datetime.combine(today, datetime.time(8), datetime.timezone.utc))
    for _, manifest, home, _, _, _, address in population:
        sent += upload(manifest, home, now, address)
    storage.aggregate()
    publish_as_configured(storage, settings)
    server.should_exit = True
    thread.join(10)
    storage.close()
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--installs", type=int, default=300)
    parser.add_argument("--days", type=int, default=42)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="consentry-demo-bench-") as folder:
        started = time.perf_counter()
        old_sent = before(Path(folder) / "before", args.installs, args.days, args.seed)
        old = time.perf_counter() - started

        command = [str(Path(sys.executable).parent / "consentry-server"), "demo", "--no-serve", "--port", "0"]
        command += ["--data-dir", str(Path(folder) / "after"), "--installs", str(args.installs)]
        command += ["--days", str(args.days), "--seed", str(args.seed)]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        new = time.perf_counter() - started
    stored = next((line for line in done.stderr.splitlines() if "reports stored)" in line), "")
    print(f"demo, {args.installs} installs over {args.days} days, to the dashboard URL with data:")
    print(f"  before (real client homes, one upload at a time): {old:7.1f} s  ({old_sent} reports)")
    print(f"  after  (consentry-server demo):                   {new:7.1f} s  {stored.split('(')[-1].rstrip(')')}")
    print(f"  ratio before/after: {old / new:.1f}x faster")


if __name__ == "__main__":
    main()
