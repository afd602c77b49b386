"""The three runnable example applications, end to end: each is used as its users would use it, and what it
recorded reaches a real ``consentry-server serve`` over HTTP, is stored, aggregated and published.

- the stripepy-like command-line tool (``consentry.cli_tool``) and the slicer-like host (``UsageEvents``) run as
  child processes, as their console script and ``python -m``;
- the napari-like viewer (``consentry.qt``) runs in this process on Qt's offscreen platform, driven through its
  consent dialog and its menus.

The programs record on the user's real day; the upload is then made as the next day's start of the program
would make it (a clock set to tomorrow), through a transport that sends to the test server.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import subprocess
import sys
import urllib.parse
import urllib.request
from importlib.resources import files
from pathlib import Path

import pytest

import consentry
import consentry.wire
from consentry import Manifest
from consentry._local.session import AppSession
from consentry.testing import FixedClock
from consentry.transport import HttpTransport, Request, Response
from consentry_examples.napari_like import EXAMPLE as NAPARI
from consentry_examples.slicer_like import EXAMPLE as SLICER
from consentry_examples.stripepy_like import EXAMPLE as STRIPEPY
from support.e2e import run
from support.processes import ADMIN_TOKEN, RunningServer, client_environment, script

pytestmark = pytest.mark.slow

MANIFESTS = {
    "napari_like": ["manifest.toml", "plugins/napari-blobs.toml", "plugins/napari-tracks.toml"],
    "stripepy_like": ["manifest.toml"],
    "slicer_like": ["manifest.toml", "extensions/TotalSegmentator.toml", "extensions/SlicerIGT.toml"],
}


@pytest.fixture
def registered(server: RunningServer) -> RunningServer:
    """``server`` with the example applications and their plugins registered through the admin API."""
    for package, names in MANIFESTS.items():
        for name in names:
            body = files(f"consentry_examples.{package}").joinpath(name).read_bytes()
            assert server.admin("/admin/v1/manifests", body)["registered"] is True  # type: ignore[index]
    return server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A user's environment: a private Consentry home, no CI, no switch set."""
    variables = client_environment(tmp_path / "home", tmp_path)
    for app in ("STRIPEPY_LIKE", "SLICER_LIKE", "NAPARI_LIKE"):
        variables.pop(f"{app}_NO_TELEMETRY", None)
        variables.pop(f"{app}_TELEMETRY", None)
    return variables


