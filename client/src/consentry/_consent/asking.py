"""Asking for consent: everything a consent screen needs, and a terminal prompt for command-line tools.

:func:`consent_request` returns the manifest's text, each level's description and host, and for each level an
example of the exact report it would send, built by the real report builder from this machine's actual binned
system values (with an example count of 1 for each event, and a throwaway reporter id). Nothing is written until
the user answers through :meth:`ConsentRequest.answer`.

:func:`ask_in_terminal` asks on the terminal: only when both stdin and stdout are terminals, never in CI or
under a kill switch, at most once per consent version, and the default answer (Enter) is no.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from consentry._clock import Clock
from consentry._consent.answers import Consent, Mode
from consentry._local.counts import DayMeta, DayRecord
from consentry._local.session import AppSession
from consentry._record.system import collect_system, dependency_versions
from consentry._send.reports import build_reports, reporter_id
from consentry.manifest import NONE_LEVEL, Manifest
from consentry.wire import encode

__all__ = ["ConsentRequest", "LevelChoice", "ask_in_terminal", "consent_request"]


@dataclass(frozen=True)
class LevelChoice:
    """One level as a consent screen shows it.

    ``example`` is the exact report this level adds (``None`` for ``none``); consenting to a level sends the
    examples of that level and of every level before it.
    """

    name: str
    description: str
    host: str | None
    example: bytes | None


@dataclass(frozen=True)
class ConsentRequest:
    """What a consent screen needs, and the way to record the answer."""

    app: str
    title: str
    text: str
    levels: tuple[LevelChoice, ...]
    consent_version: str
    current: Consent
    needs_answer: bool
    reason: str
    session: AppSession

    def examples_upto(self, level: str) -> list[bytes]:
        """The example reports that consenting to ``level`` would send, lowest level first."""
        names = self.session.manifest.level_names
        upto = names.index(level)
        return [choice.example for choice in self.levels[1 : upto + 1] if choice.example is not None]

    def answer(self, mode: Mode, level: str | None = None, *, valid_for: datetime.timedelta | None = None) -> Consent:
        """Record the user's answer (``off`` means no, and deletes unsent data); return it."""
        return self.session.set_consent(mode, level, valid_for=valid_for).consent


def _example_record(
    manifest: Manifest, day: datetime.date, machine: Mapping[str, Mapping[str, str]] | None
) -> DayRecord:
    fields = [name for level in manifest.levels for name in level.system]
    dependencies = [name for level in manifest.levels for name in level.dependencies]
    if machine is None:
        system = collect_system(fields, distribution=manifest.distribution, supplied={"interface": "terminal"})
        versions = dependency_versions(dependencies)
    else:
        system = {name: value for name, value in machine.get("system", {}).items() if name in fields}
        versions = {name: value for name, value in machine.get("dependencies", {}).items() if name in dependencies}
    meta = DayMeta(
        app_version="1.0.0",
        system=system,
        dependencies=versions,
        plugins={"other": "other"} if manifest.feature_level("plugins") else {},
    )
    counters: dict[tuple[str, str], int] = {("event", name): 1 for name in manifest.events}
    for command in manifest.commands.values():
        params = sorted((name, False) for name in command.params)
        counters[("command", json.dumps([command.name, params, "1-10s", 0, None], separators=(",", ":")))] = 1
    counters[("data", json.dumps(["image", "ndarray", "uint8", 2, "SMALL"], separators=(",", ":")))] = 1
    counters[("exception", "ValueError")] = 1
    counters[("runs", "")] = 1
    counters[("active_minutes", "")] = 30
    return DayRecord(day, meta, counters)


