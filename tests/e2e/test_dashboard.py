"""The dashboard in a real browser (Debian's Chromium through Playwright), against a real ``consentry-server serve``
and against the static site ``publish --site`` writes, served by a plain static file server: the same tests for both.

Screenshots of every page go to ``test-results/screenshots/`` (git-ignored).

What a person sees is checked against the published open data, never against numbers written here: the headline
figures and the badge speak of the same (last complete) week, the week still running is marked partial, a hidden
number is shown as hidden and never as 0, categories keep their natural order, and tables are aligned.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consentry.wire.schema import DATA_SIZES, DURATIONS, UNKNOWN_DURATION
from consentry_server.config import Settings
from consentry_server.public.badges import compact_number
from consentry_server.public.open_data import file_names
from consentry_server.storage import open_storage
from support.dashboard import CONFIG, RARE_EVENT, RARE_VERSION, THRESHOLD, fill
from support.e2e import run
from support.paths import ROOT
from support.processes import ADMIN_TOKEN, Started, script, start, stop

pytest.importorskip("playwright.sync_api")  # the page tests need Playwright

pytestmark = pytest.mark.slow

SCREENSHOTS = ROOT / "test-results" / "screenshots"
PAGES = {
    "home": "#/",
    "overview": "#/napari-like/overview",
    "usage": "#/napari-like/usage",
    "usage-component": "#/napari-like/usage?component=napari",
    "usage-commands": "#/stripepy-like/usage",
    "plugins": "#/napari-like/plugins",
    "plugin": "#/napari-like/plugin/napari-blobs",
    "transparency": "#/napari-like/transparency",
}
#: Whether the view has been drawn since ``before`` (the page sets ``data-ready`` on ``main`` when done).
READY = "(before) => { const ready = document.getElementById('main').dataset.ready; return ready && ready !== before; }"
SECRETS = (RARE_VERSION, RARE_EVENT, RARE_EVENT.rsplit(":", 1)[1], "New Zealand")


@dataclass
class Published:
    """Data published by a real server, and where its database and public store are."""

    url: str
    db: list[str]
    env: dict[str, str]
    started: Started


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    folder = tmp_path_factory.mktemp("dashboard")
    config = folder / "server.toml"
    config.write_text(CONFIG, encoding="utf-8")
    db = ["--db", f"sqlite:///{folder / 'consentry.sqlite3'}", "--public-db", str(folder / "public.sqlite3")]
    env = {**os.environ, "CONSENTRY_ADMIN_TOKEN": ADMIN_TOKEN}
    command = [script("consentry-server"), "serve", "--config", str(config), *db, "--host", "127.0.0.1", "--port", "0"]
    started = start(command, env, r"listening on (http://127\.0\.0\.1:\d+)")
    try:
        url = started.match.group(1)
        assert fill(url, folder / "clients") > 0
        assert run([script("consentry-server"), "aggregate", *db], env).returncode == 0
        yield Published(url, db, env, started)
    finally:
        stop(started)


@pytest.fixture(scope="module")
def site(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Publish (k = THRESHOLD) with ``--site``, and serve the folder with ``python -m http.server``."""
    folder = tmp_path_factory.mktemp("site") / "public"
    shown = run([script("consentry-server"), "certify", *published.db, "--show-key"], published.env)  # makes a key
    assert shown.returncode == 0, shown.stderr
    command = [script("consentry-server"), "publish", *published.db, "--reporter-threshold", str(THRESHOLD)]
    done = run([*command, "--site", str(folder)], published.env)
    assert done.returncode == 0, done.stderr
    server = [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(folder)]
    started = start(server, dict(os.environ), r"port (\d+)")
    try:
        yield f"http://127.0.0.1:{started.match.group(1)}", folder
    finally:
        stop(started)


@pytest.fixture(params=["served", "static"])
def base(request: pytest.FixtureRequest, published: Published, site: tuple[str, Path]) -> str:
    return published.url if request.param == "served" else site[0]


