"""The dashboard in a real browser (Debian's Chromium through Playwright), against a real ``consentry-server serve``
and against the static site ``publish --site`` writes, served by a plain static file server: the same tests for both.

Screenshots of every page go to ``test-results/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consentry_server.config import Settings
from consentry_server.open_data import file_names
from consentry_server.storage import open_storage
from support.dashboard import CONFIG, RARE_EVENT, RARE_VERSION, THRESHOLD, fill
from support.e2e import run
from support.paths import ROOT
from support.processes import ADMIN_TOKEN, Started, script, start, stop

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
SCREENSHOTS = ROOT / "test-results" / "screenshots"
#: The signing key is published by another part of the server; the page must cope with its absence.
OPTIONAL = ("api/v1/certificates/key",)
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


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium) -> Iterator[Browser]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    seen = Browser(page)

    def console(message) -> None:
        if message.type == "error" and not message.location.get("url", "").endswith(OPTIONAL):
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
    assert page.locator("#events table").last.inner_text().count("layer:add_image") == 1
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
