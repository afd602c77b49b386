"""Turning a stored day into reports: one per consented level, each holding exactly that level's data.

Pure functions: no I/O, no clock. :func:`build_reports` takes what the store holds for a day and returns the
reports; :func:`reporter_id` derives the weekly reporter id from the local secret.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

from consentry._local.counts import DayRecord
from consentry.manifest import Level, Manifest
from consentry.wire import Activity, Command, DataCategory, Plugin, Report
from consentry.wire.schema import MAX_COUNT, OTHER

__all__ = ["build_reports", "reporter_id"]


def reporter_id(secret: bytes, app: str, day: datetime.date) -> str:
    """HMAC-SHA256 of the secret with the application and ISO week of ``day``, first 128 bits in hex.

    Stable within an ISO week, so an install counts once per week; different across weeks and applications,
    so reports cannot be linked; derived from a random secret, never from hardware or paths.
    """
    year, week, _ = day.isocalendar()
    message = f"consentry-reporter-v1|{app}|{year:04d}-W{week:02d}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def _level_counts(record: DayRecord, kind: str, keep: set[str] | None = None) -> dict[str, int]:
    return {
        key: min(n, MAX_COUNT)
        for (k, key), n in record.counters.items()
        if k == kind and n > 0 and (keep is None or key in keep)
    }


def _plugins(record: DayRecord, level: Level) -> list[Plugin]:
    installed = dict(record.meta.plugins)
    counts: dict[str, dict[str, int]] = {}
    for (kind, key), n in record.counters.items():
        if kind != "plugin" or n <= 0:
            continue
        try:
            plugin, event, event_level = json.loads(key)
        except (ValueError, TypeError):
            continue
        if event_level == level.name and plugin != OTHER:
            counts.setdefault(plugin, {})[event] = min(n, MAX_COUNT)
    names = set(counts) | (set(installed) if level.plugins else set())
    return [
        Plugin(
            name,
            installed.get(name, OTHER),
            {record.day: counts[name]} if name in counts and name != OTHER else {},
        )
        for name in sorted(names)
    ]


def _structured(record: DayRecord, kind: str, fields: int) -> Iterator[tuple[list[Any], int]]:
    """The counters of ``kind`` whose key is a JSON array of ``fields`` values, with their counts."""
    for (counter_kind, key), n in sorted(record.counters.items()):
        if counter_kind != kind or n <= 0:
            continue
        try:
            values = json.loads(key)
        except ValueError:
            continue
        if isinstance(values, list) and len(values) == fields:
            yield values, min(n, MAX_COUNT)


def _commands(record: DayRecord, manifest: Manifest, level: Level) -> list[Command]:
    out = []
    for (name, params, duration, exit_code, exception), n in _structured(record, "command", 5):
        spec = manifest.commands.get(name)
        if spec is not None and spec.level == level.name:
            out.append(Command(record.day, name, duration, exit_code, n, dict(params), exception))
    return out


def _data(record: DayRecord) -> list[DataCategory]:
    return [
        DataCategory(record.day, kind, class_name, dtype, ndim, size, n)
        for (kind, class_name, dtype, ndim, size), n in _structured(record, "data", 5)
    ]


def build_reports(
    manifest: Manifest,
    level: str,
    record: DayRecord,
    *,
    reporter: str,
    first_report: bool,
    consent_version: str | None = None,
) -> list[Report]:
    """The reports for one day, one per level up to ``level`` that has something to say.

    The lowest level always reports (a day the application ran is what "active installs" counts); higher
    levels report only when they carry data.
    """
    reports = []
    day = record.day
    for index, rung in enumerate(manifest.levels_upto(level)):
        events = {name for name, spec in manifest.events.items() if spec.level == rung.name}
        counts = _level_counts(record, "event", events)
        activity = {}
        if rung.activity:
            runs = record.counters.get(("runs", ""), 0)
            minutes = record.counters.get(("active_minutes", ""), 0)
            activity = {day: Activity(min(runs, MAX_COUNT), min(minutes - minutes % 10, 100_000))}
        exceptions = _level_counts(record, "exception") if rung.exceptions else {}
        report = Report(
            app=manifest.name,
            app_version=record.meta.app_version,
            level=rung.name,
            consent_version=consent_version or manifest.consent_version,
            reporter=reporter,
            first_report=first_report,
            days=(day,),
            system={name: value for name, value in record.meta.system.items() if name in rung.system},
            dependencies={n: v for n, v in record.meta.dependencies.items() if n in rung.dependencies},
            counts={day: counts} if counts else {},
            activity=activity,
            exceptions={day: exceptions} if exceptions else {},
            plugins=tuple(_plugins(record, rung)),
            commands=tuple(_commands(record, manifest, rung)),
            data=tuple(_data(record)) if rung.data else (),
        )
        if index == 0 or _has_content(report):
            reports.append(report)
    return reports


def _has_content(report: Report) -> bool:
    parts: tuple[object, ...] = (
        report.system,
        report.dependencies,
        report.counts,
        report.activity,
        report.exceptions,
        report.plugins,
        report.commands,
        report.data,
    )
    return any(parts)
