"""One napari session with the napari-consentry plugin, run as its own process on a real X display.

``python -m support.napari_session SESSION.json RESULT.json`` (with ``tests`` on the path) starts the real napari
viewer, starts the plugin as a user would (its dock widget, or ``napari_consentry.attach`` as a script would),
answers the consent dialog as told, uses the viewer through its menus, its shortcuts and its API, closes it with
File > Close Window's shortcut and writes what it saw to ``RESULT.json``. The test that started it asserts on that
and on the Consentry home. A process of its own: napari needs the xcb platform (its canvas needs OpenGL), while
the test process runs Qt offscreen, and one process has one QApplication on one platform.

The session (a JSON object): ``start`` is ``widget`` (Plugins > Usage statistics, found through napari's npe2
plugin manager) or ``attach`` (``napari_consentry.attach(viewer, background=False)``: a test starts no detached
uploader); ``answer`` is ``dismiss`` (Escape), ``no``, ``full`` (level full, then Yes) or ``none`` (nothing to
answer); ``use`` is ``full`` (:data:`LAYERS` and :data:`COMMANDS`), ``light`` (:data:`LIGHT`: what a viewer
without OpenGL-heavy layers does, in a third of the time) or ``none``; ``hostile`` adds a layer whose data only
napari may read.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The layers a full session adds through napari's API: kind, shape and dtype (the test computes NAP-8's keys).
LAYERS = (
    ("image", (8, 64, 64), "uint16"),
    ("labels", (128, 128), "int32"),
    ("points", (1000, 3), "float64"),
)
#: The menu commands a full session runs, and how many times: from the menu bar, by a shortcut, from the layer
#: list's context menu (napari builds it at the first right click, after the plugin started), and the closing.
COMMANDS = {
    "napari:window:file:copy_canvas_screenshot": 2,  # File > Copy Screenshot to Clipboard, then Alt+C
    "napari:scene:toggle_ndisplay": 1,  # View > Toggle 2D/3D
    "napari:layer:duplicate": 1,  # the layer list's context menu > Duplicate Layer (the image, in 3D)
    "napari:window:file:close_dialog": 1,  # Ctrl+W
}
#: A light session: one points layer, the screenshot twice, its duplicate, the closing.
LIGHT = (("points", (50, 2), "float64"),)

#: How long a session waits for what Qt does (the question to be asked, the window to be destroyed).
WAIT = 60.0
START = time.monotonic()

Pump = Callable[..., bool]


def main(argv: list[str]) -> int:
    session = json.loads(Path(argv[0]).read_text())
    result: dict[str, Any] = {"timings": []}
    try:
        run(session, result)
    except Exception:  # noqa: BLE001 - reported to the test, which fails with it
        result["error"] = traceback.format_exc()
    Path(argv[1]).write_text(json.dumps(result, indent=2))
    return 0


def step(result: dict[str, Any], name: str) -> None:
    result["timings"].append((name, round(time.monotonic() - START, 2)))


def run(session: dict[str, Any], result: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # napari's import warns (pydantic): napari's business, not this test's
        import napari
    from napari.utils.notifications import notification_manager
    from qtpy.QtCore import QCoreApplication, QEvent
    from qtpy.QtWidgets import QApplication, QMainWindow

    import napari_consentry
    from consentry._guard import internal_errors

    def pump(until: Callable[[], bool] | None = None, timeout: float = WAIT) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            QApplication.processEvents()
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            if until is None or until():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    viewer = napari.Viewer(show=True)
    step(result, "viewer")
    process = start(viewer, session, result, pump)
    step(result, "answered")
    if session["use"] != "none":
        use(viewer, LAYERS if session["use"] == "full" else LIGHT, result, pump)
        step(result, "used")
    if session.get("hostile"):
        hostile(viewer, result, pump)
        step(result, "hostile")
    result["layers"] = [layer._type_string for layer in viewer.layers]
    result["notifications"] = [str(notification.message) for notification in notification_manager.records]
    close(viewer, result, pump)
    result["closed"] = pump(lambda: process.closed)
    result["windows_left"] = [w.windowTitle() for w in QApplication.topLevelWidgets() if isinstance(w, QMainWindow)]
    result["still_recording"] = napari_consentry.current() is not None
    result["swallowed"] = [f"{type(error).__name__}: {error}" for error in napari_consentry.swallowed()]
    result["internal_errors"] = [repr(error) for error in internal_errors()]
    step(result, "closed")


def start(viewer: Any, session: dict[str, Any], result: dict[str, Any], pump: Pump) -> Any:
    """Start the plugin as the session says, see whether it asks, and answer."""
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest

    import napari_consentry

    window = viewer.window._qt_window
    widget = None
    if session["start"] == "widget":
        _, widget = viewer.window.add_plugin_dock_widget("napari-consentry", "Usage statistics")
        result["widget"] = type(widget).__name__
    else:
        napari_consentry.attach(viewer, background=False)
    started = pump(lambda: (current := napari_consentry.current()) is not None and current.asked)
    assert started, "the plugin did not start"
    for _ in range(5):  # the question is asked once the window has shown (a deferred call)
        pump()
    process = napari_consentry.current()
    [attached] = process.viewers
    dialog = process.telemetry.dialog
    result["asked"] = dialog is not None and dialog.isVisible()
    if dialog is not None:
        result["dialog"] = {
            "title": dialog.windowTitle(),
            "parent_is_the_viewer": dialog.parent() is window,
            "window_modal": dialog.windowModality() == Qt.WindowModality.WindowModal,
            "levels": list(dialog.level_buttons),
        }
    answer = session["answer"]
    if answer == "dismiss":
        QTest.keyClick(dialog, Qt.Key.Key_Escape)
    elif answer == "no":
        QTest.mouseClick(dialog.no_button, Qt.MouseButton.LeftButton)
    elif answer == "full":
        dialog.level_buttons["full"].click()
        QTest.mouseClick(dialog.yes_button, Qt.MouseButton.LeftButton)
    pump()
    result["dialog_open_after_answer"] = dialog is not None and dialog.isVisible()
    result["indicator"] = attached.indicator.text() if attached.indicator is not None else None
    result["widget_indicator"] = widget.indicator.text() if widget is not None and widget.indicator else None
    result["recording"] = process.telemetry.enabled
    return process


def use(viewer: Any, layers: tuple[tuple[str, tuple[int, ...], str], ...], result: dict[str, Any], pump: Pump) -> None:
    """Add layers through napari's API; run commands from the menu bar, a shortcut and the layer list's menu."""
    import numpy as np
    from napari._app_model.constants import MenuId
    from napari._app_model.context import get_context
    from napari._qt._qapp_model._menus import build_qmodel_menu
    from qtpy.QtCore import Qt
    from qtpy.QtGui import QAction
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication

    window = viewer.window._qt_window
    for kind, shape, dtype in layers:
        getattr(viewer, f"add_{kind}")(np.zeros(shape, dtype=dtype))
    pump()
    menus = {action.objectName(): action for action in QApplication.instance().findChildren(QAction)}
    menus["napari.window.file.copy_canvas_screenshot"].trigger()
    if any(kind == "image" for kind, _, _ in layers):
        menus["napari.scene.toggle_ndisplay"].trigger()
    window.activateWindow()
    result["active"] = QTest.qWaitForWindowActive(window)
    QTest.keyClick(window, Qt.Key.Key_C, Qt.KeyboardModifier.AltModifier)
    pump()
    viewer.layers.selection.select_only(viewer.layers[0])
    # What a right click on the layer list builds (napari builds it at the first one), updated as napari does:
    context = build_qmodel_menu(MenuId.LAYERLIST_CONTEXT, parent=window)
    context.update_from_context(get_context(viewer.layers))
    duplicate = context.findAction("napari.layer.duplicate")
    assert duplicate is not None, "napari's layer list menu has no Duplicate Layer"
    duplicate.trigger()
    pump()
    result["ndisplay"] = viewer.dims.ndisplay


def hostile(viewer: Any, result: dict[str, Any], pump: Pump) -> None:
    """A layer whose data only napari's own code may read (a plugin's layer type, say): a failure of the host.

    A naive hook reading the data for its category makes napari's ``add_layer`` raise; the plugin's must not.
    """
    import napari
    import numpy as np
    from napari.layers import Points

    import napari_consentry

    napari_files = str(Path(napari.__file__).parent)

    class GuardedPoints(Points):
        @property
        def data(self) -> Any:
            if not sys._getframe(1).f_code.co_filename.startswith(napari_files):
                raise RuntimeError("only napari may read this layer's data")
            return Points.data.fget(self)

        @data.setter
        def data(self, value: Any) -> None:
            Points.data.fset(self, value)

    def naive(event: Any) -> None:
        event.value.data  # noqa: B018 - what reading the data for its category does

    viewer.layers.events.inserted.connect(naive)
    try:
        viewer.add_layer(GuardedPoints(np.zeros((5, 2))))
    except RuntimeError as error:
        result["naive_hook_raised_in_napari"] = str(error)
    viewer.layers.events.inserted.disconnect(naive)
    viewer.layers.pop()  # the layer the naive hook broke
    before = len(napari_consentry.swallowed())
    viewer.add_layer(GuardedPoints(np.zeros((5, 2))))  # the plugin's hook alone: nothing reaches napari
    viewer.add_points(np.zeros((20, 2)))  # and the next layer is recorded as before
    pump()
    result["hostile_swallowed"] = [type(error).__name__ for error in napari_consentry.swallowed()[before:]]


def close(viewer: Any, result: dict[str, Any], pump: Pump) -> None:
    """Ctrl+W (File > Close Window); napari asks first when the window has layers: Close."""
    from qtpy.QtCore import Qt, QTimer
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication, QPushButton

    window = viewer.window._qt_window

    def confirm(tries: int = 200) -> None:
        dialog = QApplication.activeModalWidget()
        buttons = [b for b in dialog.findChildren(QPushButton) if b.text() == "Close"] if dialog is not None else []
        if buttons:
            result["confirmed_close"] = dialog.windowTitle()
            buttons[0].click()
        elif tries:
            QTimer.singleShot(50, lambda: confirm(tries - 1))

    window.activateWindow()
    result["active_before_close"] = QTest.qWaitForWindowActive(window)
    if len(viewer.layers):
        QTimer.singleShot(50, confirm)
    QTest.keyClick(window, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    pump()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
