"""Qt for the tests: the real PySide6 through qtpy, on the offscreen platform (no display needed).

A test module imports this module (``import support.qt``) before anything that imports Qt: it chooses the
platform and the binding first, and skips the module only when the binding cannot be imported at all
(scripts/test.sh installs it and the system libraries its offscreen platform needs). The Qt names the tests use
are imported from here, after that choice.
"""

from __future__ import annotations

import os

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["QT_API"] = "pyside6"
pytest.importorskip("qtpy.QtWidgets", reason="no Qt binding can be imported")

# Only now, once the platform and the binding are chosen:
from qtpy.QtCore import QPoint, Qt, QTimer
from qtpy.QtTest import QTest
from qtpy.QtWidgets import QApplication, QLabel, QMainWindow, QWidget

__all__ = [
    "QApplication",
    "QLabel",
    "QMainWindow",
    "QPoint",
    "QTest",
    "QTimer",
    "QWidget",
    "Qt",
    "application",
    "process_events",
]


def application() -> QApplication:
    """The one QApplication of the test process, created on first use."""
    existing = QApplication.instance()
    return existing if isinstance(existing, QApplication) else QApplication(["consentry-tests"])


def process_events() -> None:
    """Let Qt deliver what is queued (shown windows, deferred calls, deleted objects)."""
    QApplication.processEvents()