class ToServer:
    """The client's HTTP transport, sending to ``base`` what the manifest addresses to its own hosts.

    What a test needs, not a deployment: the manifest, and so the consent given for it, stay as they are (a new
    endpoint host would be new information for the user, and ask again).
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = HttpTransport()

    def send(self, request: Request) -> Response:
        path = urllib.parse.urlsplit(request.url).path
        return self.http.send(dataclasses.replace(request, url=self.base + path))


def upload_next_day(manifest: Manifest, server: RunningServer, env: dict[str, str]) -> list[str]:
    """Write the reports of today (complete tomorrow) and send them to ``server``; the levels sent."""
    tomorrow = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    session = AppSession.open(manifest, home=env["CONSENTRY_HOME"], environ=env, clock=FixedClock(tomorrow))
    written = session.prepare_reports()
    assert written, f"the program recorded nothing to send ({session.decision.reason})"
    result = session.upload(ToServer(server.url))
    history = session.outbox.history()
    assert [entry.outcome for entry in history] == ["sent"] * len(written), result
    return sorted(consentry.wire.decode(entry.report).level for entry in history)


def exported(server: RunningServer, app: str) -> list[dict[str, object]]:
    """The raw rows the server stored for ``app`` (admin export)."""
    request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
        f"{server.url}/admin/v1/export/{app}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return [json.loads(line) for line in response.read().splitlines()]


def counters(rows: list[dict[str, object]], kind: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        for counter in row["counters"]:  # type: ignore[attr-defined]
            if counter["kind"] == kind:
                out[counter["name"]] = out.get(counter["name"], 0) + counter["n"]
    return out


def publish(server: RunningServer, env: dict[str, str]) -> None:
    """Aggregate and publish with a threshold of one reporter (one install is all the test has)."""
    db = ["--db", f"sqlite:///{server.database}", "--public-db", str(server.public)]
    assert run([script("consentry-server"), "aggregate", *db], env).returncode == 0
    published = run([script("consentry-server"), "publish", *db, "--reporter-threshold", "1"], env)
    assert published.returncode == 0, published.stderr


def program(command: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


def test_stripepy_like_runs_reach_the_server_as_command_spans(registered, env, tmp_path):
    consentry.set_consent(STRIPEPY.manifest, "on", "basic", environ=env, home=env["CONSENTRY_HOME"])
    work = tmp_path / "work"
    work.mkdir()
    tool = script("stripepy-like")
    program([tool, "download", "ENCFF993FGR", "--unit-test"], env, work)
    program([tool, "call", "ENCFF993FGR.hic", "10000", "-p", "2", "--normalization", "KR"], env, work)
    program([tool, "call", "ENCFF993FGR.hic", "10000"], env, work)  # the output exists: exit 1
    program([tool, "view", "ENCFF993FGR.hic.stripes.json"], env, work)

    assert upload_next_day(STRIPEPY.manifest, registered, env) == ["basic"]
    rows = exported(registered, "stripepy-like")
    assert counters(rows, "command_runs") == {"download": 1, "call": 2, "view": 1}
    assert counters(rows, "command_failed") == {"call": 1}
    assert counters(rows, "command_param")[json.dumps(["call", "normalization", "KR"], separators=(",", ":"))] == 1
    assert "ENCFF993FGR.hic" not in json.dumps(rows)  # a file name is never a parameter value

    publish(registered, env)
    runs = registered.get_json("/api/v1/apps/stripepy-like/counters?period=day&kind=command_runs")
    assert {row["name"]: row["total"] for row in runs["rows"]} == {"download": 1, "call": 2, "view": 1}  # type: ignore[index]


def test_slicer_like_host_and_extension_events_reach_the_server(registered, env, tmp_path):
    home = env["CONSENTRY_HOME"]
    consentry.set_consent(SLICER.manifest, "on", "full", environ=env, home=home)
    consentry.set_plugin_consent(SLICER.manifest, "TotalSegmentator", allow=True, environ=env, home=home)
    output = program([sys.executable, "-m", "consentry_examples.slicer_like"], env, tmp_path)
    assert output.splitlines()[-1] == "recording usage"

    assert upload_next_day(SLICER.manifest, registered, env) == ["basic", "full"]
    rows = exported(registered, "slicer-like")
    assert counters(rows, "event") == {
        "SampleData/load": 1,
        "Data/enter": 1,
        "SegmentEditor/enter": 1,
        "SegmentEditor/effect/threshold": 1,
    }
    assert counters(rows, "plugin_event") == {'["TotalSegmentator","segmentation/ct/total"]': 1}  # not SlicerIGT's
    facts = {key: value for row in rows for key, value in row["facts"].items()}  # type: ignore[attr-defined]
    assert facts["plugin.TotalSegmentator"] == "2025.6.2"


def test_napari_like_viewer_counts_after_its_consent_dialog_and_reaches_the_server(registered, env):
    qt = pytest.importorskip("support.qt")
    from consentry_examples.napari_like.gui import launch  # after support.qt chose the platform

    qt.application()
    # The user's environment has no CI variable: the viewer asks on its first start.
    window = launch(environ=env, home=env["CONSENTRY_HOME"], background=False, flush_at_exit=False)
    try:
        qt.process_events()
        dialog = window.telemetry.dialog
        assert dialog is not None, "the viewer did not ask"
        full = dialog.level_buttons["full"]  # the user picks the highest level, then "Yes"
        qt.QTest.mouseClick(full, qt.Qt.MouseButton.LeftButton, pos=qt.QPoint(8, full.height() // 2))
        qt.QTest.mouseClick(dialog.yes_button, qt.Qt.MouseButton.LeftButton)
        qt.process_events()
        assert window.indicator.text() == "Telemetry: on (full)"
        for key in ("open", "add_points", "blobs.detect", "blobs.detect", "tracks.track"):
            window.commands[key].trigger()
        qt.process_events()
        window.telemetry.flush()
    finally:
        window.telemetry.close()
        window.close()
        window.deleteLater()
        qt.process_events()

    assert "full" in upload_next_day(NAPARI.manifest, registered, env)
    rows = exported(registered, "napari-like")
    plugin_events = counters(rows, "plugin_event")
    assert sum(n for name, n in plugin_events.items() if name.startswith('["napari-blobs"')) == 2
    assert sum(n for name, n in plugin_events.items() if name.startswith('["napari-tracks"')) == 1
