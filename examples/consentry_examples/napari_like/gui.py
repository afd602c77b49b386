"""The napari-like viewer as a small Qt application: ``python -m consentry_examples.napari_like``.

It embeds Consentry as a real viewer would: :class:`~consentry.qt.QtTelemetry` records nothing until the user
answers the consent dialog that opens at the first start, the status bar says whether telemetry is on (click it
to change the answer), and each menu action counts its event, the two example plugins (napari-blobs and
napari-tracks) through their own manifests. Needs the ``gui`` extra: ``pip install "./examples[gui]"``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from qtpy.QtCore import QTimer
from qtpy.QtGui import QAction, QKeySequence
from qtpy.QtWidgets import QApplication, QListWidget, QMainWindow, QWidget

from consentry import PluginManifest
from consentry._clock import Clock
from consentry.qt import QtPluginRecorder, QtTelemetry, TelemetryIndicator, ask_once
from consentry_examples.napari_like import EXAMPLE
from consentry_examples.napari_like.simulate import ndarray

__all__ = ["PLUGIN_VERSION", "ViewerWindow", "launch", "main"]

#: The release of each example plugin "installed" in the viewer.
PLUGIN_VERSION = "0.3.1"


class ViewerWindow(QMainWindow):
    """The viewer's main window: a list of layers, menus whose actions count events, the telemetry indicator.

    :attr:`commands` maps each action's id (``open``, ``add_points``, ``blobs.detect``...) to its ``QAction``.
    """

    def __init__(
        self,
        telemetry: QtTelemetry,
        plugins: Sequence[tuple[PluginManifest, str]] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.telemetry = telemetry
        self.plugins: dict[str, QtPluginRecorder] = {
            manifest.name: telemetry.plugin(manifest, version) for manifest, version in plugins
        }
        self.setWindowTitle("napari-like")
        self.layers = QListWidget()
        self.layers.setAccessibleName("Layers")
        self.setCentralWidget(self.layers)
        self.ndisplay = 2
        #: Set by File > Restart: :func:`main` then opens the viewer again.
        self.restart_requested = False
        self.commands: dict[str, QAction] = {}
        self.indicator = TelemetryIndicator(telemetry)
        self.statusBar().addPermanentWidget(self.indicator)
        self._build_menus()
        self.resize(720, 480)

    def _build_menus(self) -> None:
        menus: Mapping[str, Sequence[tuple[str, str, str | None, Callable[[], None]]]] = {
            "&File": [
                ("open", "&Open image…", "Ctrl+O", self.open_image),
                ("save", "&Save layers…", "Ctrl+S", lambda: self._event("napari:window:file:save_layers")),
                ("screenshot", "&Copy screenshot", None, self.copy_screenshot),
                ("restart", "&Restart", None, self.restart),
                ("close", "&Close window", "Ctrl+W", self.close_window),
            ],
            "&View": [
                ("toggle_3d", "Toggle &2D/3D", "Ctrl+Y", self.toggle_ndisplay),
                ("fullscreen", "&Full screen", "F11", self.toggle_fullscreen),
            ],
            "&Layers": [
                ("add_labels", "Add &labels", None, lambda: self.add_layer("labels", "int32")),
                ("add_points", "Add &points", None, lambda: self.add_layer("points", "float64")),
                ("add_shapes", "Add &shapes", None, lambda: self.add_layer("shapes", None)),
            ],
            "&Plugins": [
                ("blobs.detect", "Blobs: &detect", None, lambda: self._plugin("napari-blobs", "detect")),
                ("blobs.export_csv", "Blobs: &export CSV", None, lambda: self._plugin("napari-blobs", "export_csv")),
                ("tracks.track", "Tracks: &track cells", None, lambda: self._plugin("napari-tracks", "track")),
                ("tracks.load", "Tracks: &load tracks", None, lambda: self._plugin("napari-tracks", "load_tracks")),
            ],
            "&Help": [
                ("usage", "&Usage statistics…", None, self.ask_about_usage),
            ],
        }
        for title, entries in menus.items():
            menu = self.menuBar().addMenu(title)
            for key, text, shortcut, handler in entries:
                action = QAction(text, self)
                if shortcut is not None:
                    action.setShortcut(QKeySequence(shortcut))
                action.triggered.connect(handler)
                menu.addAction(action)
                self.commands[key] = action

    # ---- what the actions do ------------------------------------------------------------------------------
    def _event(self, name: str) -> None:
        self.telemetry.count(name)
        self.telemetry.mark_active()
        self.statusBar().showMessage(name, 2000)

    def _plugin(self, plugin: str, event: str) -> None:
        recorder = self.plugins.get(plugin)
        if recorder is not None:
            recorder.count(event)
        self.telemetry.mark_active()
        self.statusBar().showMessage(f"{plugin}: {event}", 2000)

    def open_image(self) -> None:
        """Open an image (a stand-in array: the example reads no files)."""
        self._event("napari:window:file:open_files_dialog")
        self.add_layer("image", "uint16")

    def add_layer(self, kind: str, dtype: str | None) -> None:
        """Add a layer of ``kind``; its data category (never its data) is recorded."""
        self._event(f"napari:layer:add_{kind}")
        if dtype is not None:
            shape = (1000, 2) if kind == "points" else (512, 512)
            self.telemetry.data(kind, ndarray(shape, dtype))
        self.layers.addItem(f"{kind} {self.layers.count() + 1}")

    def copy_screenshot(self) -> None:
        """Copy the canvas to the clipboard."""
        self._event("napari:window:file:copy_canvas_screenshot")
        QApplication.clipboard().setPixmap(self.layers.grab())

    def restart(self) -> None:
        """Close the window and start the viewer again (:func:`main` does, once the window is closed)."""
        self._event("napari:window:file:restart")
        self.restart_requested = True
        self.close()

    def close_window(self) -> None:
        """Close the viewer's window (the last one closed quits the application)."""
        self._event("napari:window:file:close")
        self.close()

    def toggle_ndisplay(self) -> None:
        """Switch between 2D and 3D display."""
        self._event("napari:window:view:toggle_ndisplay")
        self.ndisplay = 5 - self.ndisplay

    def ask_about_usage(self) -> None:
        """Show the consent dialog again, to change the answer."""
        self.telemetry.ask(self)

    def toggle_fullscreen(self) -> None:
        """Enter or leave full-screen mode."""
        self._event("napari:window:view:toggle_fullscreen")
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()


def launch(
    *,
    home: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    background: bool = True,
    flush_at_exit: bool = True,
) -> ViewerWindow:
    """Open the viewer (a ``QApplication`` must exist) and, once it shows, ask for consent if it is needed."""
    telemetry = QtTelemetry(
        EXAMPLE.manifest,
        home=home,
        environ=environ,
        clock=clock,
        background=background,
        flush_at_exit=flush_at_exit,
    )
    window = ViewerWindow(telemetry, [(plugin, PLUGIN_VERSION) for plugin in EXAMPLE.plugins])
    telemetry.setParent(window)
    window.show()
    QTimer.singleShot(0, lambda: ask_once(window, telemetry))
    return window


def main(argv: Sequence[str] | None = None) -> int:
    """Run the viewer until its window is closed; File > Restart opens it again."""
    application = QApplication.instance() or QApplication(list(sys.argv if argv is None else argv))
    while True:
        window = launch()
        code = application.exec()
        window.telemetry.close()
        if not window.restart_requested:
            return int(code)
