"""``consentry-server report`` as a maintainer runs it, read in a real browser (Debian's Chromium, Playwright).

A real ``consentry-server serve`` receives a quarter of napari-like reports over HTTP; ``aggregate`` and
``publish`` (k = 5) run as commands; ``report`` writes the HTML page, which Chromium opens from the file with
every request recorded. Checked: it loads nothing and logs no error; every figure it shows is the published one;
no number that publishing hid appears; the certificate it embeds verifies offline by its own steps; bad
arguments get one line and a non-zero exit. A screenshot goes to ``test-results/screenshots/funder-report.png``
(git-ignored).
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from consentry.manifest import load_any_manifest
from consentry.wire import Plugin, Report, encode
from consentry_server.storage import PublicStore
from support.chromium import CHROMIUM
from support.e2e import NO_RATE_LIMITS
from support.paths import EXAMPLES, NAPARI, ROOT
from support.processes import script, stop
from support.processes import start as start_process

pytest.importorskip("playwright.sync_api")  # the page tests need Playwright

pytestmark = pytest.mark.slow

#: Where the screenshot goes, beside the dashboard's (git-ignored).
SCREENSHOTS = ROOT / "test-results" / "screenshots"
K = 5
APP = "napari-like"
PLUGIN = "napari-blobs"
#: Installs active in each week of the quarter, by the week's index in it (a 14th week has none).
INSTALLS = {0: 8, 1: 9, 2: 3, 3: 10, 4: 7} | dict.fromkeys(range(5, 12), 6) | {12: 12}
HIDDEN_WEEK = 2  # 3 installs: not published
NEW = {0: 8, 1: 2}  # installs whose first report fell in the week: 2 is hidden
LAST = 12  # the last week with data: 7 installs of 1.1.0, 3 of 1.0.0 and 2 of RARE_VERSION
RARE_VERSION = "0.9.0-rare"
RARE_EVENT = "napari:window:view:toggle_fullscreen"  # counted by 2 installs a week: never published
PLUGIN_INSTALLS = 6  # the first six installs of every week report napari-blobs
CONFIG = f"reporter_threshold = {K}\nraw_retention_days = 400\n{NO_RATE_LIMITS}"


def previous_quarter(today: datetime.date) -> tuple[str, datetime.date]:
    """The label and first day of the last quarter that has ended."""
    quarter = (today.month - 1) // 3  # the current one, counting from 0
    year, quarter = (today.year - 1, 4) if quarter == 0 else (today.year, quarter)
    return f"{year}-Q{quarter}", datetime.date(year, 3 * quarter - 2, 1)


TODAY = datetime.datetime.now(datetime.timezone.utc).date()
PERIOD, PERIOD_START = previous_quarter(TODAY)


def first_monday(start: datetime.date) -> datetime.date:
    """Monday of the quarter's first ISO week (the first whose Thursday is in it)."""
    monday = start - datetime.timedelta(days=start.weekday())
    return monday if monday + datetime.timedelta(days=3) >= start else monday + datetime.timedelta(days=7)


def version(week: int, index: int) -> str:
    if week != LAST:
        return "1.0.0"
    return "1.1.0" if index < 7 else ("1.0.0" if index < 10 else RARE_VERSION)


def reports(consent_version: str) -> list[Report]:
    """Basic, middle and full reports of every active install, on the Thursday of each week."""
    made = []
    monday = first_monday(PERIOD_START)
    for week, installs in INSTALLS.items():
        day = monday + datetime.timedelta(weeks=week, days=3)
        for index in range(installs):
            base = Report(
                app=APP,
                app_version=version(week, index),
                level="basic",
                consent_version=consent_version,
                reporter=f"{week * 1000 + index:032x}",
                first_report=index < NEW.get(week, 0),
                days=(day,),
                system={"os": ("linux", "windows")[index % 2]},
            )
            plugins = (Plugin(PLUGIN, "0.3.0"),) if index < PLUGIN_INSTALLS else ()
            counts = {"napari:window:file:open_files_dialog": 2, "napari:layer:add_image": 1 + index % 3}
            if index < 2:
                counts[RARE_EVENT] = 977
            made += [
                base,
                replace(base, level="middle", system={}, plugins=plugins),
                replace(
                    base,
                    level="full",
                    system={},
                    plugins=tuple(replace(plugin, counts={day: {"detect": 3}}) for plugin in plugins),
                    counts={day: counts},
                ),
            ]
    return made


@dataclass
class Published:
    folder: Path
    options: list[str]
    env: dict[str, str]
    store: PublicStore


