"""napari-consentry (integrations/napari-consentry) in the real napari viewer, on a real X display (Xvfb).

Each napari session runs in a process of its own (``support.napari_session``): napari's canvas needs OpenGL, so
napari runs on Qt's xcb platform on Xvfb with Mesa's software renderer, while this process keeps Qt offscreen for
the rest of the suite. The sessions of one Consentry home run one after another, as the same user starting napari
again; the test asserts on what each session saw and on the home it left. The expected data keys are NAP-8's,
from NAP-8's own collector code (``support.nap8``) run on the same arrays.
"""

from __future__ import annotations

import datetime
import email.parser
import importlib.metadata
import json
import os
import subprocess
import sys
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic.warnings import PydanticDeprecatedSince20

from consentry._local.counts import Store
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from support import nap8
from support.napari_session import COMMANDS, LAYERS, LIGHT
from support.processes import client_environment
from support.xvfb import Display, xvfb

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
#: A napari session's limit: a session takes 10 to 30 s here, minutes on a machine busy with other work.
SESSION_TIMEOUT = 600


# ---- running napari sessions ----------------------------------------------------------------------------------
def napari_environment(display: Display, home: Path, folder: Path) -> dict[str, str]:
    """A user's environment (no CI variable, no kill switch) with private Consentry and napari settings."""
    env = client_environment(home, folder)
    for name in ("NAPARI_TELEMETRY", "NAPARI_NO_TELEMETRY"):
        env.pop(name, None)
    env.update(display.environment())
    env["QT_API"] = "pyside6"
    for kind in ("CONFIG", "CACHE", "DATA", "STATE"):  # napari's settings and caches: not the user's
        env[f"XDG_{kind}_HOME"] = str(folder / kind.lower())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    return env


def run_session(display: Display, home: Path, folder: Path, **session: object) -> dict[str, Any]:
    """Run one napari session (see ``support.napari_session``) and return what it saw."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "session.json").write_text(json.dumps(session))
    command = [sys.executable, "-m", "support.napari_session", str(folder / "session.json"), str(folder / "out.json")]
    try:
        done = subprocess.run(
            command,
            env=napari_environment(display, home, folder),
            capture_output=True,
            text=True,
            timeout=SESSION_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"napari session {session} did not finish in {SESSION_TIMEOUT} s:\n{timeout.stderr!s:.4000}")
    output = f"exit status {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-6000:]}"
    assert done.returncode == 0, f"napari session {session} failed: {output}"
    result: dict[str, Any] = json.loads((folder / "out.json").read_text())
    assert "error" not in result, f"napari session {session} failed: {result['error']}\n{output}"
    result["stderr"] = done.stderr
    result["written"] = written(home) if home.exists() else []
    result["stored"] = stored(home) if (home / "apps" / "napari" / "store.sqlite3").exists() else None
    return result


def written(home: Path) -> list[str]:
    return sorted(str(path.relative_to(home)) for path in home.rglob("*") if path.is_file())


def stored(home: Path) -> tuple[Counter[str], Counter[tuple[object, ...]], dict[str, str]]:
    """The events, the data keys and the installed plugins in napari's local store, over every day recorded."""
    store = Store(Paths(home).app("napari").store)
    events: Counter[str] = Counter()
    data: Counter[tuple[object, ...]] = Counter()
    plugins: dict[str, str] = {}
    tomorrow = datetime.datetime.now(tz=datetime.timezone.utc).date() + datetime.timedelta(days=2)
    for day in store.unreported_days(tomorrow):
        record = store.read_day(day)
        assert record is not None
        for (kind, key), n in record.counters.items():
            if kind == "event":
                events[key] += n
            elif kind == "data":
                data[tuple(json.loads(key))] += n
        plugins.update(record.meta.plugins)
    return events, data, plugins


def nap8_keys(arrays: list[tuple[str, Any]]) -> Counter[tuple[object, ...]]:
    """What NAP-8's collector counts for these (kind, array) pairs, as Consentry's data keys."""
    counts: Counter[str] = Counter()
    for kind, array in arrays:
        nap8.add_data_info(counts, array, kind)
    return Counter({tuple(nap8.consentry_key(key)): n for key, n in counts.items()})


