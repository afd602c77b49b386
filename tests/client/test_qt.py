"""The Qt consent dialog, the status-bar indicator and ask_once, driven with real key and mouse events.

Runs the real PySide6 through qtpy on Qt's offscreen platform (set by support.qt before Qt is imported).
"""

from __future__ import annotations

import copy
import datetime
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import consentry
import support.qt  # noqa: F401 - first: chooses the offscreen platform and the binding, or skips without Qt
from consentry import Manifest
from consentry import qt as consentry_qt
from consentry._consent.answers import load_consent
from consentry._consent.asking import consent_request
from consentry._local.counts import Store
from consentry._local.paths import Paths
from consentry._local.session import AppSession
from consentry.manifest import load_plugin_manifest, parse_manifest
from consentry.qt import Answer, ConsentDialog, QtTelemetry, TelemetryIndicator, ask_once
from consentry.wire import decode
from support.paths import EXAMPLES
from support.qt import QApplication, QLabel, QMainWindow, QPoint, Qt, QTest, QWidget, application, process_events
from support.waiting import wait_for

BLOBS = EXAMPLES / "napari_like" / "plugins" / "napari-blobs.toml"

MakeTelemetry = Callable[..., QtTelemetry]


def written(home: Path) -> list[str]:
    """Every file Consentry wrote in ``home``."""
    return sorted(str(path.relative_to(home)) for path in home.rglob("*") if path.is_file()) if home.exists() else []


@pytest.fixture
def window() -> Iterator[QMainWindow]:
    """The host application's main window, shown."""
    application()
    main = QMainWindow()
    main.setCentralWidget(QLabel("the host application"))
    main.show()
    process_events()
    yield main
    main.close()
    main.deleteLater()
    process_events()


@pytest.fixture
def make_telemetry(napari, home, environ, clock) -> Iterator[MakeTelemetry]:
    """QtTelemetry for the napari-like manifest in the test's home, without a background thread."""
    application()
    made: list[QtTelemetry] = []

    def make(manifest: Manifest | str | Path = napari, **extra: str) -> QtTelemetry:
        telemetry = QtTelemetry(
            manifest,
            app_version="0.5.6",
            home=home,
            environ={**environ, **extra},
            clock=clock,
            background=False,
            flush_at_exit=False,
        )
        made.append(telemetry)
        return telemetry

    yield make
    for telemetry in made:
        telemetry.close()
        if telemetry.dialog is not None:
            telemetry.dialog.close()
            telemetry.dialog.deleteLater()
    process_events()


def first_dialog(window: QWidget, telemetry: QtTelemetry) -> ConsentDialog:
    dialog = ask_once(window, telemetry)
    assert dialog is not None
    process_events()
    assert dialog.isVisible()
    return dialog


def press(dialog: ConsentDialog, key: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    """A key press where the keyboard focus is, as the user's keyboard would deliver it."""
    QTest.keyClick(dialog.focusWidget() or dialog, key, modifier)
    process_events()


def activate(widget: QWidget) -> None:
    """Make ``widget``'s window the active one, where shortcuts and focus apply."""
    widget.activateWindow()
    assert QTest.qWaitForWindowActive(widget)


def choose(dialog: ConsentDialog, level: str) -> None:
    """Click a level's choice (on its name: a radio button reacts to clicks on its indicator and text)."""
    button = dialog.level_buttons[level]
    QTest.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))
    assert dialog.chosen_level() == level


def visible_dialogs() -> list[ConsentDialog]:
    return [
        widget for widget in QApplication.topLevelWidgets() if isinstance(widget, ConsentDialog) and widget.isVisible()
    ]


# ---- the module -------------------------------------------------------------------------------------------------
def test_importing_consentry_never_imports_qt() -> None:
    code = (
        "import sys, consentry; consentry.init; consentry.consent_request; "
        "import consentry._api, consentry._consent.asking; "
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('qtpy', 'PySide6', 'PyQt5', 'PyQt6', 'PySide2')]; "
        "assert not loaded and 'consentry.qt' not in sys.modules, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_public_names_are_pinned() -> None:
    assert sorted(consentry_qt.__all__) == [
        "Answer",
        "ConsentDialog",
        "QtPluginRecorder",
        "QtTelemetry",
        "TEMPORARY_CONSENT",
        "TelemetryIndicator",
        "ask_once",
        "describe",
    ]


