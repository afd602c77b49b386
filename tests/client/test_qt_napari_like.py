"""The napari-like example as a Qt application: launched offscreen, driven through its menus and shortcuts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import support.qt  # noqa: F401 - first: chooses the offscreen platform and the binding, or skips without Qt
from consentry._local.counts import Store
from consentry._local.paths import Paths
from consentry.qt import Answer
from consentry_examples.napari_like.gui import PLUGIN_VERSION, ViewerWindow, launch, main
from support.qt import QApplication, QPoint, Qt, QTest, QTimer, application, process_events

APP = "napari-like"


@pytest.fixture
def start(home, environ, clock) -> Iterator[Callable[..., ViewerWindow]]:
    application()
    windows: list[ViewerWindow] = []

    def start_viewer(**extra: str) -> ViewerWindow:
        window = launch(home=home, environ={**environ, **extra}, clock=clock, background=False, flush_at_exit=False)
        windows.append(window)
        process_events()  # the window shows, then asks (if it must)
        return window

    yield start_viewer
    for window in windows:
        window.telemetry.close()
        window.close()
        window.deleteLater()
    process_events()


def written(home: Path) -> list[str]:
    return sorted(str(path.relative_to(home)) for path in home.rglob("*") if path.is_file()) if home.exists() else []


def use_the_viewer(window: ViewerWindow) -> None:
    """A short session: two images (one by its shortcut), points, 3D, and both plugins."""
    window.activateWindow()
    assert QTest.qWaitForWindowActive(window)
    QTest.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    for key in ("open", "add_points", "toggle_3d", "blobs.detect", "blobs.detect", "tracks.track"):
        window.commands[key].trigger()
    process_events()


def counted(home: Path, clock) -> tuple[dict[str, int], dict[tuple[str, str], int], dict[str, str]]:
    """The events, plugin events and installed plugins in the store for today."""
    record = Store(Paths(home).app(APP).store).read_day(clock.today())
    assert record is not None
    events = {key: n for (kind, key), n in record.counters.items() if kind == "event"}
    plugins = {}
    for (kind, key), n in record.counters.items():
        if kind == "plugin":
            plugin, event, _ = json.loads(key)
            plugins[plugin, event] = n
    return events, plugins, dict(record.meta.plugins)


def test_the_viewer_asks_first_and_counts_only_after_consent(start, home, clock) -> None:
    window = start()
    first = window.telemetry.dialog
    assert first is not None
    assert first.isVisible()
    assert window.indicator.text() == "Telemetry: off"
    QTest.keyClick(first, Qt.Key.Key_Escape)  # not now
    process_events()

    use_the_viewer(window)  # before an answer: nothing recorded, nothing written
    assert window.layers.count() == 3
    window.telemetry.flush()
    assert written(home) == []

    window.commands["usage"].trigger()  # Help > Usage statistics...
    process_events()
    dialog = window.telemetry.dialog
    assert dialog is not None
    assert dialog.isVisible()
    full = dialog.level_buttons["full"]
    QTest.mouseClick(full, Qt.MouseButton.LeftButton, pos=QPoint(8, full.height() // 2))
    QTest.mouseClick(dialog.yes_button, Qt.MouseButton.LeftButton)
    process_events()
    assert window.indicator.text() == "Telemetry: on (full)"

    use_the_viewer(window)
    window.telemetry.flush()
    events, plugins, installed = counted(home, clock)
    assert events == {
        "napari:window:file:open_files_dialog": 2,
        "napari:layer:add_image": 2,
        "napari:layer:add_points": 1,
        "napari:window:view:toggle_ndisplay": 1,
    }
    assert plugins == {("napari-blobs", "detect"): 2, ("napari-tracks", "track"): 1}
    assert installed == {"napari-blobs": PLUGIN_VERSION, "napari-tracks": PLUGIN_VERSION}
    assert window.layers.count() == 6  # the viewer worked the same before and after


def test_the_next_start_does_not_ask_and_keeps_counting(start, home, clock) -> None:
    first = start()
    assert first.telemetry.dialog is not None
    QTest.mouseClick(first.telemetry.dialog.temporary_button, Qt.MouseButton.LeftButton)  # basic, for 30 days
    first.telemetry.close()
    second = start()
    assert second.telemetry.dialog is None
    assert second.indicator.text().startswith("Telemetry: on (basic, until ")
    use_the_viewer(second)
    second.telemetry.flush()
    events, plugins, _ = counted(home, clock)
    assert events == {}  # every viewer event is at level full
    assert plugins == {}


def test_the_viewer_does_not_ask_in_ci(start, home) -> None:
    window = start(CI="true")
    assert window.telemetry.dialog is None
    use_the_viewer(window)
    window.commands["fullscreen"].trigger()
    window.commands["fullscreen"].trigger()
    window.commands["screenshot"].trigger()
    window.telemetry.flush()
    assert written(home) == []
    assert window.isVisible()


def test_main_runs_the_viewer_until_its_window_is_closed(tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("CONSENTRY_HOME", str(home))
    monkeypatch.setenv("CONSENTRY_POLICY_FILE", str(tmp_path / "no-policy.json"))
    monkeypatch.setenv("CI", "true")  # no question: the window alone
    application()
    seen: list[ViewerWindow] = []

    def use_and_close() -> None:
        [window] = [w for w in QApplication.topLevelWidgets() if isinstance(w, ViewerWindow) and w.isVisible()]
        seen.append(window)
        window.commands["open"].trigger()
        window.close()  # the last window: the application quits
        QApplication.quit()

    QTimer.singleShot(0, use_and_close)
    assert main(["napari-like"]) == 0
    assert len(seen) == 1
    assert seen[0].layers.count() == 1
    assert written(home) == []


# NAP-8's sample "command_usage": the commands NAP-8's full level counts, by napari's command ids.
NAP8_COMMANDS = (
    "napari:window:file:open_files_dialog",
    "napari:window:file:copy_canvas_screenshot",
    "napari:window:file:restart",
    "napari:window:file:close",
)


def test_each_command_of_nap8s_sample_is_counted_from_the_viewer_s_menu(start, home, clock) -> None:
    window = start()
    assert window.telemetry.dialog is not None
    QTest.mouseClick(window.telemetry.dialog.yes_button, Qt.MouseButton.LeftButton)  # the default level: basic
    window.telemetry.answer(Answer("on", "full"))
    process_events()
    assert set(NAP8_COMMANDS) <= set(window.telemetry.manifest.events)
    for key in ("open", "screenshot", "screenshot", "restart"):
        window.commands[key].trigger()
    process_events()
    assert window.restart_requested
    assert not window.isVisible()  # restarting closes the window; main() opens the viewer again
    window.show()
    window.activateWindow()
    assert QTest.qWaitForWindowActive(window)
    QTest.keyClick(window, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)  # File > Close window
    process_events()
    assert not window.isVisible()
    window.telemetry.flush()
    events, _, _ = counted(home, clock)
    assert {name: events.get(name, 0) for name in NAP8_COMMANDS} == {
        "napari:window:file:open_files_dialog": 1,
        "napari:window:file:copy_canvas_screenshot": 2,
        "napari:window:file:restart": 1,
        "napari:window:file:close": 1,
    }


def test_main_opens_the_viewer_again_after_restart(tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("CONSENTRY_HOME", str(home))
    monkeypatch.setenv("CONSENTRY_POLICY_FILE", str(tmp_path / "no-policy.json"))
    monkeypatch.setenv("CI", "true")  # no question: the window alone
    application()
    seen: list[ViewerWindow] = []
    deadline = time.monotonic() + 30

    def use() -> None:
        shown = [w for w in QApplication.topLevelWidgets() if isinstance(w, ViewerWindow) and w.isVisible()]
        fresh = [w for w in shown if w not in seen]
        if not fresh:  # the viewer is being opened again: look once the next event loop runs it
            if time.monotonic() < deadline:
                QTimer.singleShot(10, use)
            else:  # never hang the suite: end main(), and the assertions below say what was seen
                for window in shown:
                    window.restart_requested = False
                    window.close()
                QApplication.quit()
            return
        [window] = fresh
        seen.append(window)
        if len(seen) == 1:
            window.commands["restart"].trigger()  # closes the last window: exec returns, main starts again
            QTimer.singleShot(10, use)
        else:
            window.commands["close"].trigger()

    QTimer.singleShot(0, use)
    assert main(["napari-like"]) == 0
    assert len(seen) == 2
    assert seen[0] is not seen[1]
    assert written(home) == []
