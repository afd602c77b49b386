"""The plugin's dock widget, Plugins > Usage statistics: opening it starts napari's telemetry for its viewer.

napari gives plugins no start-up hook (by design since npe2); its ways to run a plugin at start-up are opening
the plugin's widget (``napari -w napari-consentry``) and the start-up script setting. The widget says what the
plugin does, shows whether telemetry is on and, clicked, opens Consentry's consent dialog to change the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QMainWindow, QVBoxLayout, QWidget

from consentry.qt import TelemetryIndicator
from napari_consentry._guard import guarded
from napari_consentry._session import ViewerTelemetry, attach

if TYPE_CHECKING:
    from napari import Viewer  # type: ignore[import-untyped]

__all__ = ["ABOUT", "UsageStatistics"]

ABOUT = (
    "napari can send anonymous usage statistics to its developers, as napari's NAP-8 proposes: how many people "
    "use it, with which plugins, commands and kinds of data. Nothing is sent unless you say yes, and you can "
    "change your answer at any time here or with the indicator in the status bar. "
    "To read the reports before they are sent: consentry preview napari."
)


class UsageStatistics(QWidget):
    """napari's usage statistics for the viewer this widget is docked in.

    napari creates it (its ``napari_viewer`` argument is the viewer); once docked, it attaches napari's
    telemetry to the viewer's window (:func:`napari_consentry.attach`), which asks for consent if an answer is
    needed, and shows the state of telemetry.
    """

    def __init__(self, napari_viewer: Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.attached: ViewerTelemetry | None = None
        self.indicator: TelemetryIndicator | None = None
        layout = QVBoxLayout(self)
        self.about = QLabel(ABOUT)
        self.about.setWordWrap(True)
        layout.addWidget(self.about)
        layout.addStretch(1)
        QTimer.singleShot(0, self._attach)  # napari docks the widget in the viewer's window after creating it

    @guarded
    def _attach(self) -> None:
        window = self.window()
        self.attached = attach(self.viewer, window=window if isinstance(window, QMainWindow) else None)
        if self.attached is not None:
            self.indicator = TelemetryIndicator(self.attached.process.telemetry)
            self.indicator.setAccessibleName("Usage statistics status")
            layout = self.layout()
            if isinstance(layout, QVBoxLayout):
                layout.insertWidget(1, self.indicator)
