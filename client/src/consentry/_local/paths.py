"""Where Consentry keeps its files: the one place that spells their names; never touches the disk itself.

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

The system-wide administrator file is ``CONSENTRY_POLICY_FILE``, else :func:`policy_file`'s platform location.
Importing this module is cheap (no pathlib, no dataclasses): the quick check that telemetry is off reads
:data:`CONSENT_FILE` of :data:`APPS_FOLDER` before anything else is imported.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not imported from typing: this module must stay cheap to import (see pyproject.toml)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = [
    "APPS_FOLDER",
    "CONSENT_FILE",
    "HOME_VARIABLE",
    "POLICY_VARIABLE",
    "AppPaths",
    "Paths",
    "default_home",
    "home_folder",
    "policy_file",
]

APPS_FOLDER = "apps"
CONSENT_FILE = "consent.json"
SETTINGS_FILE = "settings.json"
POLICY_FILE = "policy.json"
HOME_VARIABLE = "CONSENTRY_HOME"
#: The environment variable naming the system-wide policy file instead of the platform's location.
POLICY_VARIABLE = "CONSENTRY_POLICY_FILE"


def home_folder(environ: Mapping[str, str]) -> str:
    """The Consentry home as text: ``CONSENTRY_HOME`` if set, else the platform's user configuration folder."""
    override = environ.get(HOME_VARIABLE, "").strip()
    if override:
        return os.path.expanduser(override)  # noqa: PTH111 - os.path: pathlib costs more to import than this module
    user = os.path.expanduser("~")  # noqa: PTH111
    if sys.platform == "win32":
        return os.path.join(environ.get("APPDATA") or os.path.join(user, "AppData", "Roaming"), "consentry")  # noqa: PTH118
    if sys.platform == "darwin":
        return os.path.join(user, "Library", "Application Support", "consentry")  # noqa: PTH118
    base = environ.get("XDG_CONFIG_HOME", "").strip()
    return os.path.join(base if os.path.isabs(base) else os.path.join(user, ".config"), "consentry")  # noqa: PTH117, PTH118


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """The Consentry home: ``CONSENTRY_HOME`` if set, else the platform's user configuration directory."""
    from pathlib import Path  # noqa: PLC0415 - see the imports

    return Path(home_folder(os.environ if environ is None else environ))


class _Location:
    """A value object of one path (hashable, compared by value), without importing dataclasses."""

    __slots__ = ("_path",)

    def __init__(self, path: Path) -> None:
        self._path = path

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._path == self._path

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._path))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._path!r})"


class AppPaths(_Location):
    """The files of one application."""

    __slots__ = ()

    @property
    def root(self) -> Path:
        """The application's folder."""
        return self._path

    @property
    def consent(self) -> Path:
        """The user's answer."""
        return self._path / CONSENT_FILE

    @property
    def manifest(self) -> Path:
        """The manifest the answer was given for."""
        return self._path / "manifest.json"

    @property
    def secret(self) -> Path:
        """The random key of the weekly reporter id."""
        return self._path / "secret"

    @property
    def journal(self) -> Path:
        """Flushed counts not yet merged into the store."""
        return self._path / "journal"

    @property
    def store(self) -> Path:
        """The local store of counts per day."""
        return self._path / "store.sqlite3"

    @property
    def state(self) -> Path:
        """The small bookkeeping file."""
        return self._path / "state.json"

    @property
    def state_lock(self) -> Path:
        """Held while ``state.json`` is changed."""
        return self._path / "state.lock"

    @property
    def uploader_started(self) -> Path:
        """When the last detached uploader was started."""
        return self._path / "uploader.started"

    @property
    def outbox_lock(self) -> Path:
        """Held while reports are built or sent."""
        return self._path / "outbox.lock"

    @property
    def pending(self) -> Path:
        """Reports waiting to be sent."""
        return self._path / "pending"

    @property
    def partial(self) -> Path:
        """Today's reports so far (``--today``)."""
        return self._path / "partial"

    @property
    def quarantine(self) -> Path:
        """Pending files that turned out unreadable."""
        return self._path / "quarantine"

    @property
    def history(self) -> Path:
        """Every upload."""
        return self._path / "history.jsonl"

    @property
    def startup_cache(self) -> Path:
        """What a start with consent would otherwise work out again."""
        return self._path / "startup.cache"


class Paths(_Location):
    """The Consentry home of one user."""

    __slots__ = ()

    @property
    def home(self) -> Path:
        """The home folder."""
        return self._path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Paths:
        """The home named by ``CONSENTRY_HOME``, else the platform's user configuration directory."""
        return cls(default_home(environ))

    @property
    def settings(self) -> Path:
        """User-wide settings."""
        return self._path / SETTINGS_FILE

    @property
    def apps(self) -> Path:
        """The folder of every application's files."""
        return self._path / APPS_FOLDER

    def app(self, name: str) -> AppPaths:
        """The files of application ``name``."""
        return AppPaths(self.apps / name)


def policy_file(environ: Mapping[str, str]) -> Path:
    """The system-wide administrator file: ``CONSENTRY_POLICY_FILE`` if set, else the platform's location."""
    from pathlib import Path  # noqa: PLC0415 - see the imports

    override = environ.get(POLICY_VARIABLE, "").strip()
    if override:
        return Path(override)
    if sys.platform == "win32":
        return Path(environ.get("PROGRAMDATA", r"C:\ProgramData")) / "consentry" / POLICY_FILE
    if sys.platform == "darwin":
        return Path("/Library/Application Support/consentry") / POLICY_FILE
    return Path("/etc/consentry") / POLICY_FILE
