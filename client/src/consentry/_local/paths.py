"""Where Consentry keeps its files: one value object, which never touches the disk itself.

Layout under the home directory (``CONSENTRY_HOME``, or the platform's user configuration directory)::

    settings.json                 user-wide settings (for example: disable every application)
    apps/<app>/consent.json       the user's answer: mode, level, date, consent version, expiry
    apps/<app>/manifest.json      the manifest the answer was given for
    apps/<app>/secret             random key of the weekly reporter id; never leaves the machine
    apps/<app>/journal/           counts flushed by the application's processes, not yet merged into the store
    apps/<app>/store.sqlite3      counts per day, not yet turned into reports
    apps/<app>/state.json         small bookkeeping: first report sent, last upload, drops (state.lock guards it)
    apps/<app>/pending/           reports waiting to be sent: exactly the bytes that will be uploaded, each with
                                  a <name>.meta beside it (the consent it was recorded under, the user's approval)
    apps/<app>/quarantine/        pending files that turned out unreadable, set aside unsent
    apps/<app>/partial/           today's reports so far, built only by `consentry preview/upload APP --today`;
                                  never queued: the uploader does not read this folder (see consentry._send.today)
    apps/<app>/history.jsonl      every upload: time, URL, status and the exact bytes; reports the user rejected
    apps/<app>/outbox.lock        held while reports are built or sent
    apps/<app>/uploader.started   when the last detached uploader was started
    apps/<app>/startup.cache      what a start with consent would otherwise work out again: the validated
                                  manifest and the application's version (see consentry._local.startup_cache)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from consentry._consent.quick import HOME_VARIABLE, default_home

__all__ = ["HOME_VARIABLE", "AppPaths", "Paths", "default_home"]


@dataclass(frozen=True)
class AppPaths:
    """The files of one application."""

    root: Path

    @property
    def consent(self) -> Path:
        """The user's answer for this application."""
        return self.root / "consent.json"

    @property
    def manifest(self) -> Path:
        """The manifest the answer was given for."""
        return self.root / "manifest.json"

    @property
    def secret(self) -> Path:
        """The random key behind the weekly reporter id."""
        return self.root / "secret"

    @property
    def journal(self) -> Path:
        """Counts flushed but not yet merged into the store, one file per flush."""
        return self.root / "journal"

    @property
    def store(self) -> Path:
        """Counts per day, not yet reported."""
        return self.root / "store.sqlite3"

    @property
    def state(self) -> Path:
        """Bookkeeping: first report, last upload, drop counters."""
        return self.root / "state.json"

    @property
    def state_lock(self) -> Path:
        """Held while ``state.json`` is read and rewritten."""
        return self.root / "state.lock"

    @property
    def uploader_started(self) -> Path:
        """Touched (under ``outbox.lock``) when a detached uploader is started: at most one an hour."""
        return self.root / "uploader.started"

    @property
    def outbox_lock(self) -> Path:
        """Held while reports are built or sent, so that no two processes do it at once."""
        return self.root / "outbox.lock"

    @property
    def pending(self) -> Path:
        """Reports waiting to be sent."""
        return self.root / "pending"

    @property
    def partial(self) -> Path:
        """Today's partial reports, built on demand for an author checking an integration; never queued."""
        return self.root / "partial"

    @property
    def quarantine(self) -> Path:
        """Pending files that could not be read back as reports, set aside unsent."""
        return self.root / "quarantine"

    @property
    def history(self) -> Path:
        """The local log of uploads."""
        return self.root / "history.jsonl"

    @property
    def startup_cache(self) -> Path:
        """The validated manifest and the application's version, kept for the next start."""
        return self.root / "startup.cache"


@dataclass(frozen=True)
class Paths:
    """The Consentry home and the layout below it."""

    home: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Paths:
        """Paths rooted at :func:`default_home`."""
        return cls(default_home(environ))

    @property
    def settings(self) -> Path:
        """User-wide settings that apply to every application."""
        return self.home / "settings.json"

    @property
    def apps(self) -> Path:
        """The folder holding one folder per application."""
        return self.home / "apps"

    def app(self, name: str) -> AppPaths:
        """The files of application ``name`` (a validated application name, so it is a safe file name)."""
        return AppPaths(self.apps / name)
