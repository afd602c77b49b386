"""The functions an application calls: :func:`init` and :func:`set_consent`."""

from __future__ import annotations

import atexit
import datetime
import importlib.metadata
from collections.abc import Mapping
from pathlib import Path

from consentry._guard import guard, guarded, logger
from consentry.clock import Clock
from consentry.consent import Consent, Mode
from consentry.manifest import Manifest, load_manifest
from consentry.recorder import NullRecorder, Recorder
from consentry.session import AppSession

__all__ = ["init", "set_consent", "set_plugin_consent"]


def _manifest(manifest: Manifest | str | Path) -> Manifest:
    return manifest if isinstance(manifest, Manifest) else load_manifest(manifest)


def _app_version(manifest: Manifest, app_version: str | None) -> str:
    if app_version is not None:
        return app_version
    try:
        return importlib.metadata.version(manifest.distribution or manifest.name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@guarded(NullRecorder("Consentry failed to start; telemetry is off"))
def init(
    manifest: Manifest | str | Path,
    *,
    app_version: str | None = None,
    home: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    flush_at_exit: bool = True,
) -> Recorder | NullRecorder:
    """Start telemetry for an application and return its recorder.

    Without the user's consent (or with any kill switch on) this returns a :class:`NullRecorder` whose every
    method does nothing, and nothing is written or sent. ``manifest`` is a :class:`Manifest` or the path of a
    manifest file; ``app_version`` defaults to the installed version of the manifest's distribution. This
    function never raises.
    """
    session = AppSession.open(_manifest(manifest), home=home, environ=environ, clock=clock)
    decision = session.decision
    if not decision.record:
        return NullRecorder(decision.reason)
    session = session.refresh_consent(decision)
    recorder = Recorder(
        session.manifest,
        decision,
        session.store,
        session.clock,
        app_version=_app_version(session.manifest, app_version),
        plugin_choices=session.consent.plugins,
    )
    if flush_at_exit:
        atexit.register(recorder.close)
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
    session = AppSession.open(_manifest(manifest), home=home, environ=environ, clock=clock)
    consent = session.set_consent(mode, level, valid_for=valid_for).consent
    with guard():
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
    session = AppSession.open(_manifest(manifest), home=home, environ=environ)
    return session.set_plugin_choice(plugin, "allow" if allow else "deny").consent