# Two homes, two users: one who never says yes, one who does. Their sessions run side by side, each user on an X
# display of their own (napari's File > Close Window closes the active window: one display has one).
@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with (
        xvfb(tmp_path_factory.mktemp("xvfb") / "declining.log") as one,
        xvfb(tmp_path_factory.mktemp("xvfb") / "agreeing.log") as other,
    ):
        yield run_both(one, other, tmp_path_factory)


def run_both(one: Display, other: Display, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    declining = tmp_path_factory.mktemp("declining")
    agreeing = tmp_path_factory.mktemp("agreeing")

    def decline() -> list[dict[str, Any]]:
        home = declining / "home"
        return [
            run_session(one, home, declining / "1", start="widget", answer="dismiss", use="light"),
            run_session(one, home, declining / "2", start="widget", answer="no", use="light"),
            run_session(one, home, declining / "3", start="widget", answer="none", use="none"),
        ]

    def agree() -> list[dict[str, Any]]:
        home = agreeing / "home"
        return [
            run_session(other, home, agreeing / "1", start="attach", answer="full", use="full"),
            run_session(other, home, agreeing / "2", start="attach", answer="none", use="light", hostile=True),
        ]

    with ThreadPoolExecutor(2) as pool:
        declined, agreed = pool.submit(decline), pool.submit(agree)
        return {
            "declining": (declining / "home", declined.result()),
            "agreeing": (agreeing / "home", agreed.result()),
        }


# ---- discovery ------------------------------------------------------------------------------------------------
def test_napari_discovers_the_plugin_and_its_widget() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PydanticDeprecatedSince20)  # npe2's pydantic-1 style models
        from npe2 import PluginManager

        manager = PluginManager()
        manager.discover()
    manifest = manager.get_manifest("napari-consentry")
    assert manifest.package_metadata is not None
    assert manifest.package_metadata.version == importlib.metadata.version("napari-consentry")
    [widget] = manifest.contributions.widgets or []
    assert widget.display_name == "Usage statistics"
    [command] = [c for c in manifest.contributions.commands or [] if c.id == widget.command]
    assert command.python_name == "napari_consentry._widget:UsageStatistics"
    # ... and `consentry status napari` finds napari's Consentry manifest without starting napari.
    [entry_point] = importlib.metadata.entry_points(group="consentry.manifests", name="napari")
    assert entry_point.value == "napari_consentry:MANIFEST"


def test_importing_the_plugin_imports_neither_napari_nor_qt() -> None:
    code = "import sys, napari_consentry; print(sorted(m for m in ('napari', 'qtpy', 'PySide6') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


# ---- consent ----------------------------------------------------------------------------------------------------
def test_the_widget_asks_and_nothing_is_written_before_an_answer(sessions) -> None:
    _, [first, *_] = sessions["declining"]
    assert first["widget"] == "UsageStatistics"  # opened from the Plugins menu, through npe2
    assert first["asked"]
    assert first["dialog"] == {
        "title": "napari: usage statistics",
        "parent_is_the_viewer": True,
        "window_modal": True,
        "levels": ["basic", "middle", "full"],
    }
    assert not first["dialog_open_after_answer"]  # Escape dismissed it
    assert first["indicator"] == first["widget_indicator"] == "Telemetry: off"
    assert not first["recording"]
    assert first["closed"]
    assert not first["still_recording"]
    assert first["swallowed"] == first["internal_errors"] == []
    # The whole session, layers and commands included, wrote nothing at all.
    assert first["written"] == []


def test_an_answer_is_stored_and_not_asked_again(sessions) -> None:
    home, [_, second, third] = sessions["declining"]
    assert second["asked"]  # dismissing the question stored nothing: it came back at the next start
    assert not second["dialog_open_after_answer"]
    assert third["asked"] is False  # "Don't send" is an answer: never asked again
    assert third["indicator"] == "Telemetry: off"
    consent = AppSession.open(napari_manifest(), home=home, environ=no_policy(home)).consent
    assert consent.mode == "off"
    # Only the answer was written; nothing was recorded in the sessions after it.
    assert second["written"] == third["written"] == ["apps/napari/consent.json"]
    for session in (second, third):
        assert session["swallowed"] == session["internal_errors"] == []


