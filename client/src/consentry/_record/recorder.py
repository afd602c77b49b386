"""Recording: counters in memory, flushed to the journal and merged into the local store.

:class:`Recorder` is what :func:`consentry.init` returns when the user consented; :class:`NullRecorder` is what it
returns otherwise, with the same methods doing nothing. Counting never does I/O, never takes a lock and never
raises; names outside the manifest, or above the consented level, are dropped and the drops counted by reason.

A flush first reads the answer again: if the user switched off (or gave another answer) since the application
started, what was counted is discarded and recording stops. Otherwise it writes what was counted to a journal
file of its own (:mod:`consentry._record.journal`), which never waits on another process, then merges the journal into
the store, which may. The flush at exit and every flush in a forked child only write the journal.
"""

from __future__ import annotations

import collections
import datetime
import json
import re
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from consentry._clock import Clock
from consentry._consent.answers import Decision
from consentry._guard import guard, guarded, logger
from consentry._local.bookkeeping import update_state
from consentry._local.paths import AppPaths
from consentry._record.journal import Batch, CounterKey, DayMeta, Journal
from consentry._record.null import NullPluginRecorder
from consentry._record.spans import CommandSpan, data_key, exception_name
from consentry._record.system import (
    bin_screen_scale,
    bin_screen_width,
    bin_screens,
    collect_system,
    dependency_versions,
)
from consentry._record.tally import Tallies
from consentry.manifest import Manifest, PluginManifest
from consentry.wire.bins import command_key
from consentry.wire.schema import EXCEPTION_NAME, MAX_COUNT, OTHER, SYSTEM_FIELDS, VERSION

__all__ = ["PluginRecorder", "Recorder", "RecorderLike", "public_version"]

_RELEASE = re.compile(r"^[0-9]+(\.[0-9]+)*(\.post[0-9]+)?$")
_ONE = 1  # compared by identity on the hot path: CPython shares the small integer 1, and True is not it


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


def public_version(version: str) -> str:
    """``version`` if it is a final release that the wire schema can carry, else ``other``."""
    return version if _RELEASE.match(version) and VERSION.regex.fullmatch(version) else OTHER


