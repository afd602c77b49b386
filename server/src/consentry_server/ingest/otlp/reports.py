"""From a tally to native reports: one per source, day and level, checked as native ingest will check them.

OTLP carries no reporter id. Each source of an export gets a fresh random one (``secrets.token_hex(16)``) with
``first_report`` false, so each export counts as one reporter on each day it covers: applications fed over OTLP
are counted in runs (exports), not installs. Reports follow the client's rules (those of
its report builder): the levels are those up to the highest one the day's commands and events belong to; the
lowest always reports, with the system fields it collects, and a higher one only when it has something to say.

Each report is validated against the manifest and encoded (:func:`~consentry_server.ingest.validate.encode_checked`,
as the seed formats do) before anything is stored, so a day of a source
that cannot be stored is refused whole, with its items counted in the answer, and never stored in part.
"""

from __future__ import annotations

import datetime
import json
import secrets
from dataclasses import dataclass

from consentry.manifest import Level, Manifest
from consentry.wire import Command, Report, WireError
from consentry_server.ingest.otlp.tally import DayWindow, Group, Tally
from consentry_server.ingest.validate import Rejection, encode_checked

__all__ = ["DayReports", "plan_reports"]


@dataclass(frozen=True)
class DayReports:
    """The encoded reports of one source and day, by level, and how many items they carry."""

    group: Group
    day: datetime.date
    bodies: tuple[tuple[str, bytes], ...]
    items: int


def _commands(group: Group, day: datetime.date) -> list[Command]:
    commands = []
    for key, count in sorted(group.commands.get(day, {}).items()):
        name, params, duration, exit_code, exception = json.loads(key)
        commands.append(Command(day, name, duration, exit_code, count, dict(params), exception))
    return commands


def _top_level(manifest: Manifest, commands: list[Command], events: dict[str, int]) -> Level:
    names = {manifest.commands[command.name].level for command in commands}
    names |= {manifest.events[event].level for event in events}
    return max((manifest.level(name) for name in names), key=lambda level: level.rank, default=manifest.levels[-1])


def _reports(group: Group, day: datetime.date, reporter: str) -> list[Report]:
    source = group.source
    manifest = source.catalog.latest
    commands = _commands(group, day)
    events = {event: count for event, count in group.events.get(day, {}).items() if count}
    reports = []
    for index, level in enumerate(manifest.levels_upto(_top_level(manifest, commands, events).name)):
        counts = {event: count for event, count in sorted(events.items()) if manifest.events[event].level == level.name}
        report = Report(
            app=manifest.name,
            app_version=source.app_version,
            level=level.name,
            consent_version=manifest.consent_version,
            reporter=reporter,
            first_report=False,
            days=(day,),
            system={name: value for name, value in source.system.items() if name in level.system},
            dependencies={name: value for name, value in source.dependencies.items() if name in level.dependencies},
            counts={day: counts} if counts else {},
            commands=tuple(command for command in commands if manifest.commands[command.name].level == level.name),
        )
        if index == 0 or report.system or report.dependencies or report.counts or report.commands:
            reports.append(report)
    return reports


def plan_reports(tally: Tally, *, today: datetime.date, window: DayWindow, max_bytes: int) -> list[DayReports]:
    """The reports to store for ``tally``, checked; a day that fails a check is refused in ``tally`` instead."""
    planned = []
    for group in tally.groups.values():
        reporter = secrets.token_hex(16)
        for day in sorted(group.items):
            commands, events = group.commands.get(day), group.events.get(day)
            if not commands and not any((events or {}).values()):
                continue  # only counters that stayed at zero: accepted, nothing to store
            try:
                catalog = group.source.catalog
                reports = _reports(group, day, reporter)
                bodies = [
                    (
                        report.level,
                        encode_checked(
                            report,
                            catalog,
                            today=today,
                            future_days=(window.latest - today).days,
                            retention_days=(today - window.oldest).days,
                            max_bytes=max_bytes,
                        ),
                    )
                    for report in reports
                ]
            except WireError as error:
                tally.refuse_day(group, day, "invalid_report", f"{error.path}: {error.reason}")
                continue
            except Rejection as rejection:
                tally.refuse_day(group, day, rejection.code, rejection.message)
                continue
            planned.append(DayReports(group, day, tuple(bodies), group.items[day]))
    return planned