def server(*arguments: str, published: Published, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [script("consentry-server"), *arguments]
    return subprocess.run(command, env=published.env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _post(url: str, report: Report) -> int:
    request = urllib.request.Request(  # noqa: S310 - our own server
        f"{url}/v1/reports/{report.level}", data=encode(report), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        pytest.fail(f"{report.level} {report.days}: {error.code} {error.read()!r}")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    folder = tmp_path_factory.mktemp("funder-report")
    config = folder / "server.toml"
    config.write_text(CONFIG, encoding="utf-8")
    options = ["--config", str(config), "--db", f"sqlite:///{folder / 'consentry.sqlite3'}"]
    options += ["--public-db", str(folder / "public.sqlite3")]
    env = {**os.environ}
    done = Published(folder, options, env, PublicStore(folder / "public.sqlite3"))
    plugins = sorted((EXAMPLES / "napari_like" / "plugins").glob("*.toml"))
    added = server("apps", "add", *options, str(NAPARI), *map(str, plugins), published=done)
    assert added.returncode == 0, added.stderr
    started = start_process(
        [script("consentry-server"), "serve", *options, "--port", "0"], env, r"listening on (http://\S+)"
    )
    try:
        url = started.match.group(1)
        made = reports(load_any_manifest(NAPARI).consent_version)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            assert set(pool.map(lambda report: _post(url, report), made)) <= {200, 201, 202, 204}
    finally:
        stop(started)
    for command in ("aggregate", "publish"):
        ran = server(command, *options, published=done)
        assert ran.returncode == 0, ran.stderr
    return done


@pytest.fixture(scope="module")
def report_file(published: Published) -> Path:
    output = published.folder / "report.html"
    ran = server("report", *published.options, "--app", APP, "--period", PERIOD, "--output", str(output),
                 published=published)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == f"wrote the report of {APP} for {PERIOD} to {output}"
    return output


@dataclass
class Page:
    page: object
    requests: list[str]
    errors: list[str]

    def figures(self) -> dict[str, str]:
        pairs = self.page.eval_on_selector_all(  # type: ignore[attr-defined]
            "[data-figure]", "nodes => nodes.map(n => [n.dataset.figure, n.textContent.trim()])"
        )
        assert len(pairs) == len(dict(pairs)), "a figure is shown twice under one name"
        return dict(pairs)


def open_page(chromium: object, path: Path) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1100, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    seen = Page(page, [], [])
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on(
        "console", lambda message: seen.errors.append(message.text) if message.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    yield seen
    context.close()


@pytest.fixture(scope="module")
def shown(chromium: object, report_file: Path) -> Iterator[Page]:
    yield from open_page(chromium, report_file)


# ---- what was published, read independently of the report ----------------------------------------------------------
def week_label(start: str) -> str:
    return "{}-W{:02d}".format(*datetime.date.fromisoformat(start).isocalendar()[:2])


def period_weeks() -> list[str]:
    monday = first_monday(PERIOD_START)
    end = datetime.date(PERIOD_START.year + (PERIOD_START.month == 10), PERIOD_START.month % 12 + 3, 1) \
        if PERIOD_START.month != 10 else datetime.date(PERIOD_START.year + 1, 1, 1)  # fmt: skip
    weeks = []
    while monday + datetime.timedelta(days=3) < end:
        weeks.append(monday.isoformat())
        monday += datetime.timedelta(weeks=1)
    return weeks


def expected(store: PublicStore) -> dict[str, str]:
    """Every figure the report must show, from the public store, as the report formats it."""

    def number(value: int | None, missing: str = "hidden") -> str:
        return missing if value is None else f"{value:,}"

    weeks = period_weeks()
    active: dict[str, int] = defaultdict(int)
    new: dict[str, list[int | None]] = defaultdict(list)
    for row in store.installs(APP, "week"):
        active[row["start"]] = max(active[row["start"]], row["reporters"])
        new[row["start"]].append(row["new_installs"])
    figures = {}
    for start in weeks:
        figures[f"weekly:{week_label(start)}"] = number(active.get(start))
        values = new.get(start, [])
        figures[f"new:{week_label(start)}"] = number(None if not values or None in values else max(values))
    published = [active[start] for start in weeks if start in active]
    figures |= {"mean": number(round(sum(published) / len(published))), "peak": number(max(published))}
    figures |= {"weeks_published": str(len(published)), "k": str(K)}
    monthly: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in store.installs(APP, "month"):
        monthly[row["start"][:7]].append(row)
    months = [f"{PERIOD_START.year}-{PERIOD_START.month + i:02d}" for i in range(3)]
    for month in months:
        figures[f"monthly:{month}"] = number(max((row["reporters"] for row in monthly[month]), default=None))
    fresh = [[row["new_installs"] for row in monthly[month]] for month in months]
    hidden = any(not values or None in values for values in fresh)
    figures["new_installs"] = "hidden" if hidden else number(sum(max(values) for values in fresh))
    for name, key in (("app_version", "version"), ("system.os", "os")):
        rows = [row for row in store.values(APP, "week", name) if row["start"] in weeks]
        last = max(row["start"] for row in rows)
        figures |= {f"{key}:{row['value']}": number(row["reporters"]) for row in rows if row["start"] == last}
    events: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in store.counters(APP, "week", "event"):
        if row["start"] in weeks:
            events[row["name"]].append(row)
    for name, rows in events.items():
        figures[f"feature-peak:{name}"] = number(max(row["reporters"] for row in rows))
        figures[f"feature-total:{name}"] = number(sum(row["total"] for row in rows))
        figures[f"feature-weeks:{name}"] = str(len(rows))
    return figures


# ---- the tests ------------------------------------------------------------------------------------------------------
def test_the_report_loads_nothing_logs_no_error_and_is_screenshotted(shown: Page, report_file: Path):
    assert shown.requests == [report_file.as_uri()]
    assert shown.errors == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / "funder-report.png"
    shown.page.screenshot(path=str(screenshot), full_page=True)  # type: ignore[attr-defined]
    assert screenshot.stat().st_size > 10_000
    sys.stdout.write(f"\nscreenshot: {screenshot}\n")
    html = report_file.read_text("utf-8")
    assert "<script" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html.replace(load_any_manifest(NAPARI).homepage or "-", "")


def test_every_figure_shown_is_the_published_one(shown: Page, published: Published):
    assert shown.figures() == expected(published.store)
    bars = shown.page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#chart-weekly rect[data-label]", "nodes => nodes.map(n => [n.dataset.label, n.dataset.value])"
    )
    figures = shown.figures()
    assert bars == [[label, figures[f"weekly:{label}"].replace(",", "")] for label, _ in bars]
    assert len(bars) == len(period_weeks())


def test_no_hidden_number_appears(shown: Page):
    figures = shown.figures()
    weeks = [week_label(start) for start in period_weeks()]
    assert figures[f"weekly:{weeks[HIDDEN_WEEK]}"] == "hidden"  # 3 installs
    assert figures[f"new:{weeks[1]}"] == "hidden"  # 2 new installs
    row = shown.page.inner_text(f"#weekly-table tbody tr:nth-child({HIDDEN_WEEK + 1})")  # type: ignore[attr-defined]
    assert row.split("\t")[2:] == ["hidden", "hidden"]  # no installs row at all
    bar = shown.page.get_attribute(f'#chart-weekly rect[data-label="{weeks[HIDDEN_WEEK]}"]', "data-value")  # type: ignore[attr-defined]
    assert bar == "hidden"
    text = shown.page.inner_text("body")  # type: ignore[attr-defined]
    assert RARE_VERSION not in text
    versions = shown.page.inner_text("#versions-table")  # type: ignore[attr-defined]
    assert "1.0.0" not in versions  # 3 installs in the last week: hidden with the rare version
    assert RARE_EVENT not in shown.page.inner_text("#features")  # type: ignore[attr-defined]
    assert "977" not in text
    assert not any(key.startswith("version:1.0.0") for key in figures)


def test_the_methods_come_from_the_manifest_and_the_settings(shown: Page):
    methods = shown.page.inner_text("#methods")  # type: ignore[attr-defined]
    manifest = load_any_manifest(NAPARI)
    for level in manifest.levels:
        assert level.name in methods
    assert "k = 5" in methods
    assert "after 400 days" in methods
    assert "after 14 days" in methods
    assert "Noise: none" in methods
    assert "unknown" in methods
    assert "OpenTelemetry" in methods
    assert "at most 1 time" in methods


def test_the_embedded_certificate_verifies_offline_by_its_own_steps(shown: Page, published: Published, tmp_path: Path):
    steps = shown.page.inner_text("#verify-steps")  # type: ignore[attr-defined]
    name = re.search(r"as (\S+\.json)", steps).group(1)
    (tmp_path / name).write_text(shown.page.inner_text("#certificate-json"), encoding="utf-8")  # type: ignore[attr-defined]
    key = json.loads(server("certify", *published.options, "--show-key", published=published).stdout)
    assert shown.page.inner_text("#certificate-key-id") == key["key_id"]  # type: ignore[attr-defined]
    command = shlex.split(shown.page.inner_text("#verify-command"))  # type: ignore[attr-defined]
    assert command[0] == "consentry"
    assert command[-1] == key["key"]
    ran = subprocess.run([script("consentry"), *command[1:]], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "valid" in ran.stdout.lower()
    snippet = shown.page.inner_text("#verify-python")  # type: ignore[attr-defined]
    checked = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert (checked.returncode, checked.stdout) == (0, "valid\n"), checked.stderr
    certificate = json.loads((tmp_path / name).read_text("utf-8"))
    figures = shown.figures()
    weekly = certificate["certificate"]["figures"]["weekly_active_installs"]
    assert f"{weekly['mean']:,}" == figures["mean"]
    assert f"{weekly['peak']:,}" == figures["peak"]
    certificate["certificate"]["figures"]["weekly_active_installs"]["peak"] += 1
    (tmp_path / name).write_text(json.dumps(certificate), encoding="utf-8")
    ran = subprocess.run([script("consentry"), *command[1:]], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert ran.returncode == 8  # not authentic


def test_a_plugin_report_shows_the_plugins_figures(chromium: object, published: Published):
    output = published.folder / "plugin.html"
    ran = server("report", *published.options, "--app", APP, "--plugin", PLUGIN, "--period", PERIOD, "--output",
                 str(output), published=published)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    for page in open_page(chromium, output):
        assert page.requests == [output.as_uri()]
        assert page.errors == []
        figures = page.figures()
        weeks = period_weeks()
        sums: dict[str, int] = defaultdict(int)
        for row in published.store.values(APP, "week", f"plugin.{PLUGIN}"):
            sums[row["start"]] += row["reporters"]
        for start in weeks:
            assert figures[f"weekly:{week_label(start)}"] == (f"{sums[start]:,}" if start in sums else "hidden")
        assert figures["feature-peak:detect"] == str(PLUGIN_INSTALLS)
        assert "new_installs" not in figures


def test_the_report_prints_to_pdf_with_chromium(published: Published, tmp_path: Path):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    pdf = tmp_path / "report.pdf"
    ran = server("report", *published.options, "--app", APP, "--period", PERIOD, "--output",
                 str(tmp_path / "r.html"), "--pdf", str(pdf), published=published)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert pdf.read_bytes().startswith(b"%PDF-")
    published.env["CONSENTRY_CHROMIUM"] = str(tmp_path / "no-chromium")
    try:
        ran = server("report", *published.options, "--app", APP, "--period", PERIOD, "--output",
                     str(tmp_path / "r.html"), "--pdf", str(tmp_path / "x.pdf"), published=published)  # fmt: skip
    finally:
        del published.env["CONSENTRY_CHROMIUM"]
    assert ran.returncode == 1
    assert ran.stderr.count("\n") == 1
    assert "needs Chromium" in ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--app", APP, "--period", "2026-Q5"], 1, "is not a quarter that exists"),
        (["--app", APP, "--period", "last year"], 1, "is not a period"),
        (["--app", "no-such-app", "--period", PERIOD], 1, "no published data for application 'no-such-app'"),
        (["--app", APP, "--plugin", "napari-nothing", "--period", PERIOD], 1, "no published data for plugin"),
        (["--app", APP, "--plugin", "napari-tracks", "--period", PERIOD], 1, "no published data for plugin"),
        (["--app", APP, "--period", str(TODAY.year + 1)], 1, "is in the future"),
        (["--app", APP, "--period", f"{TODAY.year}-{TODAY.month:02d}"], 1, "has not ended yet"),
        (["--app", APP], 2, "report needs --app and --period"),
    ],
)
def test_bad_arguments_get_one_line_and_no_file(published: Published, tmp_path: Path, arguments, code, message):
    ran = server("report", *published.options, *arguments, published=published, cwd=tmp_path)
    assert ran.returncode == code
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert message in ran.stderr
    assert "Traceback" not in ran.stderr
    assert list(tmp_path.iterdir()) == []


def test_nothing_published_is_one_line(tmp_path: Path):
    env = {**os.environ}
    db = ["--db", f"sqlite:///{tmp_path / 'db.sqlite3'}", "--public-db", str(tmp_path / "public.sqlite3")]
    command = [script("consentry-server"), "report", *db, "--app", APP, "--period", PERIOD]
    ran = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 1
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert "nothing has been published" in ran.stderr
    assert not list(tmp_path.glob("*.html"))