@dataclass
class Browser:
    """A page in Chromium that records console errors and every request."""

    page: object
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def browser(chromium) -> Iterator[Browser]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    seen = Browser(page)

    def console(message) -> None:
        if message.type == "error":
            seen.errors.append(f"{message.text} at {message.location}")

    page.on("console", console)
    page.on("pageerror", lambda error: seen.errors.append(f"page error: {error}"))
    page.on("request", lambda request: seen.requests.append(request.url))
    yield seen
    context.close()


def show(browser: Browser, url: str) -> None:
    """Go to ``url`` and wait until the view (and its charts) is drawn."""
    page = browser.page
    before = (
        page.evaluate("document.getElementById('main')?.dataset.ready ?? null") if page.url != "about:blank" else None
    )
    page.goto(url)
    page.wait_for_function(READY, arg=before)


def chart(browser: Browser, figure: str) -> dict[str, list]:
    return json.loads(browser.page.get_attribute(f"#{figure}", "data-chart"))


def wait_for_change(browser: Browser, action) -> None:
    ready = browser.page.evaluate("document.getElementById('main').dataset.ready")
    action()
    browser.page.wait_for_function(READY, arg=ready)


def test_every_page_loads_with_no_error_and_no_request_elsewhere(base: str, browser: Browser, request) -> None:
    kind = request.node.callspec.params["base"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, fragment in PAGES.items():
        show(browser, f"{base}/{fragment}")
        assert browser.page.get_attribute("#view", "data-page") == name.split("-")[0], name
        browser.page.screenshot(path=str(SCREENSHOTS / f"{kind}-{name}.png"), full_page=True)
    browser.page.set_viewport_size({"width": 390, "height": 800})
    show(browser, f"{base}/#/napari-like/usage?component=napari&range=all")
    browser.page.screenshot(path=str(SCREENSHOTS / f"{kind}-phone-usage.png"), full_page=True)
    width = browser.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, "the page scrolls sideways at phone width"
    assert browser.errors == []
    assert [url for url in browser.requests if not url.startswith(base + "/")] == []


def test_filters_change_what_the_charts_show_and_live_in_the_url(base: str, browser: Browser) -> None:
    show(browser, f"{base}/#/napari-like/overview?range=all")
    page = browser.page
    everything = chart(browser, "chart-installs")
    assert len(everything["labels"]) >= 3
    assert all(not dataset["label"].startswith("Installs with") for dataset in everything["datasets"])

    wait_for_change(browser, lambda: page.select_option("#filter-os", "linux"))
    assert "os=linux" in page.url
    values = json.loads(urllib.request.urlopen(f"{base}/data/v1/napari-like/values-week.json", timeout=10).read())  # noqa: S310
    expected = {row[0]: row[3] for row in values["rows"] if row[1] == "system.os" and row[2] == "linux"}
    filtered = chart(browser, "chart-installs")
    [linux] = [dataset for dataset in filtered["datasets"] if dataset["label"] == "Installs with system.os = linux"]
    assert dict(zip(filtered["labels"], linux["data"], strict=True)) == expected
    assert page.locator("#breakdown-note").inner_text().startswith("Version, operating-system and country filters")
    # A week whose new installs are hidden or unknown (null in the open data) has no bar, and the note says why.
    installs = json.loads(urllib.request.urlopen(f"{base}/data/v1/napari-like/installs-week.json", timeout=10).read())  # noqa: S310
    known = {row[0] for row in installs["rows"] if row[3] is not None}
    assert page.locator("#new-installs-note").count() == int(any(row[0] not in known for row in installs["rows"]))

    wait_for_change(browser, lambda: page.select_option("#filter-range", "1"))
    assert chart(browser, "chart-installs")["labels"] == everything["labels"][-1:]
    # The shared link restores the same view.
    show(browser, page.url.replace("#", "?reload#"))
    assert page.input_value("#filter-os") == "linux"
    assert chart(browser, "chart-installs")["labels"] == everything["labels"][-1:]


def test_clicking_a_component_shows_its_events(base: str, browser: Browser) -> None:
    show(browser, f"{base}/#/napari-like/usage?range=all")
    page = browser.page
    assert page.locator("#events").count() == 0
    wait_for_change(browser, lambda: page.get_by_role("link", name="napari", exact=True).click())
    assert "component=napari" in page.url
    events = chart(browser, "chart-events")
    assert "layer:add_image" in events["labels"]
    assert page.locator("#events > .scroll table").inner_text().count("layer:add_image") == 1
    # Keyboard: the components are links, reachable and followed with the keyboard.
    plugin_link = page.get_by_role("link", name="plugin napari-blobs")
    plugin_link.focus()
    wait_for_change(browser, lambda: page.keyboard.press("Enter"))
    assert "component=plugin+napari-blobs" in page.url
    assert page.locator("#events-heading").inner_text() == "Events of plugin napari-blobs"


def test_commands_show_success_rate_and_durations(base: str, browser: Browser) -> None:
    show(browser, f"{base}/#/stripepy-like/usage?range=all")
    text = browser.page.locator("#view").inner_text()
    assert "Success rate" in text
    assert chart(browser, "chart-durations")["datasets"]


def data_files(base: str) -> dict[str, bytes]:
    def get(path: str) -> bytes:
        with urllib.request.urlopen(f"{base}/{path}", timeout=10) as response:  # noqa: S310 - our own servers
            return response.read()

    index = json.loads(get("data/v1/index.json"))
    files = {"data/v1/index.json": json.dumps(index).encode()}
    for app in index["apps"]:
        for name in file_names():
            files[f"data/v1/{app['name']}/{name}"] = get(f"data/v1/{app['name']}/{name}")
        files[f"transparency/{app['name']}.json"] = get(f"transparency/{app['name']}.json")
    return files


def test_a_suppressed_bucket_appears_nowhere(base: str, browser: Browser, published: Published) -> None:
    # The rare install's version and event were aggregated, by fewer than k installs...
    storage = open_storage(Settings(database=published.db[1]))
    try:
        tables = storage.aggregates()
    finally:
        storage.close()
    assert 0 < max(row.reporters for row in tables.values if row.value == RARE_VERSION) < THRESHOLD
    assert 0 < max(row.reporters for row in tables.counters if row.name == RARE_EVENT) < THRESHOLD
    # ... and are nowhere to be seen.
    files = data_files(base)
    assert any(b"napari:layer:add_image" in content for content in files.values())  # the data is there...
    for path, content in files.items():
        for secret in (*SECRETS, "NZ"):
            if path.endswith("manifest.json") or path.startswith("transparency/"):
                continue  # the manifest declares every event, counted or not
            assert secret.encode() not in content, f"{secret} in {path}"
    for name, fragment in PAGES.items():
        show(browser, f"{base}/{fragment}&range=all" if "?" in fragment else f"{base}/{fragment}?range=all")
        dom = browser.page.content()
        text = browser.page.locator("body").inner_text()
        for secret in SECRETS:
            if name == "transparency" and secret.startswith(("napari:", "toggle")):
                continue  # the transparency page lists what the manifest allows, not what was counted
            assert secret not in dom, f"{secret} in the DOM of {name}"
            assert secret not in text, f"{secret} in the text of {name}"
    version_options = browser.page.locator("#filter-version option").all_inner_texts() if browser.page.locator(
        "#filter-version").count() else []  # fmt: skip
    assert RARE_VERSION not in version_options


def test_transparency_page_shows_levels_hosts_examples_and_opt_out(base: str, browser: Browser) -> None:
    show(browser, f"{base}/#/napari-like/transparency")
    text = browser.page.locator("#view").inner_text()
    for expected in ("Level basic", "Sent to host", "127.0.0.1", f"at least {THRESHOLD} distinct installations",
                     "NAPARI_LIKE_NO_TELEMETRY=1", "DO_NOT_TRACK=1", "consentry disable napari-like",
                     "Raw reports are deleted after 60 days"):  # fmt: skip
        assert expected in text, expected
    browser.page.locator("#level-basic summary").click()
    example = json.loads(browser.page.locator("#level-basic pre").inner_text())
    assert example["level"] == "basic"
    assert example["app"] == "napari-like"
    # The key that signs usage certificates, served by the server and written into the static site alike.
    key = json.loads(urllib.request.urlopen(f"{base}/api/v1/certificates/key", timeout=10).read())  # noqa: S310
    assert browser.page.locator("#signing-key").inner_text() == key["key"]
    assert key["key_id"] in text


def test_transparency_page_shows_the_privacy_ledger(base: str, browser: Browser) -> None:
    show(browser, f"{base}/#/napari-like/transparency")
    ledger = json.loads(urllib.request.urlopen(f"{base}/data/v1/napari-like/ledger.json", timeout=10).read())  # noqa: S310
    section = browser.page.locator("#privacy-ledger")
    cells = [row.locator("th, td").all_inner_texts() for row in section.locator("tbody tr").all()]
    # Published without noise, at k = THRESHOLD, once: a release of each table, exact, with no epsilon.
    assert [row[2] for row in cells] == [row[ledger["columns"].index("dataset")] for row in ledger["rows"]]
    assert {row[2] for row in cells} == {"installs", "counters", "values"}
    assert {(row[0], row[3], row[4], row[7], row[11]) for row in cells} == {
        ("1", str(THRESHOLD), "none (exact numbers)", "—", "—")
    }
    assert ledger["cumulative_epsilon"] is None
    assert "no finite bound" in browser.page.locator("#cumulative-epsilon").inner_text()


def test_the_plugin_page_offers_its_badge(base: str, browser: Browser) -> None:
    show(browser, f"{base}/#/napari-like/plugin/napari-blobs?range=all")
    page = browser.page
    assert page.locator("img[src='badges/napari-like/napari-blobs.svg']").evaluate("img => img.naturalWidth") > 0
    snippet = page.input_value("#badge-markdown")
    assert snippet == f"![napari-blobs users]({base}/badges/napari-like/napari-blobs.svg)"
    assert chart(browser, "chart-plugin-installs")["datasets"][0]["data"]


def test_the_static_site_holds_the_pages_and_the_vendored_assets(site: tuple[str, Path]) -> None:
    _, folder = site
    assert (folder / "index.html").read_text("utf-8").count('src="static/') == 3
    for name in ("chart.umd.min.js", "chartjs-chart-geo.umd.min.js", "countries-110m.json", "chart.js.LICENSE.md"):
        assert (folder / "static" / "vendor" / name).is_file()
    assert not list(folder.rglob("node_modules"))


# ---- what a person reads: headline figures, partial weeks, hidden numbers, orders, tables ----------------------------
def open_data(base: str, path: str) -> dict:
    with urllib.request.urlopen(f"{base}/{path}", timeout=10) as response:  # noqa: S310 - our own servers
        return json.loads(response.read())


def rows_of(base: str, app: str, name: str) -> list[dict]:
    document = open_data(base, f"data/v1/{app}/{name}-week.json")
    return [dict(zip(document["columns"], row, strict=True)) for row in document["rows"]]


def weeks_of(base: str, app: str) -> tuple[list[str], list[str]]:
    """The complete and the partial weeks of ``app``'s installs: a week is complete once it ended before publication."""
    published = datetime.date.fromisoformat(open_data(base, "data/v1/index.json")["published_at"][:10])
    weeks = sorted({row["start"] for row in rows_of(base, app, "installs")})
    complete = [week for week in weeks if datetime.date.fromisoformat(week) + datetime.timedelta(days=7) <= published]
    return complete, [week for week in weeks if week not in complete]


def test_the_headline_shows_the_last_complete_week_as_the_badge_does(base: str, browser: Browser, request) -> None:
    kind = request.node.callspec.params["base"]
    show(browser, f"{base}/#/napari-like/overview")
    page = browser.page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{kind}-overview-headline.png"), full_page=True)
    installs, values = rows_of(base, "napari-like", "installs"), rows_of(base, "napari-like", "values")
    complete, partial = weeks_of(base, "napari-like")
    week = complete[-1]
    active = max(row["reporters"] for row in installs if row["start"] == week)
    before = str(datetime.date.fromisoformat(week) - datetime.timedelta(days=7))
    then = [row["reporters"] for row in installs if row["start"] == before]
    assert page.locator("#headline-installs").inner_text().splitlines() == [f"{active:,}", f"week of {week}"]
    change = page.locator("#headline-change").inner_text()
    if then:
        sign = "+" if active >= max(then) else "\N{MINUS SIGN}"
        assert change.startswith(f"{sign}{abs(active - max(then)):,}"), change
        assert f"{max(then):,} in the week of {before}" in change
    else:
        assert change.startswith("hidden")
    fresh = [row["new_installs"] for row in installs if row["start"] == week and row["new_installs"] is not None]
    new = page.locator("#headline-new").inner_text()
    assert new.startswith(f"{max(fresh):,}" if fresh else "hidden"), new
    used = [row for row in values if row["start"] == week and row["field"] == "app_version"]
    versions = sorted((-row["reporters"], row["value"]) for row in used)[:3]
    shown = page.locator("#headline-versions li").all_text_contents()
    assert shown == [f"{version}: {-n:,}" for n, version in versions]
    note = page.locator("#headline-note").inner_text()
    assert f"the week of {week}, the last complete week" in note
    assert all(week in note for week in partial)
    # The badge shows the same number, of the same week.
    with urllib.request.urlopen(f"{base}/badges/napari-like.svg", timeout=10) as response:  # noqa: S310
        svg = ET.fromstring(response.read())  # noqa: S314 - our own output
    text = " ".join(element.text or "" for element in svg.iter("{http://www.w3.org/2000/svg}text"))
    assert text == f"users {compact_number(active)} weekly"
    # The snapshot of versions and systems is of that week too.
    assert page.locator("h2", has_text="Installations in the week of").inner_text().endswith(week)
    assert browser.errors == []


def test_the_week_still_running_is_marked_partial(base: str, browser: Browser) -> None:
    show(browser, f"{base}/#/napari-like/overview?range=all")
    _, partial = weeks_of(base, "napari-like")
    for figure in ("chart-installs", "chart-new"):
        assert chart(browser, figure)["partial"] == partial
        heads = browser.page.locator(f"#{figure} tbody th").all_text_contents()
        marked = [head.removesuffix(" (partial week)") for head in heads if head.endswith(" (partial week)")]
        assert marked == partial
    show(browser, f"{base}/#/napari-like/plugin/napari-blobs?range=all")
    assert chart(browser, "chart-plugin-installs")["partial"] == partial
    assert browser.errors == []


def test_a_hidden_number_is_shown_as_hidden_never_as_0(base: str, browser: Browser) -> None:
    show(browser, f"{base}/#/napari-like/overview?range=all")
    page = browser.page
    installs = rows_of(base, "napari-like", "installs")
    new = chart(browser, "chart-new")
    known = {row["start"]: row["new_installs"] for row in installs if row["new_installs"] is not None}
    hidden = [week for week in new["labels"] if week not in known]
    assert hidden, "the published data has a week whose new installs are hidden (support.dashboard.LATE)"
    assert dict(zip(new["labels"], new["datasets"][0]["data"], strict=True)) == {w: known.get(w) for w in new["labels"]}
    cells = dict(zip(page.locator("#chart-new tbody th").all_text_contents(),
                     page.locator("#chart-new tbody td").all_text_contents(), strict=True))  # fmt: skip
    for week in hidden:
        assert cells[week] == "hidden or unknown"
    assert page.locator("#new-installs-note").count() == 1
    # On the map, a country with no published number (the rare install's) is missing, not a country of 0 installs.
    values = page.evaluate(
        "Chart.getChart(document.querySelector('#chart-countries canvas')).data.datasets[0].data.map(d => d.value)"
    )
    published = [row["reporters"] for row in rows_of(base, "napari-like", "values") if row["field"] == "country"]
    assert 0 not in published
    assert 0 not in values
    shown = chart(browser, "chart-countries")["datasets"][0]["data"]
    assert sorted(value for value in values if value is not None) == sorted(shown)
    # Anywhere: a cell of a number that is not published says so.
    for name, fragment in PAGES.items():
        show(browser, f"{base}/{fragment}")
        for cell in page.locator("td[data-hidden]").all_text_contents():
            assert cell.startswith("hidden") or cell == "—", (name, cell)
    assert browser.errors == []


def test_sizes_and_durations_keep_their_natural_order(base: str, browser: Browser) -> None:
    def published(app: str, kind: str) -> set[str]:
        return {json.loads(row["name"])[-1] for row in rows_of(base, app, "counters") if row["kind"] == kind}

    show(browser, f"{base}/#/napari-like/usage?range=all")
    sizes = [dataset["label"] for dataset in chart(browser, "chart-data")["datasets"]]
    assert sizes == [size for size in DATA_SIZES if size in published("napari-like", "data_size")]
    assert len(sizes) > 1
    assert browser.page.locator("#chart-data thead th").all_text_contents()[1:] == sizes
    show(browser, f"{base}/#/stripepy-like/usage?range=all")
    buckets = [dataset["label"] for dataset in chart(browser, "chart-durations")["datasets"]]
    assert buckets == [b for b in (*DURATIONS, UNKNOWN_DURATION) if b in published("stripepy-like", "command_duration")]
    assert buckets != sorted(buckets)  # alphabetically, "1-10min" would come first
    assert browser.errors == []


#: A cell that holds a number, as the page formats it: 1,234, 12.5, 94.4%.
NUMBER = re.compile(r"\d{1,3}(,\d{3})*(\.\d+)?%?")
ALIGNMENT = """table => [...table.rows].map(row => [...row.cells].map(cell =>
  [cell.tagName, getComputedStyle(cell).textAlign, cell.textContent]))"""


def test_tables_are_aligned_and_none_is_empty(base: str, browser: Browser) -> None:
    for name, fragment in PAGES.items():
        show(browser, f"{base}/{fragment}")
        for table in browser.page.locator("#view table").all():
            rows = table.evaluate(ALIGNMENT)
            header, body = rows[0], rows[1:]
            assert body, f"an empty table on {name}: {header}"
            for i in range(1, len(header)):
                column = [row[i] for row in body]
                aligns = {header[i][1], *(cell[1] for cell in column)}
                assert len(aligns) == 1, (name, header[i][2], aligns)
                texts = [cell[2] for cell in column]
                if header[i][2] != "Version" and all(NUMBER.fullmatch(text) for text in texts):
                    assert aligns == {"right"}, (name, header[i][2])
    assert browser.errors == []


def test_the_usage_page_draws_a_time_line_per_event(base: str, browser: Browser) -> None:
    show(browser, f"{base}/#/napari-like/usage?component=napari&range=all")
    timeline = chart(browser, "chart-event-share")
    counters = [row for row in rows_of(base, "napari-like", "counters") if row["kind"] == "event"]
    installs = rows_of(base, "napari-like", "installs")
    levels = {event["name"]: event["level"] for event in open_data(base, "data/v1/napari-like/manifest.json")["events"]}
    assert {dataset["label"] for dataset in timeline["datasets"]} == {row["name"].split(":", 1)[1] for row in counters}
    for dataset in timeline["datasets"]:
        name = f"napari:{dataset['label']}"
        for week, share in zip(timeline["labels"], dataset["data"], strict=True):
            used = [row["reporters"] for row in counters if row["name"] == name and row["start"] == week]
            base_ = [row["reporters"] for row in installs if row["start"] == week and row["level"] == levels[name]]
            assert share == (round(100 * used[0] / base_[0], 1) if used and base_ else None), (name, week)
    _, partial = weeks_of(base, "napari-like")
    assert timeline["partial"] == [week for week in partial if week in timeline["labels"]]
    assert browser.errors == []


def test_the_transparency_page_asks_for_nothing_that_is_not_there(base: str, browser: Browser) -> None:
    show(browser, f"{base}/#/napari-like/transparency")
    assert not [url for url in browser.requests if "certificates/key" in url]
    document = open_data(base, "transparency/napari-like.json")
    assert browser.page.locator("#signing-key").inner_text() == document["certificate_key"]["key"]
    assert browser.errors == []