# ---- the dialog -------------------------------------------------------------------------------------------------
def test_the_dialog_shows_the_manifests_text_and_levels(window, make_telemetry, napari) -> None:
    dialog = first_dialog(window, make_telemetry())
    assert napari.title in dialog.windowTitle()
    assert list(dialog.level_buttons) == ["basic", "middle", "full"]  # every level that collects something
    shown = " ".join(label.text() for label in dialog.findChildren(QLabel))
    for level in napari.levels[1:]:
        assert level.description.split()[0] in shown
        assert " ".join(level.description.split()) in " ".join(shown.split())
        assert f"Sent to {level.host}." in shown
    assert " ".join(napari.consent_text.split()) in " ".join(shown.split())
    assert dialog.level_buttons["basic"].isChecked()  # the least data is preselected; nothing is chosen yet


def test_the_default_button_is_dont_send_and_enter_records_no(window, make_telemetry, home, napari) -> None:
    telemetry = make_telemetry()
    dialog = first_dialog(window, telemetry)
    assert dialog.no_button.isDefault()
    assert not dialog.yes_button.isDefault()
    assert not dialog.temporary_button.isDefault()
    press(dialog, Qt.Key.Key_Return)  # from the level list, where the focus starts
    assert not dialog.isVisible()
    assert dialog.answer == Answer("off")
    consent = load_consent(Paths(home).app(napari.name))
    assert (consent.mode, consent.level) == ("off", "none")
    assert consent.asked_version == napari.consent_version  # an answer: not asked again for this version
    assert written(home) == [f"apps/{napari.name}/consent.json"]
    assert not telemetry.enabled
    assert not telemetry.needs_answer
    assert ask_once(window, telemetry) is None