# ---- counting -----------------------------------------------------------------------------------------------------
def arrays(layers: tuple[tuple[str, tuple[int, ...], str], ...]) -> list[tuple[str, Any]]:
    return [(kind, np.zeros(shape, dtype=dtype)) for kind, shape, dtype in layers]


def test_after_consent_layers_and_commands_are_counted_as_nap8_does(sessions) -> None:
    _, [first, _] = sessions["agreeing"]
    assert first["asked"]
    assert first["indicator"] == "Telemetry: on (full)"
    assert first["recording"]
    assert first["active"]
    assert first["ndisplay"] == 3  # View > Toggle 2D/3D ran (and was counted)
    assert first["layers"] == ["image", "image", "labels", "points"]  # Duplicate Layer put a copy above the image
    assert first["closed"]  # Ctrl+W closed the viewer (napari asked first), which flushed the counts to the store
    assert first["confirmed_close"] == "Close Window?"
    assert first["windows_left"] == []
    assert not first["still_recording"]
    events, data, plugins = first["stored"]
    session = arrays(LAYERS)
    assert data == nap8_keys([*session, session[0]])  # the duplicate is the image again
    assert dict(events) == COMMANDS
    # NAP-8's middle level: the public plugins napari installs, by name and version; the others as "other".
    assert plugins == {
        "napari-console": importlib.metadata.version("napari-console"),
        "napari-svg": importlib.metadata.version("napari-svg"),
        "other": "other",
    }
    assert first["swallowed"] == first["internal_errors"] == []


def test_the_next_start_does_not_ask_and_keeps_counting(sessions) -> None:
    _, [first, second] = sessions["agreeing"]
    assert second["asked"] is False
    assert second["indicator"] == "Telemetry: on (full)"
    assert second["recording"]
    assert second["closed"]
    events, data, _ = second["stored"]
    light = arrays(LIGHT)
    hostile = [("points", np.zeros((20, 2)))]  # the layer only napari may read is not described, the next one is
    assert data - first["stored"][1] == nap8_keys([*light, *light, *hostile])
    assert events - first["stored"][0] == {
        "napari:window:file:copy_canvas_screenshot": 2,
        "napari:layer:duplicate": 1,
        "napari:window:file:close_dialog": 1,
    }
    assert second["internal_errors"] == []


def test_a_failure_of_napari_s_objects_in_the_plugin_s_hooks_never_reaches_napari(sessions) -> None:
    _, [_, second] = sessions["agreeing"]
    # Reading that layer's data in napari's own `inserted` event makes napari's add_layer raise...
    assert second["naive_hook_raised_in_napari"] == "only napari may read this layer's data"
    # ... but the plugin's hook swallowed it, and the viewer went on (the next layer was counted: see above).
    assert second["hostile_swallowed"] == ["RuntimeError"]
    assert second["swallowed"] == ["RuntimeError: only napari may read this layer's data"] * 2
    assert second["layers"][-2:] == ["guardedpoints", "points"]
    assert second["notifications"] == []
    assert second["closed"]


# ---- the distribution -----------------------------------------------------------------------------------------------
def test_the_wheel_holds_both_manifests_and_their_entry_points(tmp_path: Path) -> None:
    project = ROOT / "integrations" / "napari-consentry"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(project)],
        check=True,
        timeout=300,
    )
    [wheel_file] = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel_file) as wheel:
        names = wheel.namelist()
        [meta] = [name for name in names if name.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(wheel.read(meta).decode())
        [entry] = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        entry_points = wheel.read(entry).decode()
    assert {"napari_consentry/napari.yaml", "napari_consentry/telemetry.toml", "napari_consentry/py.typed"} <= set(
        names
    )
    assert metadata["Name"] == "napari-consentry"
    assert metadata.get_all("Requires-Dist") == ["consentry[qt]>=0.1.0", "napari>=0.5"]
    assert "napari-consentry = napari_consentry:napari.yaml" in entry_points
    assert "napari = napari_consentry:MANIFEST" in entry_points


# ---- helpers ------------------------------------------------------------------------------------------------------
def napari_manifest():
    import napari_consentry

    return napari_consentry.load_manifest()


def no_policy(home: Path) -> dict[str, str]:
    return {"CONSENTRY_POLICY_FILE": str(home.parent / "no-policy.json")}