def consent_request(
    manifest: Manifest,
    *,
    home: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    example_machine: Mapping[str, Mapping[str, str]] | None = None,
) -> ConsentRequest:
    """Everything a consent screen needs for ``manifest``; reads the stored answer, writes nothing.

    The example reports carry this machine's binned system values and dependency versions, as the real ones
    would; ``example_machine`` (``{"system": {...}, "dependencies": {...}}``) stands in for them where the
    examples are shown to others (a server's transparency page).
    """
    session = AppSession.open(manifest, home=home, environ=environ, clock=clock)
    decision = session.decision
    today = session.clock.today()
    reporter = reporter_id(secrets.token_bytes(32), manifest.name, today)  # a throwaway id, never stored
    record = _example_record(manifest, today, example_machine)
    examples = {}
    top = manifest.levels[-1].name
    if top != NONE_LEVEL:
        reports = build_reports(manifest, top, record, reporter=reporter, first_report=True)
        examples = {report.level: encode(report) for report in reports}
    levels = tuple(
        LevelChoice(level.name, level.description, level.host, examples.get(level.name)) for level in manifest.levels
    )
    return ConsentRequest(
        app=manifest.name,
        title=manifest.title,
        text=manifest.consent_text,
        levels=levels,
        consent_version=manifest.consent_version,
        current=session.consent,
        needs_answer=decision.ask,
        reason=decision.reason,
        session=session,
    )


def _choose(request: ConsentRequest, reply: str) -> tuple[Mode, str | None] | None:
    """The answer a reply means, or ``None`` when the reply asks to see something first."""
    reply = reply.strip().lower()
    collecting = [choice.name for choice in request.levels if choice.name != NONE_LEVEL]
    if reply in ("y", "yes"):
        return "on", collecting[0]
    if reply in collecting:
        return "on", reply
    if reply in ("l", "local"):
        return "local", collecting[0]
    if reply in ("", "n", "no", NONE_LEVEL):
        return "off", None
    return None


def ask_in_terminal(
    manifest: Manifest,
    *,
    home: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> Consent | None:
    """Ask for consent on the terminal if it is the right moment; return the answer, or ``None`` if not asked.

    Asks only when stdin and stdout are terminals, not in CI, with no kill switch, and when this consent version
    was not answered yet. Enter, end of input or Ctrl-C mean no, and no is remembered for this version.
    """
    env = os.environ if environ is None else environ
    request = consent_request(manifest, home=home, environ=env, clock=clock)
    session = request.session
    if not request.needs_answer or session.switches.disabled or session.switches.ci:
        return None
    source = stdin or sys.stdin
    sink = stdout or sys.stdout
    try:
        if not (source.isatty() and sink.isatty()):
            return None
    except (AttributeError, ValueError, OSError):
        return None
    try:
        chosen = _converse(request, source, sink)
    except OSError:  # the terminal went away: not asked
        return None
    mode, level = chosen
    consent = request.answer(mode, level)
    with contextlib.suppress(OSError):
        sink.write("Thank you; nothing will be sent.\n" if mode == "off" else f"Thank you: {mode}, level {level}.\n")
        sink.flush()
    return consent


def _converse(request: ConsentRequest, source: TextIO, sink: TextIO) -> tuple[Mode, str | None]:
    """Show the question and read replies until one is an answer."""
    collecting = [choice for choice in request.levels if choice.name != NONE_LEVEL]
    lines = [
        "",
        f"{request.title}: may it send anonymous usage statistics?",
        "",
        request.text.strip(),
        "",
        "Levels (each includes the ones above it):",
        *(f"  {choice.name:<8} {choice.description}" for choice in collecting),
        "",
        (
            f"Answer y (level {collecting[0].name}), a level name, l (keep reports on this computer), "
            "s (show example reports) or n. The default is no."
        ),
        f"You can change your mind at any time: consentry status {request.app}.",
    ]
    sink.write("\n".join(lines) + "\n")
    while True:
        sink.write(f"Send usage statistics for {request.app}? [y/N/l/s/{'/'.join(c.name for c in collecting)}] ")
        sink.flush()
        try:
            reply = source.readline()
        except (KeyboardInterrupt, ValueError):
            reply = ""
        chosen = _choose(request, reply)
        if chosen is not None:
            return chosen
        sink.writelines(example.decode("ascii") for example in request.examples_upto(collecting[-1].name))
