"""Recording: counters in memory, flushed to the local store.

:class:`Recorder` is what :func:`consentry.init` returns when the user consented; :class:`NullRecorder` is what it
returns otherwise, with the same methods doing nothing. Counting never does I/O and never raises; names
outside the manifest, or above the consented level, are dropped and the drops counted by reason.
"""

from __future__ import annotations

import collections
import datetime
import json
import re
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Protocol

from consentry._guard import guard, guarded, logger
from consentry.clock import Clock
from consentry.consent import Decision
from consentry.manifest import Manifest, PluginManifest
from consentry.spans import command_key, data_key, exception_name
from consentry.store import CounterKey, DayMeta, Store, StoreError
from consentry.system import collect_system, dependency_versions
from consentry.wire.schema import EXCEPTION_NAME, MAX_COUNT, OTHER, VERSION

__all__ = ["CommandSpan", "NullRecorder", "PluginRecorder", "Recorder", "RecorderLike"]

_RELEASE = re.compile(r"^[0-9]+(\.[0-9]+)*(\.post[0-9]+)?$")


class RecorderLike(Protocol):
    """What the host can call, whether telemetry is on or off."""

    @property
    def enabled(self) -> bool:
        """Whether anything is being recorded."""
        ...

    def count(self, event: str, n: int = 1) -> None:
        """Count ``n`` occurrences of ``event`` today."""
        ...

    def flush(self) -> None:
        """Write what was counted so far to the local store."""
        ...

    def close(self) -> None:
        """Flush and stop."""
        ...


class NullRecorder:
    """The recorder without consent: every method is a cheap no-op and nothing touches the disk."""

    enabled = False

    def __init__(self, reason: str = "telemetry is off") -> None:
        self.reason = reason

    def count(self, event: str, n: int = 1) -> None:
        """Do nothing."""

    def flush(self) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""

    def plugin(self, manifest: PluginManifest, version: str) -> NullPluginRecorder:  # noqa: ARG002 - same signature as Recorder.plugin
        """A plugin recorder that does nothing."""
        return NullPluginRecorder()

    @property
    def drops(self) -> dict[str, int]:
        """Nothing is dropped when nothing is recorded."""
        return {}

    def command(self, name: str, **params: object) -> CommandSpan:
        """A span that records nothing (the block's exceptions still propagate)."""
        return CommandSpan(None, name, params)

    def record_command(
        self,
        name: str,
        params: Mapping[str, object],
        *,
        duration: float,
        exit_code: int = 0,
        exception: str | None = None,
    ) -> None:
        """Do nothing."""

    def data(self, kind: str, data: object) -> None:
        """Do nothing."""


class NullPluginRecorder:
    """A plugin recorder that does nothing."""

    enabled = False

    def count(self, event: str, n: int = 1) -> None:
        """Do nothing."""


class CommandSpan:
    """Times a command run and records it when the block ends, with its exit status and exception type.

    The block's own exceptions propagate unchanged; only the exception's class name is recorded, never its
    message or traceback. ``SystemExit`` gives the exit code; set :attr:`exit_code` for a failure that does not
    raise.
    """

    def __init__(self, recorder: Recorder | None, name: str, params: Mapping[str, object]) -> None:
        self._recorder = recorder
        self.name = name
        self.params = dict(params)
        self.exit_code = 0
        self._start = 0.0

    def __enter__(self) -> CommandSpan:  # noqa: PYI034 - typing.Self needs Python 3.11
        if self._recorder is not None:
            self._start = self._recorder.clock.monotonic()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._recorder is None:
            return
        with guard():
            exit_code, exception = self.exit_code, exception_name(kind)
            if isinstance(error, SystemExit):
                code = error.code
                exit_code = code if isinstance(code, int) else (0 if code is None else 1)
                exception = None
            elif isinstance(error, KeyboardInterrupt):
                exit_code = 130
            elif error is not None:
                exit_code = exit_code or 1
            duration = self._recorder.clock.monotonic() - self._start
            self._recorder.record_command(
                self.name, self.params, duration=duration, exit_code=exit_code, exception=exception
            )