def test_escape_means_no_and_writes_nothing(window, make_telemetry, home) -> None:
    telemetry = make_telemetry()
    dialog = first_dialog(window, telemetry)
    press(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    assert dialog.answer is None
    assert written(home) == []
    assert not telemetry.enabled
    telemetry.count("napari:layer:add_image")
    telemetry.flush()
    assert written(home) == []
    assert telemetry.needs_answer  # not answered: asked again at the next start


def test_closing_the_window_means_no_and_writes_nothing(window, make_telemetry, home) -> None:
    telemetry = make_telemetry()
    dialog = first_dialog(window, telemetry)
    assert dialog.close()
    process_events()
    assert dialog.answer is None
    assert written(home) == []
    assert not telemetry.enabled


def test_a_level_chosen_with_the_keyboard_and_yes_for_30_days(window, make_telemetry, home, napari, clock) -> None:
    telemetry = make_telemetry()
    dialog = first_dialog(window, telemetry)
    press(dialog, Qt.Key.Key_Down)  # basic -> middle
    press(dialog, Qt.Key.Key_Down)  # middle -> full
    assert dialog.chosen_level() == "full"
    QTest.mouseClick(dialog.temporary_button, Qt.MouseButton.LeftButton)
    process_events()
    assert not dialog.isVisible()
    consent = load_consent(Paths(home).app(napari.name))
    assert (consent.mode, consent.level) == ("on", "full")
    assert consent.expires == clock.today() + datetime.timedelta(days=30)
    assert telemetry.enabled
    telemetry.count("napari:layer:add_image", 2)
    telemetry.flush()
    record = Store(Paths(home).app(napari.name).store).read_day(clock.today())
    assert record is not None
    assert record.counters[("event", "napari:layer:add_image")] == 2


def test_yes_by_its_mnemonic_records_the_chosen_level_without_expiry(window, make_telemetry, home, napari) -> None:
    telemetry = make_telemetry()
    dialog = first_dialog(window, telemetry)
    choose(dialog, "middle")
    activate(dialog)
    press(dialog, Qt.Key.Key_Y, Qt.KeyboardModifier.AltModifier)  # "&Yes"
    # a shortcut "animates" the click: it lands a moment later, once Qt has run its timers
    wait_for(
        lambda: not dialog.isVisible(), "the dialog to close", pause=lambda seconds: QTest.qWait(int(seconds * 1000))
    )
    consent = load_consent(Paths(home).app(napari.name))
    assert (consent.mode, consent.level, consent.expires) == ("on", "middle", None)
    assert telemetry.decision is not None
    assert telemetry.decision.level == "middle"


def test_every_control_is_reached_with_tab(window, make_telemetry) -> None:
    dialog = first_dialog(window, make_telemetry())
    activate(dialog)
    reached = set()
    for _ in range(20):
        press(dialog, Qt.Key.Key_Tab)
        reached.add(dialog.focusWidget())
    assert {dialog.preview, dialog.no_button, dialog.yes_button, dialog.temporary_button} <= reached
    assert reached & set(dialog.level_buttons.values())  # the group is one tab stop; arrows move inside it
    press(dialog, Qt.Key.Key_W, Qt.KeyboardModifier.AltModifier)  # the preview's label: "&What this level..."
    assert dialog.focusWidget() is dialog.preview


def test_the_dialog_stays_readable_at_a_small_width(window, make_telemetry) -> None:
    dialog = first_dialog(window, make_telemetry())
    assert dialog.minimumSizeHint().width() <= 360
    dialog.resize(340, 420)
    process_events()
    content = dialog.scroll_area.widget()
    assert content.width() <= dialog.scroll_area.viewport().width()  # no sideways scrolling: the text wraps
    labels = [label for label in content.findChildren(QLabel) if label.text()]
    assert labels
    assert all(label.wordWrap() for label in labels)


# ---- the preview ------------------------------------------------------------------------------------------------
def test_the_preview_shows_the_exact_bytes_of_the_chosen_level(window, make_telemetry, napari, home, environ, clock):
    telemetry = make_telemetry()
    dialog = first_dialog(window, telemetry)
    for name in dialog.level_buttons:
        choose(dialog, name)
        shown = dialog.preview.toPlainText().encode("ascii")
        assert shown == dialog.preview_bytes() == b"".join(dialog.request.examples_upto(name))
        levels = napari.level_names[1 : napari.level_names.index(name) + 1]
        assert tuple(decode(part).level for part in dialog.request.examples_upto(name)) == levels
    # The same reports the client's own consent_request builds (but for the throwaway reporter id)...
    own = consent_request(napari, home=home, environ=environ, clock=clock)
    for mine, theirs in zip(dialog.request.levels[1:], own.levels[1:], strict=True):
        assert mine.example is not None
        assert theirs.example is not None
        ours, reference = decode(mine.example), decode(theirs.example)
        assert replace(ours, reporter=reference.reporter, system={}) == replace(reference, system={})
    # ... whose system values are those this GUI application will really send.
    choose(dialog, "middle")
    QTest.mouseClick(dialog.yes_button, Qt.MouseButton.LeftButton)
    telemetry.count("napari:layer:add_image")
    telemetry.flush()
    clock.advance(datetime.timedelta(days=1))
    session = AppSession.open(napari, home=home, environ=environ, clock=clock)
    session.prepare_reports()
    sent = {report.level: decode(report.read()) for report in session.outbox.pending()}
    examples = {choice.name: decode(choice.example) for choice in dialog.request.levels[1:3] if choice.example}
    assert sent.keys() == examples.keys() == {"basic", "middle"}
    for level, report in sent.items():
        assert report.system == examples[level].system
    assert sent["middle"].system["screens"] == "1"  # supplied by the GUI, as the preview said


# ---- the indicator ----------------------------------------------------------------------------------------------
def test_the_indicator_follows_the_answers_and_reopens_the_dialog(window, make_telemetry, home, napari, clock):
    telemetry = make_telemetry()
    indicator = TelemetryIndicator(telemetry)
    window.statusBar().addPermanentWidget(indicator)
    process_events()
    assert indicator.text() == "Telemetry: off"
    assert "not asked yet" in indicator.toolTip()

    dialog = first_dialog(window, telemetry)
    choose(dialog, "full")
    QTest.mouseClick(dialog.temporary_button, Qt.MouseButton.LeftButton)
    expires = (clock.today() + datetime.timedelta(days=30)).isoformat()
    assert indicator.text() == f"Telemetry: on (full, until {expires})"
    telemetry.count("napari:layer:add_image")

    QTest.mouseClick(indicator, Qt.MouseButton.LeftButton)  # the user asks to change it
    process_events()
    again = telemetry.dialog
    assert again is not None
    assert again is not dialog
    assert again.isVisible()
    assert again.chosen_level() == "full"  # the current answer is preselected
    choose(again, "basic")
    QTest.mouseClick(again.yes_button, Qt.MouseButton.LeftButton)
    assert indicator.text() == "Telemetry: on (basic)"

    QTest.mouseClick(indicator, Qt.MouseButton.LeftButton)
    process_events()
    assert telemetry.dialog is not None
    QTest.mouseClick(telemetry.dialog.no_button, Qt.MouseButton.LeftButton)
    assert indicator.text() == "Telemetry: off"
    assert "you said no" in indicator.toolTip()
    assert not Paths(home).app(napari.name).store.exists()  # switching off deleted what was counted
    telemetry.count("napari:layer:add_image")
    telemetry.flush()
    assert not Paths(home).app(napari.name).store.exists()


def test_the_indicator_shows_local_mode_and_a_kill_switch(make_telemetry, napari, home, environ, clock):
    consentry.set_consent(napari, "local", "basic", home=home, environ=environ, clock=clock)
    assert TelemetryIndicator(make_telemetry()).text() == "Telemetry: kept on this computer (basic)"
    switched = TelemetryIndicator(make_telemetry(DO_NOT_TRACK="1"))
    assert switched.text() == "Telemetry: off"
    assert "DO_NOT_TRACK" in switched.toolTip()
    in_ci = TelemetryIndicator(make_telemetry(CI="true"))
    assert in_ci.text() == "Telemetry: off"
    assert "nothing is recorded or sent" in in_ci.toolTip()
    consentry.set_consent(napari, "on", "middle", home=home, environ=environ, clock=clock)
    assert TelemetryIndicator(make_telemetry(CI="true")).text() == "Telemetry: off"
    consentry.set_consent(napari, "ask", "full", home=home, environ=environ, clock=clock)
    assert TelemetryIndicator(make_telemetry()).text() == "Telemetry: on, asks before sending (full)"


def test_asking_while_the_dialog_is_open_raises_the_same_dialog(window, make_telemetry) -> None:
    telemetry = make_telemetry()
    dialog = first_dialog(window, telemetry)
    assert telemetry.ask(window) is dialog
    assert visible_dialogs() == [dialog]


def test_values_the_application_supplies_are_kept_across_answers(window, make_telemetry, napari, home, clock):
    telemetry = make_telemetry()
    telemetry.supply_system(screens="2")  # before consent: remembered, not recorded
    dialog = first_dialog(window, telemetry)
    choose(dialog, "middle")
    QTest.mouseClick(dialog.yes_button, Qt.MouseButton.LeftButton)
    telemetry.count("napari:layer:add_image")  # above the consented level: dropped, as with any recorder
    telemetry.flush()
    record = Store(Paths(home).app(napari.name).store).read_day(clock.today())
    assert record is not None
    assert record.meta.system["screens"] == "2"
    assert record.counters == {}


# ---- when to ask ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra",
    [
        {"CI": "true"},
        {"GITHUB_ACTIONS": "true"},
        {"DO_NOT_TRACK": "1"},
        {"CONSENTRY_DISABLE": "1"},
        {"NAPARI_LIKE_TELEMETRY": "0"},
    ],
    ids=["CI", "GitHub Actions", "DO_NOT_TRACK", "CONSENTRY_DISABLE", "the app's own switch"],
)
def test_never_asked_in_ci_or_under_a_kill_switch(window, make_telemetry, home, extra) -> None:
    telemetry = make_telemetry(**extra)
    assert ask_once(window, telemetry) is None
    process_events()
    assert visible_dialogs() == []
    assert written(home) == []
    assert not telemetry.enabled


