"""An application's telemetry in a Qt program: the recorder, started again whenever the user's answer changes.

:class:`QtTelemetry` wraps :func:`consentry.init`: it records nothing until the user says yes, and when the
user answers in the consent dialog (first run, or later through the status-bar indicator) it closes the old
recorder, records the answer with :func:`consentry.set_consent` and starts the recorder the new answer allows.
It also tells Consentry what a GUI knows best: the interface is ``gui`` and the screens' number, width and scale.

Like every entry point of Consentry, nothing here raises into the host: a failure leaves telemetry off.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from pathlib import Path

from qtpy.QtCore import QObject, Signal
from qtpy.QtGui import QGuiApplication
from qtpy.QtWidgets import QWidget

from consentry._api import init, set_consent
from consentry._clock import Clock
from consentry._consent.answers import Consent, Decision
from consentry._consent.asking import ConsentRequest, consent_request
from consentry._guard import guard, guarded, logger
from consentry._local.session import AppSession
from consentry._record.null import NullPluginRecorder, NullRecorder
from consentry._record.recorder import PluginRecorder, Recorder
from consentry._record.spans import CommandSpan
from consentry._record.system import (
    bin_screen_scale,
    bin_screen_width,
    bin_screens,
    collect_system,
    dependency_versions,
)
from consentry._where import find_manifest_file, warn_not_found
from consentry.manifest import Manifest, PluginManifest, load_manifest
from consentry.qt.dialog import TEMPORARY_CONSENT, Answer, ConsentDialog
from consentry.transport import Transport

__all__ = ["QtPluginRecorder", "QtTelemetry", "ask_once"]


class QtPluginRecorder:
    """A plugin's recorder that follows its host's: counts go to whichever recorder the current answer allows."""

    def __init__(self, manifest: PluginManifest, version: str) -> None:
        self.manifest = manifest
        self.version = version
        self.recorder: PluginRecorder | NullPluginRecorder = NullPluginRecorder()

    @property
    def enabled(self) -> bool:
        """Whether the plugin's events are being recorded."""
        return self.recorder.enabled

    def count(self, event: str, n: int = 1) -> None:
        """Count ``n`` occurrences of the plugin's ``event`` today (see :meth:`PluginRecorder.count`)."""
        self.recorder.count(event, n)