def public_version(version: str) -> str:
    """``version`` if it is a final release that the wire schema can carry, else ``other``."""
    return version if _RELEASE.match(version) and VERSION.regex.fullmatch(version) else OTHER


class Recorder:
    """Counts in memory for one application and flushes to its store.

    Created by :func:`consentry.init`; the host keeps it and calls :meth:`count`. Thread-safe.
    """

    enabled = True

    def __init__(
        self,
        manifest: Manifest,
        decision: Decision,
        store: Store,
        clock: Clock,
        *,
        app_version: str,
        plugin_choices: Mapping[str, str] | None = None,
        supplied_system: Mapping[str, str] | None = None,
    ) -> None:
        self.manifest = manifest
        self.decision = decision
        self.store = store
        self.clock = clock
        self.app_version = app_version if VERSION.regex.fullmatch(app_version) else OTHER
        self._levels = {level.name for level in manifest.levels_upto(decision.level)}
        self._allowed = frozenset(name for name, spec in manifest.events.items() if spec.level in self._levels)
        self._plugin_choices = dict(plugin_choices or {})
        self._supplied = dict(supplied_system or {})
        self._lock = threading.Lock()
        self._pending: dict[CounterKey, int] = {}
        self._drops: collections.Counter[str] = collections.Counter()
        self._plugins: dict[str, str] = {}
        self._system: dict[str, str] | None = None
        self._day = clock.today()
        self._day_checked = clock.monotonic()
        self.quiet: str | None = None

    # ---- counting -----------------------------------------------------------------------------------------
    def _today(self) -> datetime.date:
        now = self.clock.monotonic()
        if now - self._day_checked > 1.0:
            self._day = self.clock.today()
            self._day_checked = now
        return self._day

    def _add(self, kind: str, key: str, n: int) -> None:
        day = self._today()
        with self._lock:
            counter = (day, kind, key)
            self._pending[counter] = min(self._pending.get(counter, 0) + n, MAX_COUNT)

    def drop(self, reason: str) -> None:
        """Count something that was not recorded, by reason (shown by ``consentry status --verbose``)."""
        with self._lock:
            self._drops[reason] += 1

    @guarded(None)
    def count(self, event: str, n: int = 1) -> None:
        """Count ``n`` occurrences of ``event`` today. Unknown events and bad counts are dropped, never raised."""
        if type(n) is not int or not 1 <= n <= MAX_COUNT:
            self.drop("bad count")
            return
        try:
            allowed = event in self._allowed
        except TypeError:  # an unhashable "name"
            allowed = False
        if not allowed:
            known = type(event) is str and event in self.manifest.events
            self.drop("above the consented level" if known else "not in the manifest")
            return
        self._add("event", event, n)

    @property
    def drops(self) -> dict[str, int]:
        """How many calls were dropped, by reason."""
        with self._lock:
            return dict(self._drops)

    # ---- plugins ------------------------------------------------------------------------------------------
    @guarded(NullPluginRecorder())
    def plugin(self, manifest: PluginManifest, version: str) -> PluginRecorder:
        """A recorder scoped to a plugin's own manifest; the plugin is also listed as installed.

        Plugins that are not public are listed as ``other`` and their events are not recorded; pre-release
        versions are reported as ``other``; a plugin the user denied records nothing.
        """
        public = self._is_public(manifest)
        name = manifest.name if public else OTHER
        with self._lock:
            self._plugins[name] = public_version(version) if public else OTHER
        choice = self._plugin_choices.get(manifest.name, self.manifest.plugins.default)
        return PluginRecorder(self, manifest, enabled=public and choice == "allow")

    def _is_public(self, manifest: PluginManifest) -> bool:
        policy = self.manifest.plugins.policy
        if manifest.host != self.manifest.name or policy == "none":
            return False
        if policy == "listed":
            return manifest.name in self.manifest.plugins.public
        return manifest.public

    # ---- commands and data --------------------------------------------------------------------------------
    def command(self, name: str, **params: object) -> CommandSpan:
        """A context manager recording one run of command ``name`` with ``params`` (see :class:`CommandSpan`)."""
        return CommandSpan(self, name, params)

    @guarded(None)
    def record_command(
        self,
        name: str,
        params: Mapping[str, object],
        *,
        duration: float,
        exit_code: int = 0,
        exception: str | None = None,
    ) -> None:
        """Record a command run that was timed elsewhere."""
        spec = self.manifest.commands.get(name) if type(name) is str else None
        if spec is None or spec.level not in self._levels:
            self.drop("command not in the manifest" if spec is None else "above the consented level")
            return
        if exception is not None and (type(exception) is not str or not EXCEPTION_NAME.regex.fullmatch(exception)):
            exception = "Other"
        self._add("command", command_key(spec, params, duration=duration, exit_code=exit_code, exception=exception), 1)

    @guarded(None)
    def data(self, kind: str, data: object) -> None:
        """Record the category of some data (kind, class, dtype, dimensions, size category), never the data."""
        level = self.manifest.feature_level("data")
        if level is None or level.name not in self._levels:
            self.drop("data categories not collected")
            return
        key = data_key(kind, data) if type(kind) is str else None
        if key is None:
            self.drop("data not describable")
            return
        self._add("data", key, 1)

    # ---- system -------------------------------------------------------------------------------------------
    def supply_system(self, **values: str) -> None:
        """Values the host knows better than a probe (already binned): screens, screen_size, interface..."""
        with self._lock:
            self._supplied.update(values)
            self._system = None

    def _meta(self) -> DayMeta:
        levels = self.manifest.levels_upto(self.decision.level)
        if self._system is None:
            fields = [name for level in levels for name in level.system]
            self._system = collect_system(fields, distribution=self.manifest.distribution, supplied=self._supplied)
        dependencies = dependency_versions(name for level in levels for name in level.dependencies)
        with self._lock:
            plugins = dict(self._plugins)
        return DayMeta(self.app_version, self._system, dependencies, plugins)

    # ---- flushing -----------------------------------------------------------------------------------------
    @guarded(None)
    def flush(self) -> None:
        """Add what was counted to the store in one transaction; on a store failure, go quiet."""
        if self.quiet:
            return
        with self._lock:
            pending, self._pending = self._pending, {}
        day = self._today()
        metas = {day: self._meta()}
        metas.update((counter[0], metas[day]) for counter in pending if counter[0] not in metas)
        try:
            self.store.add(metas, pending)
        except StoreError as error:
            self.quiet = f"the local store cannot be written ({error}); recording stopped for this process"
            logger.debug("consentry: %s", self.quiet)

    def close(self) -> None:
        """Flush; the recorder keeps working if used afterwards."""
        with guard():
            self.flush()


class PluginRecorder:
    """Counts a plugin's own events through its host's recorder; plugins never touch the network."""

    def __init__(self, host: Recorder, manifest: PluginManifest, *, enabled: bool) -> None:
        self._host = host
        self.manifest = manifest
        self.enabled = enabled
        levels = host._levels  # noqa: SLF001 - the plugin recorder is part of the recorder
        self._keys = {
            name: json.dumps([manifest.name, name, spec.level])
            for name, spec in manifest.events.items()
            if spec.level in levels
        }

    @guarded(None)
    def count(self, event: str, n: int = 1) -> None:
        """Count ``n`` occurrences of the plugin's ``event`` today."""
        if not self.enabled:
            return
        if type(n) is not int or not 1 <= n <= MAX_COUNT:
            self._host.drop("bad count")
            return
        key = self._keys.get(event) if type(event) is str else None
        if key is None:
            self._host.drop(f"not in the manifest of plugin {self.manifest.name}")
            return
        self._host._add("plugin", key, n)  # noqa: SLF001 - the plugin recorder is part of the recorder