def test_asked_again_when_the_consent_expired(window, make_telemetry, napari, home, environ, clock) -> None:
    consentry.set_consent(
        napari, "on", "full", valid_for=datetime.timedelta(days=30), home=home, environ=environ, clock=clock
    )
    telemetry = make_telemetry()
    assert telemetry.enabled
    assert ask_once(window, telemetry) is None
    clock.advance(datetime.timedelta(days=31))
    later = make_telemetry()
    assert not later.enabled  # expired: nothing recorded meanwhile
    dialog = first_dialog(window, later)
    press(dialog, Qt.Key.Key_Escape)


def test_asked_again_when_the_application_collects_more(window, make_telemetry, napari, home, environ, clock):
    consentry.set_consent(napari, "on", "full", home=home, environ=environ, clock=clock)
    document = copy.deepcopy(napari.to_document())
    events = document["events"]
    assert isinstance(events, list)
    events.append({"name": "napari:layer:add_vectors", "level": "full", "purpose": "Vectors layers."})
    newer = parse_manifest(document, "<newer>")
    assert newer.consent_version != napari.consent_version
    telemetry = make_telemetry(newer)
    assert not telemetry.enabled
    first_dialog(window, telemetry)


# ---- plugins and failures ---------------------------------------------------------------------------------------
def test_plugin_recorders_follow_the_answer(window, make_telemetry, napari, home, clock) -> None:
    telemetry = make_telemetry()
    blobs = telemetry.plugin(load_plugin_manifest(BLOBS), "0.3.1")
    assert not blobs.enabled
    blobs.count("detect")
    dialog = first_dialog(window, telemetry)
    choose(dialog, "full")
    QTest.mouseClick(dialog.yes_button, Qt.MouseButton.LeftButton)
    assert blobs.enabled
    blobs.count("detect", 3)
    telemetry.flush()
    record = Store(Paths(home).app(napari.name).store).read_day(clock.today())
    assert record is not None
    assert record.meta.plugins == {"napari-blobs": "0.3.1"}
    assert [n for (kind, _), n in record.counters.items() if kind == "plugin"] == [3]  # none from before consent