class QtTelemetry(QObject):
    """Telemetry for a Qt application, following the user's answers.

    Takes the arguments of :func:`consentry.init`. Count through it as through a recorder (:meth:`count`,
    :meth:`plugin`, :meth:`data`, :meth:`command`); :attr:`changed` is emitted after every answer. A manifest
    that cannot be read, or any other failure, leaves telemetry off and the application unaffected. Create it once
    the ``QApplication`` exists, so that it can read the screens.
    """

    changed = Signal()

    def __init__(
        self,
        manifest: Manifest | str | Path,
        *,
        app_version: str | None = None,
        home: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        background: bool = True,
        flush_interval: float = 600.0,
        transport: Transport | None = None,
        exception_hooks: bool = True,
        flush_at_exit: bool = True,
        temporary: datetime.timedelta = TEMPORARY_CONSENT,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._home = home
        self._environ = environ
        self._clock = clock
        #: init() with this application's options: called again after every answer.
        self._init = functools.partial(
            init,
            app_version=app_version,
            home=home,
            environ=environ,
            clock=clock,
            background=background,
            flush_interval=flush_interval,
            transport=transport,
            exception_hooks=exception_hooks,
            flush_at_exit=flush_at_exit,
        )
        self.temporary = temporary
        self.manifest: Manifest | None = None
        self.session: AppSession | None = None
        self.recorder: Recorder | NullRecorder = NullRecorder("Consentry failed to start; telemetry is off")
        self.dialog: ConsentDialog | None = None
        #: Why the last answer could not be stored, if it could not (a read-only disk...).
        self.problem: str | None = None
        self._plugins: list[QtPluginRecorder] = []
        self._supplied: dict[str, str] = {}
        with guard():
            if not isinstance(manifest, Manifest):
                manifest, tried = find_manifest_file(manifest)  # as init() does, for this caller's package
                if tried:
                    warn_not_found(manifest, tried)
            self.manifest = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
            self._start()

    # ---- the state ----------------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """Whether anything is being recorded."""
        return self.recorder.enabled

    @property
    def consent(self) -> Consent | None:
        """The stored answer, as of the last start (``None`` if Consentry could not start)."""
        return self.session.consent if self.session is not None else None

    @property
    def decision(self) -> Decision | None:
        """What the answer, the kill switches and the date allow now (``None`` if Consentry could not start)."""
        return self.session.decision if self.session is not None else None

    @property
    def needs_answer(self) -> bool:
        """Whether the question should be asked: never answered for this consent version, or expired.

        Never in CI, never under a kill switch.
        """
        session = self.session
        if session is None or session.switches.disabled or session.switches.ci:
            return False
        return session.decision.ask

    def _start(self) -> None:
        """Open the session and start the recorder the stored answer allows."""
        if self.manifest is None:
            return
        self.session = AppSession.open(self.manifest, home=self._home, environ=self._environ, clock=self._clock)
        self.recorder = self._init(self.manifest)
        if self.recorder.enabled:
            self.recorder.supply_system(**{**self.gui_system(), **self._supplied})
        for plugin in self._plugins:
            plugin.recorder = self.recorder.plugin(plugin.manifest, plugin.version)

    def gui_system(self) -> dict[str, str]:
        """What the application's GUI says about this machine, binned: interface, screens, width and scale."""
        values = {"interface": "gui"}
        application = QGuiApplication.instance()
        if isinstance(application, QGuiApplication):
            screens = QGuiApplication.screens()
            values["screens"] = bin_screens(len(screens))
            primary = QGuiApplication.primaryScreen()
            if primary is not None:
                values["screen_size"] = bin_screen_width(primary.size().width())
                values["screen_scale"] = bin_screen_scale(primary.devicePixelRatio())
        return values

    # ---- asking -------------------------------------------------------------------------------------------
    def request(self) -> ConsentRequest | None:
        """What the consent dialog shows: the examples carry this GUI's values, as the real reports will."""
        if self.manifest is None:
            return None
        manifest = self.manifest
        fields = [name for level in manifest.levels for name in level.system]
        machine = {
            "system": collect_system(fields, distribution=manifest.distribution, supplied=self.gui_system()),
            "dependencies": dependency_versions(name for level in manifest.levels for name in level.dependencies),
        }
        return consent_request(
            manifest, home=self._home, environ=self._environ, clock=self._clock, example_machine=machine
        )

    @guarded(None)
    def ask(self, parent: QWidget | None = None) -> ConsentDialog | None:
        """Open the consent dialog (window-modal, not blocking) whatever the state; the answer applies itself.

        For the user's own request (a menu item, the status-bar indicator); at start-up use :func:`ask_once`.
        Returns the dialog, or ``None`` when Consentry could not start.
        """
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            self.dialog.activateWindow()
            return self.dialog
        request = self.request()
        if request is None:
            return None
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = ConsentDialog(request, parent, temporary=self.temporary)
        self.dialog.answered.connect(self.answer)
        self.dialog.open()
        return self.dialog

    @guarded(None)
    def answer(self, answer: Answer) -> Consent | None:
        """Record the user's answer and start recording (or stop) accordingly; ``None`` if it was not stored.

        What was counted under the previous answer is flushed first, so that a "no" deletes it with the rest.
        """
        if self.manifest is None:
            return None
        self.recorder.close()
        consent = None
        try:
            consent = set_consent(
                self.manifest,
                answer.mode,
                answer.level,
                valid_for=answer.valid_for,
                home=self._home,
                environ=self._environ,
                clock=self._clock,
            )
            self.problem = None
        except OSError as error:  # a read-only or full disk: the answer is not stored, telemetry stays as it was
            self.problem = f"your answer could not be saved ({type(error).__name__})"
            logger.debug("consentry: %s", self.problem)
        finally:
            self._start()
            self.changed.emit()
        return consent

    # ---- recording ----------------------------------------------------------------------------------------
    def count(self, event: str, n: int = 1) -> None:
        """Count ``n`` occurrences of ``event`` today (see :meth:`consentry.Recorder.count`)."""
        self.recorder.count(event, n)

    @guarded(None)
    def data(self, kind: str, data: object) -> None:
        """Record the category of some data, never the data (see :meth:`consentry.Recorder.data`)."""
        self.recorder.data(kind, data)

    def command(self, name: str, **params: object) -> CommandSpan:
        """One run of a command, as a context manager or a decorator (see :meth:`consentry.Recorder.command`)."""
        return self.recorder.command(name, **params)

    @guarded(None)
    def mark_active(self) -> None:
        """Say the user is active now (see :meth:`consentry.Recorder.mark_active`)."""
        self.recorder.mark_active()

    @guarded(None)
    def supply_system(self, **values: str) -> None:
        """Values the application knows better than a probe, kept across answers."""
        self._supplied.update(values)
        self.recorder.supply_system(**values)

    def plugin(self, manifest: PluginManifest, version: str) -> QtPluginRecorder:
        """A plugin's recorder, kept pointing at the current recorder (see :meth:`consentry.Recorder.plugin`)."""
        plugin = QtPluginRecorder(manifest, version)
        with guard():
            plugin.recorder = self.recorder.plugin(manifest, version)
            self._plugins.append(plugin)
        return plugin

    @guarded(None)
    def flush(self) -> None:
        """Write what was counted so far to the local store."""
        self.recorder.flush()

    @guarded(None)
    def close(self) -> None:
        """Flush and stop recording (the application is quitting)."""
        self.recorder.close()


@guarded(None)
def ask_once(parent: QWidget | None, telemetry: QtTelemetry) -> ConsentDialog | None:
    """Open the consent dialog if an answer is needed, and return it; else return ``None``.

    An answer is needed when the user never answered this consent version (the manifest now collects more) or
    the answer expired. Never asks in CI or under a kill switch. The dialog is window-modal and does not block;
    the user's choice is recorded when made, and dismissing it (Escape, closing it) records nothing, so the
    question comes back at the next start.
    """
    if not telemetry.needs_answer:
        return None
    return telemetry.ask(parent)
