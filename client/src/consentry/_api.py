"""The functions an application calls: :func:`init`, :func:`set_consent` and :func:`set_plugin_consent`."""

from __future__ import annotations

import atexit
import os
import sys
import weakref

from consentry._consent.quick import certainly_off
from consentry._guard import guard, guarded, logger
from consentry._record.null import NullRecorder
from consentry._where import find_manifest_file, warn_not_found

# Without consent, init() must cost the host next to nothing: the rest is imported when it is needed (and typing
# itself is not imported: see pyproject.toml).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from collections.abc import Mapping
    from pathlib import Path

    from consentry._clock import Clock
    from consentry._consent.answers import Consent, Mode
    from consentry._local.session import AppSession
    from consentry._record.recorder import Recorder
    from consentry.manifest import Manifest
    from consentry.transport import Transport

__all__ = ["EXIT_FLUSH_TIMEOUT", "init", "set_consent", "set_plugin_consent"]

#: The most the flush at interpreter exit waits for a flush of another thread to finish writing its journal file
#: (seconds); it never waits on the store or on another process.
EXIT_FLUSH_TIMEOUT = 0.03


def _manifest(manifest: Manifest | str | Path) -> Manifest:
    from consentry.manifest.model import Manifest  # noqa: PLC0415 - see the imports

    if isinstance(manifest, Manifest):
        return manifest
    from consentry.manifest.parse import load_manifest  # noqa: PLC0415

    return load_manifest(manifest)


def _session(
    manifest: Manifest | str | Path,
    home: str | Path | None,
    environ: Mapping[str, str] | None,
    clock: Clock | None = None,
) -> AppSession:
    from consentry._local.session import AppSession  # noqa: PLC0415 - see the imports

    return AppSession.open(_manifest(manifest), home=home, environ=environ, clock=clock)


def _before_fork(reference: weakref.ref[Recorder]) -> None:
    recorder = reference()
    if recorder is not None:
        recorder.prepare_for_fork()


def _after_fork_in_child(reference: weakref.ref[Recorder]) -> None:
    recorder = reference()
    if recorder is not None:
        with guard():
            recorder.reset_after_fork()


@guarded(NullRecorder("Consentry failed to start; telemetry is off"))
def init(
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
    prompt: bool = False,
) -> Recorder | NullRecorder:
    """Start telemetry for an application and return its recorder. Never raises.

    Without the user's consent (or with any kill switch on) this returns a :class:`NullRecorder` whose every
    method does nothing, and nothing is written or sent.

    ``manifest`` is a :class:`Manifest` or the path of a manifest file; a relative path is looked for beside the
    calling module, under the folder of its top-level package, then in the current directory, and when no such file
    exists one warning names the paths tried (see :mod:`consentry._where`). ``app_version`` defaults to the
    installed version of the manifest's distribution (with consent, the validated manifest file and that version are
    kept for the next start: see :mod:`consentry._local.startup_cache`); ``home`` and ``environ`` override
    ``CONSENTRY_HOME``
    and the environment (read once, here). With ``background`` (the default) a daemon thread flushes every
    ``flush_interval`` seconds, counts runs and active time, writes the reports of completed days and, once a day,
    starts the detached uploader (or uploads through ``transport`` itself, when one is given). ``exception_hooks``
    counts uncaught exceptions by type when the manifest collects them. ``flush_at_exit`` flushes at interpreter
    exit to a journal file, which never waits on another process. ``prompt`` first asks on the terminal, for
    command-line tools (see :func:`consentry._consent.asking.ask_in_terminal`: only on a terminal, never in CI, once
    per consent
    version, default no).
    """
    manifest, tried = find_manifest_file(manifest)
    if tried:
        return NullRecorder(warn_not_found(manifest, tried))
    reason = certainly_off(manifest, home, environ, asking=prompt)
    if reason is not None:
        return NullRecorder(reason)
    from consentry._local.startup_cache import StartupCache  # noqa: PLC0415 - what recording needs, from here on

    cache = StartupCache.open(manifest, home, environ)
    manifest = cache.manifest(manifest)
    session = _session(manifest, home, environ, clock)
    if prompt and session.decision.ask:  # a question is due: ask_in_terminal asks only on a terminal
        from consentry._consent.asking import ask_in_terminal  # noqa: PLC0415

        ask_in_terminal(manifest, home=home, environ=environ, clock=clock)
        session = _session(manifest, home, environ, clock)
    decision = session.decision
    if not decision.record:
        return NullRecorder(decision.reason)
    from consentry._record.hooks import install_exception_hooks  # noqa: PLC0415
    from consentry._record.recorder import Recorder  # noqa: PLC0415
    from consentry._record.worker import Worker  # noqa: PLC0415

    session = session.refresh_consent(decision)
    session.save_manifest()  # the detached uploader and the CLI read it
    version = app_version if app_version is not None else cache.version(manifest.distribution or manifest.name)
    cache.save(session.paths)  # only now that recording is allowed, and only if something changed
    recorder = Recorder(
        session.manifest,
        decision,
        session.paths,
        session.clock,
        app_version=version,
        plugin_choices=session.consent.plugins,
        recheck=session.current_decision,
    )
    if exception_hooks and recorder.collects_exceptions:
        recorder.when_closed(install_exception_hooks(recorder.exception))
    if background:
        worker = Worker(recorder, session, flush_interval=flush_interval, transport=transport)
        recorder.when_closed(worker.finish)
        recorder.when_forked(worker.restart_after_fork)
        worker.start()
    if flush_at_exit:

        def at_exit() -> None:
            recorder.close(timeout=EXIT_FLUSH_TIMEOUT, merge=False)  # the journal only: never wait on the store

        atexit.register(at_exit)
        recorder.when_closed(lambda: atexit.unregister(at_exit))
    if hasattr(os, "register_at_fork"):
        reference = weakref.ref(recorder)
        os.register_at_fork(
            before=lambda: _before_fork(reference), after_in_child=lambda: _after_fork_in_child(reference)
        )
    if "logging" in sys.modules:  # else nobody can be listening, and importing logging costs a tool's start
        logger.debug("consentry: recording %s at level %s", session.manifest.name, decision.level)
    return recorder


def set_consent(
    manifest: Manifest | str | Path,
    mode: Mode,
    level: str | None = None,
    *,
    valid_for: datetime.timedelta | None = None,
    home: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> Consent:
    """Record the user's answer for an application (``off``, ``local``, ``ask`` or ``on``) and return it.

    Unlike the recording functions this one raises on bad arguments (an unknown mode or level), because
    the host must know its consent screen recorded nothing. Turning telemetry off deletes unsent data.
    """
    session = _session(manifest, home, environ, clock)
    consent = session.set_consent(mode, level, valid_for=valid_for).consent
    logger.debug("consentry: consent for %s is now %s/%s", session.manifest.name, consent.mode, consent.level)
    return consent


def set_plugin_consent(
    manifest: Manifest | str | Path,
    plugin: str,
    *,
    allow: bool,
    home: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Consent:
    """Allow or deny one plugin's own events for an application; returns the stored answer."""
    session = _session(manifest, home, environ)
    return session.set_plugin_choice(plugin, "allow" if allow else "deny").consent