def test_an_unreadable_manifest_leaves_the_application_working(window, make_telemetry, tmp_path, swallowed_errors):
    telemetry = make_telemetry(tmp_path / "missing.toml")
    indicator = TelemetryIndicator(telemetry)
    window.statusBar().addPermanentWidget(indicator)
    assert ask_once(window, telemetry) is None
    assert telemetry.ask(window) is None
    telemetry.count("anything")
    telemetry.plugin(load_plugin_manifest(BLOBS), "0.3.1").count("detect")
    with telemetry.command("call"):
        pass
    telemetry.flush()
    assert indicator.text() == "Telemetry: off"
    assert "could not start" in indicator.toolTip()
    assert swallowed_errors.take()  # recorded for `consentry status --verbose`, never raised
    assert window.isVisible()


def test_an_answer_that_cannot_be_saved_leaves_the_application_working(window, napari, environ, clock, tmp_path):
    home = tmp_path / "not-a-folder"
    home.write_text("a file where the Consentry home should be")
    telemetry = QtTelemetry(napari, home=home, environ=environ, clock=clock, background=False, flush_at_exit=False)
    indicator = TelemetryIndicator(telemetry)
    dialog = first_dialog(window, telemetry)
    QTest.mouseClick(dialog.yes_button, Qt.MouseButton.LeftButton)
    process_events()
    assert not telemetry.enabled
    assert telemetry.problem is not None
    assert indicator.text() == "Telemetry: off"
    assert "could not be saved" in indicator.toolTip()
    assert home.read_text() == "a file where the Consentry home should be"
    assert window.isVisible()
