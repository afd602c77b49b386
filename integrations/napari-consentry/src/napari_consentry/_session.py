"""napari's telemetry: one Consentry recorder per napari process, hooked to each viewer it is attached to.

:func:`attach` starts it for a viewer. The first viewer starts the process's :class:`NapariTelemetry`: Consentry's
:class:`~consentry.qt.QtTelemetry` for napari's manifest (nothing is recorded before the user says yes), the
installed plugins (NAP-8's middle level) and the :class:`~napari_consentry._commands.CommandCounter` for
napari's menu commands; it asks for consent once, with Consentry's dialog, if an answer is needed. Each viewer
gets a :class:`ViewerTelemetry`: the data category of every layer added (NAP-8's full level), the indicator in the
viewer's status bar, and the end of recording when its window closes (the last one closed flushes to disk).

Every hook runs under :func:`~napari_consentry._guard.guard`: nothing here raises into napari.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication, QMainWindow, QWidget

from consentry import PluginManifest
from consentry._clock import Clock
from consentry.manifest import Manifest, loads_manifest
from consentry.qt import QtTelemetry, TelemetryIndicator, ask_once
from consentry.transport import Transport
from napari_consentry._commands import CommandCounter
from napari_consentry._guard import guard, guarded
from napari_consentry._layers import layer_kind

if TYPE_CHECKING:
    from napari import Viewer  # type: ignore[import-untyped]

__all__ = ["NapariTelemetry", "ViewerTelemetry", "attach", "current", "load_manifest"]

#: The npe2 plugin of napari's own readers, writers and sample data: napari itself, never listed (as NAP-8 does).
NAPARI_ITSELF = frozenset({"napari", "builtins"})


def load_manifest() -> Manifest:
    """Napari's Consentry manifest, as this package ships it."""
    from napari_consentry import MANIFEST  # noqa: PLC0415 - the package imports this module lazily

    return loads_manifest(MANIFEST.read_text("utf-8"), source=str(MANIFEST))


def _unwrapped(viewer: Viewer) -> Viewer:
    """The viewer itself: napari hands plugin widgets a proxy, whose attributes are proxies too.

    Data classes must be recorded by their own names (``ndarray``, ``MultiScaleData``), as NAP-8 records them.
    """
    return getattr(viewer, "__wrapped__", viewer)


def _main_window(viewer: Viewer) -> QWidget | None:
    """The viewer's Qt main window, when it has one (napari keeps it in ``Window._qt_window``)."""
    window = getattr(getattr(viewer, "window", None), "_qt_window", None)
    return window if isinstance(window, QWidget) else None


class ViewerTelemetry:
    """The telemetry of one napari viewer: its layers' data categories and its status-bar indicator.

    Created by :func:`attach`. :meth:`close` (called when the viewer's window is destroyed) stops it; the last
    viewer's close flushes what was counted to disk.
    """

    def __init__(self, process: NapariTelemetry, viewer: Viewer, window: QWidget | None) -> None:
        self.process = process
        self.viewer = viewer
        self.window = window
        self.indicator: TelemetryIndicator | None = None
        self.closed = False
        viewer.layers.events.inserted.connect(self._inserted)
        for layer in list(viewer.layers):
            self.record(layer)
        if isinstance(window, QMainWindow):
            with guard():
                self.indicator = TelemetryIndicator(process.telemetry)
                window.statusBar().addPermanentWidget(self.indicator)
        if window is not None:
            window.destroyed.connect(self.close)

    def _inserted(self, event: object) -> None:  # napari's `layers.events.inserted`: the layer is `event.value`
        with guard():
            self.record(getattr(event, "value", None))

    def record(self, layer: object) -> None:
        """Record the data category of a layer (kind, class, dtype, dimensions, size), never its data."""
        telemetry = self.process.telemetry
        if not telemetry.enabled:  # no consent: not even a look at the layer
            return
        kind = layer_kind(layer)
        if kind is not None:
            telemetry.data(kind, getattr(layer, "data", None))

    @guarded
    def close(self, *_: object) -> None:  # `destroyed` passes the object
        """Stop following this viewer; the last viewer closed ends the process's telemetry (and flushes)."""
        if self.closed:
            return
        self.closed = True
        with guard():
            self.viewer.layers.events.inserted.disconnect(self._inserted)
        self.process.detach(self)


