"""What a report is stored as: pure functions shared by every backend, so all store exactly the same rows.

Each (report, day) becomes one raw row, with its facts (binned system fields, dependency and plugin versions) and
its counters. Besides the counters the report carries, a few are derived so that aggregation can count distinct
reporters per command, per outcome, per duration bucket, per allowed parameter value and per data kind and size,
the distributions the dashboard shows.

Counter kinds (stored as small integers, published as names) and their names:

==================  ==========================================================================================
event               the event name
plugin_event        ``["plugin", "event"]``
exception           the exception class name
runs                ``""``: runs that lived longer than a minute
active_minutes      ``""``: active time in minutes
command             ``[name, [[param, value], ...], duration, exit_code, exception]``: one exact kind of run
command_runs        the command name: every run
command_failed      the command name: runs with a non-zero exit code
command_duration    ``[name, bucket]``
command_param       ``[name, param, value]``: value is the allowed value, or ``"given"`` / ``"not given"``
data                ``[kind, class, dtype, ndim, size]``: one exact data category
data_kind           the kind of data
data_size           ``[kind, size]``
==================  ==========================================================================================
"""

from __future__ import annotations

import datetime
import hashlib
import json

from consentry.wire import Report, to_json

__all__ = [
    "COUNTER_KINDS",
    "FIRST_REPORT_UNKNOWN",
    "KIND_NAMES",
    "canonical",
    "counter_rows",
    "fact_rows",
    "first_report_on",
    "report_digest",
]

COUNTER_KINDS = {
    "event": 0,
    "plugin_event": 1,
    "exception": 2,
    "runs": 3,
    "active_minutes": 4,
    "command": 5,
    "data": 6,
    "command_runs": 7,
    "command_failed": 8,
    "command_duration": 9,
    "command_param": 10,
    "data_kind": 11,
    "data_size": 12,
}
KIND_NAMES = {number: name for name, number in COUNTER_KINDS.items()}
#: The fact (key, value) of a report whose sender cannot tell whether it is its install's first, as OTLP
#: exports cannot: the new installs of the periods it falls in are unknown (see ``storage.base``).
FIRST_REPORT_UNKNOWN = ("first_report", "unknown")


_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def canonical(value: object) -> str:
    """Compact JSON with sorted keys: the stored name of a structured counter."""
    return _COMPACT.encode(value)


def report_digest(report: Report) -> bytes:
    """What tells an identical report from a different one: SHA-256 of its compact, key-sorted JSON.

    A function of the report's content only (not of the bytes it came in), and cheap: no re-validation, and
    the C JSON encoder, which :func:`consentry.wire.encode` (indented) cannot use.
    """
    return hashlib.sha256(canonical(to_json(report)).encode()).digest()


def first_report_on(report: Report, day: datetime.date) -> bool:
    """Whether the row of ``day`` is an install's first: only the first day of a first report is (one new install)."""
    return report.first_report and day == min(report.days)


def fact_rows(report: Report, *, first_report_known: bool = True) -> dict[str, str]:
    """The facts of a report: ``system.<field>``, ``dependency.<name>`` and ``plugin.<name>`` to their values.

    And :data:`FIRST_REPORT_UNKNOWN` when its sender could not tell whether it was its install's first.
    """
    facts = {f"system.{key}": value for key, value in report.system.items()}
    facts.update((f"dependency.{key}", value) for key, value in report.dependencies.items())
    facts.update((f"plugin.{plugin.name}", plugin.version) for plugin in report.plugins)
    if not first_report_known:
        facts[FIRST_REPORT_UNKNOWN[0]] = FIRST_REPORT_UNKNOWN[1]
    return facts


def counter_rows(report: Report, day: datetime.date) -> dict[tuple[str, str], int]:
    """The counters stored for ``day`` of ``report``, keyed by (kind, name)."""
    rows: dict[tuple[str, str], int] = {}

    def add(kind: str, name: str, n: int) -> None:
        rows[(kind, name)] = rows.get((kind, name), 0) + n

    for event, n in report.counts.get(day, {}).items():
        add("event", event, n)
    for plugin in report.plugins:
        for event, n in plugin.counts.get(day, {}).items():
            add("plugin_event", canonical([plugin.name, event]), n)
    for exception, n in report.exceptions.get(day, {}).items():
        add("exception", exception, n)
    activity = report.activity.get(day)
    if activity is not None:
        if activity.runs:
            add("runs", "", activity.runs)
        if activity.active_minutes:
            add("active_minutes", "", activity.active_minutes)
    for command in report.commands:
        if command.day != day:
            continue
        params = sorted(command.params.items())
        add(
            "command",
            canonical([command.name, params, command.duration, command.exit_code, command.exception]),
            command.count,
        )
        add("command_runs", command.name, command.count)
        if command.exit_code:
            add("command_failed", command.name, command.count)
        add("command_duration", canonical([command.name, command.duration]), command.count)
        for param, value in params:
            shown = value if isinstance(value, str) else ("given" if value else "not given")
            add("command_param", canonical([command.name, param, shown]), command.count)
    for record in report.data:
        if record.day != day:
            continue
        key = [record.kind, record.class_name, record.dtype, record.ndim, record.size]
        add("data", canonical(key), record.count)
        add("data_kind", record.kind, record.count)
        add("data_size", canonical([record.kind, record.size]), record.count)
    return rows
