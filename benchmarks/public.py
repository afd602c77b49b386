"""Public side benchmark: every public API call and open-data file, on a year of aggregates of a large application.

    python benchmarks/public.py [--events N] [--weekly-installs N] [--requests N] [--dir DIR]

The public store is filled with what a year of publications of one application looks like: 1,000 distinct
events (50 components of 20), 100,000 weekly installs, daily, weekly and monthly rows for installs, every
event, and distributions of versions, OS, Python, architecture, 40 countries and 20 plugins with 3 versions
each. The public side (``create_public_app``, as ``serve`` runs it, in a process of its own on 127.0.0.1)
answers each route ``--requests`` times over one keep-alive connection; the first (cold: rendered from the
store) answer is reported apart. Printed: p50 and p95 per route, the cold time, the size, and the ratio of p95
to the 50 ms target (<= 1 meets it), beside ``/healthz`` on the same server as the floor of the stack.

Then each dashboard page is opened in Debian's headless Chromium (through Playwright, when both are installed),
in a fresh browser context each time (nothing cached), and timed from navigation to interactive: the page has
fetched its data and drawn its charts (``#main[data-ready]``). Printed: median and worst of ``--loads`` loads,
and the ratio of the worst to the 1 s target.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from consentry.manifest import loads_manifest
from consentry_server.storage.base import CounterRow, InstallRow, ValueRow
from consentry_server.storage.public import AppInfo, Publication, PublicStore
from server import Server

APP = "bench-app"
TARGET_MS = 50.0
PAGE_TARGET_S = 1.0
YEAR_START = datetime.date(2025, 11, 3)  # a Monday, a year before the benchmark's "today"


def manifest_text(events: int) -> str:
    """A manifest with ``events`` events in components of 20, all at level full."""
    lines = [
        "manifest_version = 1",
        "[app]",
        f'name = "{APP}"',
        'title = "Benchmark application"',
        'homepage = "https://bench.example.org"',
        'consent_text = "A large application of the public-side benchmark."',
    ]
    for level in ("basic", "middle", "full"):
        lines += [f"[levels.{level}]", f'description = "The {level} level."']
        lines += [f'endpoint = "https://telemetry.bench.example.org/v1/reports/{level}"']
    for number in range(events):
        lines += ["[[events]]", f'name = "component{number // 20:02d}:event{number % 20:02d}"']
        lines += ['level = "full"', 'purpose = "A feature of the benchmark."']
    return "\n".join(lines) + "\n"


def periods() -> Iterator[tuple[str, datetime.date, float]]:
    """(period, start, share of the weekly installs active in it) over a year."""
    for day in range(364):
        yield "day", YEAR_START + datetime.timedelta(days=day), 0.3
    for week in range(52):
        yield "week", YEAR_START + datetime.timedelta(weeks=week), 1.0
    for month in range(12):
        year, index = divmod(YEAR_START.month - 1 + month, 12)
        yield "month", datetime.date(YEAR_START.year + year, index + 1, 1), 2.5


def publication(events: int, weekly: int) -> Publication:
    """A year of published aggregates of one large application."""
    rng = random.Random(1)
    manifest = loads_manifest(manifest_text(events))
    installs, counters, values = [], [], []
    fields = {
        "app_version": [f"1.{minor}.0" for minor in range(12)],
        "system.os": ["linux", "macos", "windows"],
        "system.python": ["3.10", "3.11", "3.12", "3.13"],
        "system.arch": ["x86_64", "arm64"],
        "country": [f"{chr(65 + a)}{chr(65 + b)}" for a in range(5) for b in range(8)],
    }
    fields |= {f"plugin.plugin-{number:02d}": ["0.1", "0.2", "1.0"] for number in range(20)}
    for period, start, share in periods():
        active = int(weekly * share)
        for level, part in (("basic", 1.0), ("middle", 0.6), ("full", 0.3)):
            installs.append(InstallRow(APP, period, start, level, int(active * part), int(active * part * 0.02)))
        for event in sorted(manifest.events):
            reporters = int(active * 0.3 * rng.random()) + 10
            counters.append(CounterRow(APP, period, start, "event", "", event, reporters * 7, reporters))
        values.extend(
            ValueRow(APP, period, start, field, value, int(active / len(options)) + 10)
            for field, options in fields.items()
            for value in options
        )
    now = datetime.datetime.combine(YEAR_START + datetime.timedelta(days=365), datetime.time(6), datetime.UTC)
    app = AppInfo(APP, manifest.title, manifest.homepage, manifest.to_document())
    return Publication([app], installs, counters, values, threshold=10, published_at=now)


ROUTES = (
    "/healthz",
    "/api/v1/meta",
    "/api/v1/apps",
    f"/api/v1/apps/{APP}/installs?period=week",
    f"/api/v1/apps/{APP}/installs?period=day",
    f"/api/v1/apps/{APP}/values?period=week&field=country",
    f"/api/v1/apps/{APP}/values?period=month",
    f"/api/v1/apps/{APP}/counters?period=month",
    f"/api/v1/apps/{APP}/counters?period=week",
    f"/api/v1/apps/{APP}/counters?period=day",
    "/data/v1/index.json",
    f"/data/v1/{APP}/manifest.json",
    f"/data/v1/{APP}/installs-week.json",
    f"/data/v1/{APP}/values-week.json",
    f"/data/v1/{APP}/counters-month.json",
    f"/data/v1/{APP}/counters-week.json",
    f"/data/v1/{APP}/counters-week.csv",
    f"/data/v1/{APP}/counters-day.json",
    f"/badges/{APP}.svg",
    "/",
)


def measure(port: int, route: str, requests: int) -> tuple[float, list[float], int]:
    """(cold ms, warm ms each, bytes) of ``requests`` + 1 GETs of ``route`` over one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    times, size = [], 0
    try:
        for _ in range(requests + 1):
            started = time.perf_counter()
            connection.request("GET", route)
            response = connection.getresponse()
            body = response.read()
            times.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"{route}: {response.status} {body[:200]!r}")
            size = len(body)
    finally:
        connection.close()
    return times[0], times[1:], size


