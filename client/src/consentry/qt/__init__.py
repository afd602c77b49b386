"""Consent for Qt applications: the consent dialog, the status-bar indicator and the recorder that follows them.

Needs ``qtpy`` (``pip install "consentry[qt]"``) and the Qt binding the application already uses: PySide6,
PyQt6, PyQt5 or PySide2. Only applications that import this module load Qt; ``import consentry`` never does::

    from consentry.qt import QtTelemetry, TelemetryIndicator, ask_once

    telemetry = QtTelemetry("my_app/telemetry.toml")  # records nothing until the user says yes
    window.statusBar().addPermanentWidget(TelemetryIndicator(telemetry))
    ask_once(window, telemetry)  # the consent dialog, only when an answer is needed
    telemetry.count("file.open")

See ``docs/embedding.md``, "GUI applications (Qt)".
"""

from __future__ import annotations

from consentry.qt.dialog import TEMPORARY_CONSENT, Answer, ConsentDialog
from consentry.qt.indicator import TelemetryIndicator, describe
from consentry.qt.telemetry import QtPluginRecorder, QtTelemetry, ask_once

__all__ = [
    "TEMPORARY_CONSENT",
    "Answer",
    "ConsentDialog",
    "QtPluginRecorder",
    "QtTelemetry",
    "TelemetryIndicator",
    "ask_once",
    "describe",
]
