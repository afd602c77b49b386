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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from consentry._files import read_json, write_json
from consentry.clock import Clock, SystemClock
from consentry.consent import Consent, Decision, Mode, answer, decide, load_consent, save_consent
from consentry.manifest import Manifest, ManifestError, parse_manifest
from consentry.paths import AppPaths, Paths
from consentry.switches import Switches, read_switches

# Reports, the store and the network are imported where used: opening a session without consent stays cheap.
if TYPE_CHECKING:
    from consentry.outbox import Outbox
    from consentry.store import Store
    from consentry.transport import Transport
    from consentry.upload import UploadResult

__all__ = ["KEEP_DAYS", "AppSession", "load_saved_manifest"]

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
        from consentry.store import Store  # noqa: PLC0415 - see the imports

        return Store(self.paths.store)

    @property
    def outbox(self) -> Outbox:
        """Pending reports and upload history."""
        from consentry.outbox import Outbox  # noqa: PLC0415 - see the imports

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
        """Delete the store and every pending report; return how many reports were deleted."""
        self.store.delete()
        return self.outbox.clear()

    def purge(self) -> AppSession:
        """Switch off and delete every local trace of telemetry: counts, reports, history, bookkeeping, secret.

        The answer itself stays (as "no"), so the user is not asked again for this version.
        """
        session = self.set_consent("off")
        for path in (self.paths.history, self.paths.state, self.paths.secret):
            path.unlink(missing_ok=True)
        return session

    def reporter_ids(self, days: int) -> list[str]:
        """This install's reporter ids over the last ``days`` days (without creating a secret if there is none)."""
        from consentry.reports import reporter_id  # noqa: PLC0415 - see the imports

        try:
            secret = bytes.fromhex(self.paths.secret.read_text("ascii").strip())
        except (OSError, ValueError):
            return []
        today = self.clock.today()
        return sorted(
            {reporter_id(secret, self.manifest.name, today - datetime.timedelta(days=n)) for n in range(days + 1)}
        )

    # ---- reports ------------------------------------------------------------------------------------------
    def prepare_reports(self) -> list[Path]:
        """Write reports for every completed day not yet reported; return their files."""
        from consentry.reports import build_reports, reporter_id  # noqa: PLC0415 - see the imports
        from consentry.state import load_secret, load_state, save_state  # noqa: PLC0415

        decision = self.decision
        if not decision.record:
            return []
        store = self.store
        today = self.clock.today()
        days = store.unreported_days(before=today)
        written: list[Path] = []
        if days:
            state = load_state(self.paths)
            secret = load_secret(self.paths)
            for day in days:
                record = store.read_day(day)
                if record is None:
                    continue
                reports = build_reports(
                    self.manifest,
                    decision.level,
                    record,
                    reporter=reporter_id(secret, self.manifest.name, day),
                    first_report=state.first_day in (None, day),
                    consent_version=self.manifest.consent_version,
                )
                written.extend(self.outbox.put(report) for report in reports)
                if state.first_day is None:
                    state = replace(state, first_day=day)
            store.mark_reported(days)
            save_state(self.paths, state)
        store.forget_before(today - datetime.timedelta(days=KEEP_DAYS))
        dropped = self.outbox.trim(today)
        if dropped:
            save_state(self.paths, load_state(self.paths).with_drop("expired or over the queue bound", len(dropped)))
        return written

    def upload(self, transport: Transport | None = None, *, force: bool = False, budget: float = 30.0) -> UploadResult:
        """Send the pending reports that may be sent."""
        from consentry.transport import HttpTransport  # noqa: PLC0415 - see the imports
        from consentry.upload import upload_pending  # noqa: PLC0415

        return upload_pending(
            self.manifest,
            self.decision,
            self.paths,
            transport or HttpTransport(),
            self.clock,
            budget=budget,
            force=force,
        )


def load_saved_manifest(paths: AppPaths) -> Manifest | None:
    """The manifest copy kept beside the consent, if readable."""
    document = read_json(paths.manifest)
    if document is None:
        return None
    try:
        return parse_manifest(document, str(paths.manifest))
    except ManifestError:
        return None
