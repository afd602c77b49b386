"""One application on this machine: its manifest, files, switches and consent, read once.

:class:`AppSession` is the object the library and the CLI both work through. It reads the environment and
the files when it is opened, never on every call; its methods turn completed days into reports, send them,
and apply the user's answers.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from consentry._clock import Clock, SystemClock
from consentry._consent.answers import Consent, Decision, Mode, answer, decide, load_consent, save_consent
from consentry._consent.switches import Switches, read_switches
from consentry._local.files import read_json, write_json
from consentry._local.paths import AppPaths, Paths
from consentry.manifest import Manifest

# Reports, the store and the network are imported where used: opening a session without consent stays cheap.
if TYPE_CHECKING:
    from consentry._local.counts import Store
    from consentry._send.outbox import Outbox
    from consentry._send.upload import UploadResult
    from consentry.transport import Transport

__all__ = ["KEEP_DAYS", "AppSession", "load_saved_manifest", "purge_files"]

#: Days of counts kept in the store after they were reported, so a late flush can re-report a whole day.
KEEP_DAYS = 31


@dataclass(frozen=True)
class AppSession:
    """An application's telemetry state on this machine, as of when it was opened."""

    manifest: Manifest
    home: Paths
    switches: Switches
    consent: Consent
    clock: Clock
    #: The environment the switches were read from (read again by :meth:`current_decision`).
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(
        cls,
        manifest: Manifest,
        *,
        home: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> AppSession:
        """Read the switches and the stored consent for ``manifest``'s application."""
        env = os.environ if environ is None else environ
        paths = Paths(Path(home)) if home is not None else Paths.from_environment(env)
        return cls(
            manifest=manifest,
            home=paths,
            switches=read_switches(manifest.name, paths, env),
            consent=load_consent(paths.app(manifest.name)),
            clock=clock or SystemClock(),
            environ=env,
        )

    @property
    def paths(self) -> AppPaths:
        """This application's files."""
        return self.home.app(self.manifest.name)

    @property
    def decision(self) -> Decision:
        """What is allowed now."""
        return decide(self.manifest, self.consent, self.switches, self.clock.today())

    @property
    def store(self) -> Store:
        """The local store of counts."""
        from consentry._local.counts import Store  # noqa: PLC0415 - see the imports

        return Store(self.paths.store)

    @property
    def outbox(self) -> Outbox:
        """Pending reports and upload history."""
        from consentry._send.outbox import Outbox  # noqa: PLC0415 - see the imports

        return Outbox(self.paths)

    # ---- answers ------------------------------------------------------------------------------------------
    def set_consent(
        self, mode: Mode, level: str | None = None, *, valid_for: datetime.timedelta | None = None
    ) -> AppSession:
        """Record the user's answer; turning telemetry off deletes unsent data. Returns the updated session."""
        consent = answer(self.manifest, mode, level, now=self.clock.now(), valid_for=valid_for, previous=self.consent)
        save_consent(self.paths, consent)
        if consent.mode == "off":
            self.delete_unsent()
        else:
            self.save_manifest()
            old = self.consent.level
            lowered = (
                self.consent.mode != "off"
                and old in self.manifest.level_names
                and self.manifest.level(consent.level).rank < self.manifest.level(old).rank
            )
            if lowered:
                self.delete_unsent()  # data recorded at a higher level must not go out
        return replace(self, consent=consent)

    def set_plugin_choice(self, plugin: str, choice: Literal["allow", "deny"]) -> AppSession:
        """Allow or deny one plugin's own events; returns the updated session."""
        if choice not in ("allow", "deny"):
            raise ValueError(f"choice must be 'allow' or 'deny', got {choice!r}")
        plugins = {**self.consent.plugins, plugin: choice}
        consent = replace(self.consent, plugins=plugins)
        save_consent(self.paths, consent)
        return replace(self, consent=consent)

    def refresh_consent(self, decision: Decision) -> AppSession:
        """Store a consent silently carried over to a manifest version that collects nothing more."""
        if decision.refreshed is None:
            return self
        save_consent(self.paths, decision.refreshed)
        self.save_manifest()
        return replace(self, consent=decision.refreshed)

    def save_manifest(self) -> None:
        """Keep a copy of the manifest, so the CLI can show and send reports without the application."""
        document = self.manifest.to_document()
        if read_json(self.paths.manifest) != json.loads(json.dumps(document)):
            write_json(self.paths.manifest, document, sort_keys=False)  # the order of levels is meaningful

    def delete_unsent(self) -> int:
        """Delete the counts (journal and store) and every pending report; return how many reports were deleted."""
        from consentry._record.journal import Journal  # noqa: PLC0415 - see the imports

        Journal(self.paths.journal).clear()
        self.store.delete()
        return self.outbox.clear()

    def purge(self) -> AppSession:
        """Switch off and delete every local trace of telemetry: counts, reports, history, bookkeeping, secret.

        The answer itself stays (as "no"), so the user is not asked again for this version.
        """
        session = self.set_consent("off")
        purge_files(self.paths)
        return session

    def reporter_ids(self, days: int) -> list[str]:
        """This install's reporter ids over the last ``days`` days (without creating a secret if there is none)."""
        from consentry._send.reports import reporter_id  # noqa: PLC0415 - see the imports

        try:
            secret = bytes.fromhex(self.paths.secret.read_text("ascii").strip())
        except (OSError, ValueError):
            return []
        today = self.clock.today()
        return sorted(
            {reporter_id(secret, self.manifest.name, today - datetime.timedelta(days=n)) for n in range(days + 1)}
        )

    # ---- reports ------------------------------------------------------------------------------------------
    def merge_journal(self) -> int:
        """Merge the counts flushed by the application's processes into the store; return how many files.

        Raises :class:`~consentry._local.counts.StoreError` when the store cannot be used now.
        """
        from consentry._local.counts import merge_journal  # noqa: PLC0415 - see the imports

        return merge_journal(self.paths)

    def prepare_reports(self) -> list[Path]:
        """Write reports for every completed day not yet reported; return their files.

        Only one process at a time builds or sends reports (the outbox lock): when another one is at it, this
        does nothing and returns no files. A day that gets more counts while its reports are being built stays
        unreported, so that it is reported again, whole.
        """
        from consentry._local.files import exclusive  # noqa: PLC0415 - see the imports

        if not self.decision.record:
            return []
        with exclusive(self.paths.outbox_lock) as held:
            return self.prepare_reports_locked() if held else []

    def prepare_reports_locked(self) -> list[Path]:
        """:meth:`prepare_reports`, by a caller that holds the outbox lock."""
        from consentry._local.bookkeeping import load_secret, load_state, update_state  # noqa: PLC0415
        from consentry._send.reports import build_reports, reporter_id  # noqa: PLC0415 - see the imports

        decision = self.decision
        self.merge_journal()
        store = self.store
        today = self.clock.today()
        days = store.unreported_days(before=today)
        written: list[Path] = []
        if days:
            # The first day is settled before the secret is made: a secret without a first day means lost bookkeeping.
            first_day = load_state(self.paths).first_day
            if first_day is None:
                first_day = update_state(self.paths, lambda state: replace(state, first_day=days[0])).first_day
            secret = load_secret(self.paths)
            records = [record for record in map(store.read_day, days) if record is not None]
            for record in records:
                reports = build_reports(
                    self.manifest,
                    decision.level,
                    record,
                    reporter=reporter_id(secret, self.manifest.name, record.day),
                    first_report=first_day == record.day,
                    consent_version=self.manifest.consent_version,
                )
                written.extend(self.outbox.put(report, epoch=record.epoch) for report in reports)
            store.mark_reported(records)
        store.forget_before(today - datetime.timedelta(days=KEEP_DAYS))
        dropped = self.outbox.trim(today)
        if dropped:
            update_state(self.paths, lambda current: current.with_drop("expired or over the queue bound", len(dropped)))
        return written

    def upload(self, transport: Transport | None = None, *, force: bool = False, budget: float = 30.0) -> UploadResult:
        """Send the pending reports that may be sent (the answer is read again before each report)."""
        from consentry._send.upload import upload_pending  # noqa: PLC0415
        from consentry.transport import HttpTransport  # noqa: PLC0415 - see the imports

        return upload_pending(
            self.manifest,
            self.decision,
            self.paths,
            transport or HttpTransport(),
            self.clock,
            budget=budget,
            force=force,
            recheck=self.current_decision,
        )

    def current_decision(self) -> Decision:
        """What is allowed now, from the answer and the switches as they are now (not when the session opened)."""
        switches = read_switches(self.manifest.name, self.home, self.environ)
        return decide(self.manifest, load_consent(self.paths), switches, self.clock.today())


def purge_files(paths: AppPaths) -> None:
    """Delete every file telemetry keeps for one application but its answer; works without its manifest."""
    from consentry._local.counts import Store  # noqa: PLC0415
    from consentry._record.journal import Journal  # noqa: PLC0415 - see the imports
    from consentry._send.outbox import Outbox  # noqa: PLC0415

    Journal(paths.journal).clear()
    Store(paths.store).delete()
    Outbox(paths).clear()
    kept_files = (paths.history, paths.state, paths.secret, paths.startup_cache)
    for path in (*kept_files, paths.state_lock, paths.outbox_lock, paths.uploader_started):
        path.unlink(missing_ok=True)
    if paths.quarantine.is_dir():
        for path in paths.quarantine.iterdir():
            path.unlink(missing_ok=True)


def load_saved_manifest(paths: AppPaths) -> Manifest | None:
    """The manifest copy kept beside the consent, if readable."""
    from consentry.manifest import ManifestError, parse_manifest  # noqa: PLC0415 - a start reads its manifest itself

    document = read_json(paths.manifest)
    if document is None:
        return None
    try:
        return parse_manifest(document, str(paths.manifest))
    except ManifestError:
        return None