class NapariTelemetry:
    """The telemetry of a napari process: the recorder, the command counter and the viewers attached.

    Started by the first :func:`attach`; ended when its last viewer closes or the application quits.
    """

    def __init__(self, telemetry: QtTelemetry) -> None:
        self.telemetry = telemetry
        self.viewers: list[ViewerTelemetry] = []
        #: Whether this process already asked (or decided not to ask): the dialog is shown once at most.
        self.asked = False
        self.closed = False
        self.commands: CommandCounter | None = None
        with guard():
            self.commands = _command_counter(telemetry)
        with guard():
            _list_plugins(telemetry)
        application = QApplication.instance()
        if application is not None:
            application.aboutToQuit.connect(self.close)

    def viewer(self, viewer: Viewer) -> ViewerTelemetry | None:
        """The telemetry attached to ``viewer``, if any."""
        for attached in self.viewers:
            if attached.viewer is viewer:
                return attached
        return None

    def detach(self, attached: ViewerTelemetry) -> None:
        """Forget a viewer; without viewers, close."""
        if attached in self.viewers:
            self.viewers.remove(attached)
        if not self.viewers:
            self.close()

    @guarded
    def ask(self, parent: QWidget | None) -> None:
        """Open Consentry's consent dialog if an answer is needed (never answered, expired, more collected)."""
        ask_once(parent, self.telemetry)

    @guarded
    def close(self) -> None:
        """Flush and stop recording; disconnect from napari."""
        global _current  # noqa: PLW0603 - the process's one telemetry, replaced when the next viewer attaches
        if self.closed:
            return
        self.closed = True
        if _current is self:
            _current = None
        for attached in list(self.viewers):
            attached.close()
        if self.commands is not None:
            self.commands.close()
        self.telemetry.close()


_current: NapariTelemetry | None = None


def current() -> NapariTelemetry | None:
    """The process's napari telemetry, while a viewer is attached."""
    return _current


def _command_counter(telemetry: QtTelemetry) -> CommandCounter | None:
    """Count napari's declared menu commands, when napari's app-model application exists."""
    from app_model import Application  # noqa: PLC0415 - napari's dependency, imported once napari runs

    app = Application.get_app("napari")
    if app is None or telemetry.manifest is None:
        return None
    return CommandCounter(app, telemetry.manifest.events, telemetry.count)


def _list_plugins(telemetry: QtTelemetry) -> None:
    """Tell Consentry the installed npe2 plugins and their versions (listed by name only if public, NAP-8's rule)."""
    if telemetry.manifest is None:
        return
    npe2 = importlib.import_module("npe2")
    for manifest in list(npe2.PluginManager.instance().iter_manifests()):
        name = str(manifest.name)
        metadata = getattr(manifest, "package_metadata", None)
        version = getattr(metadata, "version", None)
        if name in NAPARI_ITSELF or not isinstance(version, str):
            continue
        telemetry.plugin(PluginManifest(name=name, host=telemetry.manifest.name), version)


@guarded
def attach(
    viewer: Viewer,
    *,
    window: QWidget | None = None,
    ask: bool = True,
    manifest: Manifest | None = None,
    home: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    background: bool = True,
    flush_at_exit: bool = True,
    transport: Transport | None = None,
) -> ViewerTelemetry | None:
    """Start napari's telemetry for ``viewer`` and return it (the same one if it is attached already).

    ``window`` is the viewer's Qt main window (found from the viewer when not given): the consent dialog's
    parent, where the indicator goes and whose closing stops recording. With ``ask`` the consent dialog opens,
    once per process, if an answer is needed. The other options, Consentry's (see :func:`consentry.init`), apply
    when this call starts the process's telemetry, and ``manifest`` replaces the packaged one (for a deployment
    with its own server). Never raises; returns ``None`` if it could not start.
    """
    global _current  # noqa: PLW0603 - see NapariTelemetry.close
    viewer = _unwrapped(viewer)
    if _current is None:
        telemetry = QtTelemetry(
            manifest if manifest is not None else load_manifest(),
            home=home,
            environ=environ,
            clock=clock,
            background=background,
            flush_at_exit=flush_at_exit,
            transport=transport,
        )
        _current = NapariTelemetry(telemetry)
    process = _current
    attached = process.viewer(viewer)
    if attached is None:
        attached = ViewerTelemetry(process, viewer, window if window is not None else _main_window(viewer))
        process.viewers.append(attached)
    if ask and not process.asked:
        process.asked = True
        parent = attached.window
        QTimer.singleShot(0, functools.partial(process.ask, parent))  # once the window has shown
    return attached