PAGES = ("overview", "usage", "plugins", "plugin/plugin-00", "transparency")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def page_loads(port: int, loads: int) -> list[tuple[str, list[float]]] | str:
    """Seconds from navigation to interactive for each page, ``loads`` times; or why it cannot be measured."""
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only for this part
    except ImportError:
        return "Playwright is not installed (pip install --group test, from the root)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    results = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for name in PAGES:
                times = []
                for _ in range(loads):
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    page = context.new_page()
                    started = time.perf_counter()
                    page.goto(f"http://127.0.0.1:{port}/#/{APP}/{name}")
                    page.wait_for_selector("#main[data-ready]", timeout=60_000)
                    times.append(time.perf_counter() - started)
                    if page.locator("#main [role=alert]").count():
                        raise RuntimeError(f"{name}: {page.locator('#main [role=alert]').inner_text()}")
                    context.close()
                results.append((name, times))
        finally:
            browser.close()
    return results


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000, help="distinct events (default 1,000)")
    parser.add_argument("--weekly-installs", type=int, default=100_000, help="weekly installs (default 100,000)")
    parser.add_argument("--requests", type=int, default=100, help="requests per route (default 100)")
    parser.add_argument("--loads", type=int, default=5, help="loads of each dashboard page (default 5)")
    parser.add_argument("--dir", type=Path, help="where the public store goes (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="consentry-public-bench-") as temporary:
        folder = args.dir or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        data = publication(args.events, args.weekly_installs)
        PublicStore(folder / "public.sqlite3").write(data)
        print(
            f"public store: {len(data.installs):,} install rows, {len(data.counters):,} counter rows, "
            f"{len(data.values):,} value rows, {(folder / 'public.sqlite3').stat().st_size / 1e6:.1f} MB, "
            f"written in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        server = Server("public", f"sqlite:///{folder / 'consentry.sqlite3'}", folder)
        try:
            rows = []
            for route in ROUTES:
                cold, warm, size = measure(server.port, route, args.requests)
                rows.append((route, cold, statistics.median(warm), percentile(warm, 0.95), size))
                print(f"measured {route}", file=sys.stderr)
            pages = page_loads(server.port, args.loads)
        finally:
            server.stop()
    floor = rows[0][3]
    print(f"public side, {args.events:,} events, {args.weekly_installs:,} weekly installs, a year of aggregates;")
    print(f"{args.requests} requests per route on one keep-alive connection (the first, cold, apart):")
    print(f"    {'route':<52} {'cold ms':>8} {'p50 ms':>7} {'p95 ms':>7} {'bytes':>11} {'p95/50ms':>9} {'/healthz':>9}")
    for route, cold, p50, p95, size in rows:
        print(
            f"    {route:<52} {cold:8.1f} {p50:7.2f} {p95:7.2f} {size:11,} {p95 / TARGET_MS:9.3f} {p95 / floor:8.1f}x"
        )
    worst = max(rows, key=lambda row: row[3])
    verdict = "meets" if worst[3] <= TARGET_MS else "MISSES"
    print(f"worst p95: {worst[3]:.1f} ms ({worst[0]}) = {worst[3] / TARGET_MS:.2f} of the 50 ms target: {verdict} it")
    if isinstance(pages, str):
        print(f"dashboard pages: skipped: {pages}")
        return
    print(f"dashboard pages in headless Chromium, navigation to interactive, {args.loads} cold loads each:")
    for name, times in pages:
        print(
            f"    {name:<20} median {statistics.median(times) * 1000:6.0f} ms, worst {max(times) * 1000:6.0f} ms "
            f"= {max(times) / PAGE_TARGET_S:.2f} of the 1 s target"
        )


if __name__ == "__main__":
    main()