class Recorder:
    """Counts in memory for one application and flushes to its store.

    Created by :func:`consentry.init`; the host keeps it and calls :meth:`count`. Every method may be called
    from any thread.
    """

    enabled = True

    def __init__(
        self,
        manifest: Manifest,
        decision: Decision,
        paths: AppPaths,
        clock: Clock,
        *,
        app_version: str,
        plugin_choices: Mapping[str, str] | None = None,
        supplied_system: Mapping[str, str] | None = None,
        recheck: Callable[[], Decision] | None = None,
    ) -> None:
        self.manifest = manifest
        self.decision = decision
        self.paths = paths
        self.journal = Journal(paths.journal)
        self.clock = clock
        self.app_version = app_version if VERSION.regex.fullmatch(app_version) else OTHER
        self.levels = frozenset(level.name for level in manifest.levels_upto(decision.level))
        allowed = [name for name, spec in manifest.events.items() if spec.level in self.levels]
        self._tallies = Tallies(prefill=allowed)
        self._local = self._tallies.local
        self._plugin_choices = dict(plugin_choices or {})
        self._supplied = dict(supplied_system or {})
        self._recheck = recheck
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._drops: collections.Counter[str] = collections.Counter()
        self._drops_saved: collections.Counter[str] = collections.Counter()
        self._plugins: dict[str, str] = {}
        self._system: dict[str, str] | None = None
        self._dependencies: dict[str, str] | None = None
        self._activity_marked = False
        self._active_since_tick = False
        self._closers: list[Callable[[], None]] = []
        self._forked_children: list[Callable[[], None]] = []
        self._written: tuple[datetime.date, DayMeta] | None = None  # the last day and snapshot written
        self.forked = False
        self.quiet: str | None = None

    # ---- counting -----------------------------------------------------------------------------------------
    def count(self, event: str, n: int = 1) -> None:
        """Count ``n`` occurrences of ``event`` today. Unknown events and bad counts are dropped, never raised."""
        try:
            if n is _ONE or (n.__class__ is int and 0 < n <= MAX_COUNT):
                self._local.counts[event] += n  # KeyError: not an allowed event, or a new thread
                return
        except Exception:  # noqa: BLE001, S110 - the slow path below sorts out why
            pass
        self._count_slow(event, n)

    @guarded(None)
    def _count_slow(self, event: object, n: object) -> None:
        if type(n) is not int or not 1 <= n <= MAX_COUNT:
            self.drop("bad count")
            return
        try:
            allowed = event in self._tallies.mine()
        except TypeError:  # an unhashable "name"
            allowed = False
        if not allowed or type(event) is not str:
            known = type(event) is str and event in self.manifest.events
            self.drop("above the consented level" if known else "not in the manifest")
            return
        self._tallies.add(event, n)

    def _add(self, kind: str, key: str, n: int) -> None:
        self._tallies.add((kind, key), n)

    def drop(self, reason: str) -> None:
        """Count something that was not recorded, by reason (shown by ``consentry status --verbose``)."""
        with self._lock:
            self._drops[reason] += 1

    @property
    def drops(self) -> dict[str, int]:
        """How many calls this process dropped, by reason."""
        with self._lock:
            return dict(self._drops)

    # ---- plugins ------------------------------------------------------------------------------------------
    @guarded(NullPluginRecorder())
    def plugin(self, manifest: PluginManifest, version: str) -> PluginRecorder:
        """A recorder scoped to a plugin's own manifest; the plugin is also listed as installed.

        Plugins that are not public are listed as ``other`` and their events are not recorded. A public plugin
        installed in a version that is not a final release (``1.0rc1``, ``0.4.dev3``, ``0.3.1+local``) is skipped
        entirely, as NAP-8 skips it: neither listed nor recorded. A plugin the user denied records nothing.
        """
        public = self._is_public(manifest)
        release = public_version(version) if version.__class__ is str else OTHER  # a host may pass anything
        if public and release == OTHER:
            return PluginRecorder(self, manifest, enabled=False)
        with self._lock:
            self._plugins[manifest.name if public else OTHER] = release if public else OTHER
        choice = self._plugin_choices.get(manifest.name, self.manifest.plugins.default)
        return PluginRecorder(self, manifest, enabled=public and choice == "allow")

    def _is_public(self, manifest: PluginManifest) -> bool:
        policy = self.manifest.plugins.policy
        if manifest.host != self.manifest.name or policy == "none":
            return False
        if policy == "listed":
            return manifest.name in self.manifest.plugins.public
        return manifest.public

    # ---- commands, data, exceptions, activity ------------------------------------------------------------
    def command(self, name: str, **params: object) -> CommandSpan:
        """One run of command ``name`` with ``params``: a context manager or a decorator (see CommandSpan)."""
        return CommandSpan(self, name, params)

    def monotonic(self) -> float:
        """The clock's monotonic seconds (for spans)."""
        return self.clock.monotonic()

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
        if spec is None or spec.level not in self.levels:
            self.drop("command not in the manifest" if spec is None else "above the consented level")
            return
        if exception is not None and (type(exception) is not str or not EXCEPTION_NAME.regex.fullmatch(exception)):
            exception = "Other"
        if type(exit_code) is not int or isinstance(duration, bool) or not isinstance(duration, (int, float)):
            self.drop("bad command record")
            return
        self._add("command", command_key(spec, params, duration=duration, exit_code=exit_code, exception=exception), 1)

    def _feature(self, feature: str) -> bool:
        level = self.manifest.feature_level(feature)
        return level is not None and level.name in self.levels

    @guarded(None)
    def data(self, kind: str, data: object) -> None:
        """Record the category of some data (kind, class, dtype, dimensions, size category), never the data."""
        if not self._feature("data"):
            self.drop("data categories not collected")
            return
        key = data_key(kind, data) if type(kind) is str else None
        if key is None:
            self.drop("data not describable")
            return
        self._add("data", key, 1)

    @property
    def collects_exceptions(self) -> bool:
        """Whether uncaught exceptions are counted at the consented level."""
        return self._feature("exceptions")

    @guarded(None)
    def exception(self, kind: type[BaseException]) -> None:
        """Count an uncaught exception by class name (called by the exception hooks)."""
        name = exception_name(kind)
        if name is not None and self.collects_exceptions:
            self._add("exception", name, 1)

    @property
    def collects_activity(self) -> bool:
        """Whether runs and active time are counted at the consented level."""
        return self._feature("activity")

    def mark_active(self) -> None:
        """Say the user is active now. Once called, only 10-minute steps with activity count as active time."""
        self._activity_marked = True
        self._active_since_tick = True

    @guarded(None)
    def add_run(self) -> None:
        """Count one run (the process lived longer than a minute); called by the background worker."""
        if self.collects_activity:
            self._add("runs", "", 1)

    @guarded(None)
    def tick_activity(self) -> None:
        """Close a 10-minute step: count it as active unless the host marks activity and did not this time."""
        if self.collects_activity and (self._active_since_tick or not self._activity_marked):
            self._add("active_minutes", "", 10)
        self._active_since_tick = False

    # ---- system -------------------------------------------------------------------------------------------
    @guarded(None)
    def supply_system(self, **values: str) -> None:
        """Values the host knows better than a probe, already binned: ``screens="2"``, ``interface="gui"``..."""
        checked: dict[str, str] = {}
        for name, value in values.items():
            node = SYSTEM_FIELDS.get(name)
            try:
                if node is None:
                    raise ValueError(name)  # noqa: TRY301 - one path for unknown fields and bad values
                checked[name] = str(node.check(value, name))
            except ValueError:
                self.drop("bad system value")
        with self._lock:
            self._supplied.update(checked)
            self._system = None

    @guarded(None)
    def supply_screens(self, count: int, width: int | None = None, scale: float | None = None) -> None:
        """Number of screens, width of the main screen in logical pixels and its scaling; binned here."""
        values = {"screens": bin_screens(count)}
        if width is not None:
            values["screen_size"] = bin_screen_width(width)
        if scale is not None:
            values["screen_scale"] = bin_screen_scale(scale)
        self.supply_system(**values)

    def _meta(self) -> DayMeta:
        levels = self.manifest.levels_upto(self.decision.level)
        with self._lock:
            supplied, system = dict(self._supplied), self._system
            plugins = dict(self._plugins)
        if system is None:
            fields = [name for level in levels for name in level.system]
            system = collect_system(fields, distribution=self.manifest.distribution, supplied=supplied)
            with self._lock:
                self._system = system
        if self._dependencies is None:
            self._dependencies = dependency_versions(name for level in levels for name in level.dependencies)
        return DayMeta(self.app_version, system, self._dependencies, plugins)

    # ---- flushing -----------------------------------------------------------------------------------------
    @guarded(None)
    def flush(self, *, timeout: float | None = None, day: datetime.date | None = None, merge: bool = True) -> None:
        """Write what was counted to a journal file, then (with ``merge``) merge the journal into the store.

        ``timeout`` bounds the wait for another flush of this process to finish writing its file (at exit: a few
        milliseconds); past it, this flush writes a file of its own anyway. The counts belong to ``day``, by
        default today; the background thread flushes at midnight with the day that ended, so each day gets what
        was counted during it. Merging waits for other processes that hold the store; a forked child never
        merges (SQLite's locks may not have survived the fork), its parent or the next run does.
        """
        if self.quiet:
            return
        waited = self._flush_lock.acquire(timeout=-1 if timeout is None else timeout)
        try:
            if not self._consent_holds():
                return
            self._write(day or self.clock.today())
        finally:
            if waited:
                self._flush_lock.release()
        if merge and not self.forked and not self.quiet:
            self._merge()

    def _consent_holds(self) -> bool:
        """Whether the answer is still the one recording started under; if not, discard the counts and stop."""
        if self._recheck is None:
            return True
        now = self._recheck()
        if now.record and now.epoch == self.decision.epoch and now.level == self.decision.level:
            return True
        discarded = sum(self._tallies.take().values())
        self.quiet = f"the answer changed while the application ran ({now.reason}); recording stopped"
        logger.debug("consentry: %s; %d counts discarded", self.quiet, discarded)
        return False

    def _write(self, day: datetime.date) -> None:
        """Write what was counted since the last flush; a day's snapshot even without counts (the install ran)."""
        added = self._tallies.take()
        meta = self._meta()
        if added or self._written != (day, meta):
            counters: dict[CounterKey, int] = {}
            for key, n in added.items():
                kind, name = ("event", key) if isinstance(key, str) else key
                counters[(day, kind, name)] = n
            try:
                self.journal.write(Batch(self.decision.epoch or "", {day: meta}, counters))
            except OSError as error:
                self.quiet = f"the journal cannot be written ({error}); recording stopped for this process"
                logger.debug("consentry: %s", self.quiet)
                with self._lock:  # what was taken is lost: say so (status --verbose), if the state can be written
                    self._drops["counts lost: the journal cannot be written"] += sum(added.values())
                self._save_drops()
                return
            self._written = (day, meta)
        self._save_drops()

    def _merge(self) -> None:
        from consentry._local.counts import StoreError, merge_journal  # noqa: PLC0415 - SQLite only when merging

        try:
            merge_journal(self.paths)
        except (StoreError, OSError) as error:  # the counts are safe in the journal; a later merge takes them
            logger.debug("consentry: journal not merged now: %s", error)

    def _save_drops(self) -> None:
        with self._lock:
            new = self._drops - self._drops_saved
            self._drops_saved = self._drops.copy()
        if new:
            try:
                update_state(self.paths, lambda state: state.with_drops(dict(new)))
            except OSError:
                logger.debug("consentry: could not record %d drops", sum(new.values()))

    def prepare_for_fork(self) -> None:
        """Before a fork: settle what a flush in the child would otherwise compute, and import, for the first time.

        A module that another thread is importing at the moment of a fork stays locked for ever in the child
        (CPython keeps a lock per module being imported, and the child does not have the importing thread). So the
        child must never import for the first time: here, in the forking thread, whatever import another thread
        has in progress is waited for, and the snapshot of the install is computed once, for both processes.
        """
        with guard():
            self._meta()

    def reset_after_fork(self) -> None:
        """In a forked child: forget the counts and drops inherited from the parent, which the parent will flush.

        Locks are replaced: the child may have inherited them held by threads it does not have. From now on this
        process only writes journal files (never SQLite), and its background thread is started again, lazily,
        by the first count.
        """
        self.forked = True
        self._tallies.reset(on_first_use=self._after_fork_first_count)
        self._local = self._tallies.local
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._drops = collections.Counter()
        self._drops_saved = collections.Counter()

    def _after_fork_first_count(self) -> None:
        for action in self._forked_children:
            with guard():
                action()

    def when_forked(self, action: Callable[[], None]) -> None:
        """Run ``action`` in a forked child when it first counts (restarting the background thread)."""
        self._forked_children.append(action)

    def when_closed(self, action: Callable[[], None]) -> None:
        """Run ``action`` once, when the recorder is closed (stopping its thread, removing its hooks...)."""
        self._closers.append(action)

    def close(self, *, timeout: float | None = None, merge: bool = True) -> None:
        """Stop the background work and flush. Counting afterwards still works until the next flush."""
        with guard():
            closers, self._closers = self._closers, []
            for action in closers:
                action()
            self.flush(timeout=timeout, merge=merge)


class PluginRecorder:
    """Counts a plugin's own events through its host's recorder; plugins never touch the network."""

    def __init__(self, host: Recorder, manifest: PluginManifest, *, enabled: bool) -> None:
        self._host = host
        self.manifest = manifest
        self.enabled = enabled
        self._keys = {
            name: ("plugin", json.dumps([manifest.name, name, spec.level]))
            for name, spec in manifest.events.items()
            if spec.level in host.levels
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
        self._host._tallies.add(key, n)  # noqa: SLF001 - the plugin recorder is part of the recorder
