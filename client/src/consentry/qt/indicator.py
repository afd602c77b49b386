"""The status-bar indicator: whether telemetry is on, at which level and until when; a click reopens the dialog.

NAP-8 asks for "a visible indicator that telemetry is enabled (for example, on the status bar)". The indicator
follows :attr:`QtTelemetry.changed <consentry.qt.QtTelemetry.changed>`, so it changes as soon as the user answers.
"""

from __future__ import annotations

from qtpy.QtWidgets import QToolButton, QWidget

from consentry._guard import guarded
from consentry.qt.telemetry import QtTelemetry

__all__ = ["TelemetryIndicator", "describe"]


def describe(telemetry: QtTelemetry) -> tuple[str, str]:
    """The indicator's text and its longer explanation (the tooltip) for the current state of ``telemetry``."""
    decision, consent = telemetry.decision, telemetry.consent
    if decision is None or consent is None:
        return "Telemetry: off", "Telemetry is off: Consentry could not start."
    explanation = decision.reason[:1].upper() + decision.reason[1:] + "."
    if telemetry.problem:
        explanation += f" Note: {telemetry.problem}."
    if not decision.record:
        return "Telemetry: off", explanation
    details = [decision.level]
    if consent.expires is not None:
        details.append(f"until {consent.expires.isoformat()}")
    state = {"on": "on", "ask": "on, asks before sending", "local": "kept on this computer"}.get(decision.mode, "on")
    return f"Telemetry: {state} ({', '.join(details)})", explanation


class TelemetryIndicator(QToolButton):
    """A flat button for the status bar showing the state of telemetry; clicking it opens the consent dialog.

    Add it with ``window.statusBar().addPermanentWidget(TelemetryIndicator(telemetry))``.
    """

    def __init__(self, telemetry: QtTelemetry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.telemetry = telemetry
        self.setAutoRaise(True)
        self.setAccessibleName("Telemetry status")
        self.clicked.connect(self._open)
        telemetry.changed.connect(self.refresh)
        self.refresh()

    @guarded(None)
    def refresh(self) -> None:
        """Show the current state (called whenever the answer changes)."""
        text, explanation = describe(self.telemetry)
        self.setText(text)
        self.setToolTip(f"{explanation}\nClick to change what is sent.")
        self.setAccessibleDescription(explanation)

    @guarded(None)
    def _open(self, *_: object) -> None:  # connected to `clicked`, which may pass the checked state
        self.telemetry.ask(self.window())
