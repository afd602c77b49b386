"""Strict encoding and decoding of reports.

Encoding is canonical: the same report always gives the same bytes (sorted keys, two-space indentation,
ASCII only, a final newline), so the file a user previews is byte for byte the body that is uploaded, and a
report can be identified by the hash of its bytes.

Decoding is strict: duplicate keys, floats, ``NaN``, unknown fields, wrong types, out-of-range values and
inconsistent days are all rejected with a :class:`~consentry.wire.spec.WireError` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from consentry.wire.report import Activity, Command, DataCategory, Day, Plugin, Report
from consentry.wire.schema import MAX_REPORT_BYTES, OTHER, REPORT
from consentry.wire.spec import DuplicateKeys, Unreadable, WireError, check

__all__ = ["decode", "encode", "from_checked", "from_json", "to_json"]

_T = TypeVar("_T")


# ---- encoding ------------------------------------------------------------------------------------------------
def _days(mapping: Mapping[Day, _T], convert: Callable[[_T], object] | None = None) -> dict[str, object]:
    return {day.isoformat(): convert(value) if convert else value for day, value in mapping.items()}


def to_json(report: Report) -> dict[str, object]:
    """Return ``report`` as JSON-compatible values, leaving out empty optional parts."""
    out: dict[str, object] = {
        "schema": report.schema,
        "app": report.app,
        "app_version": report.app_version,
        "level": report.level,
        "consent_version": report.consent_version,
        "reporter": report.reporter,
        "first_report": report.first_report,
        "days": [day.isoformat() for day in report.days],
    }
    optional: dict[str, object] = {
        "system": dict(report.system),
        "dependencies": dict(report.dependencies),
        "counts": _days(report.counts),
        "activity": _days(report.activity, lambda a: {"runs": a.runs, "active_minutes": a.active_minutes}),
        "exceptions": _days(report.exceptions),
        "plugins": [_plugin_json(plugin) for plugin in report.plugins],
        "commands": [_command_json(command) for command in report.commands],
        "data": [_data_json(record) for record in report.data],
    }
    out.update((key, value) for key, value in optional.items() if value)
    return out


def _plugin_json(plugin: Plugin) -> dict[str, object]:
    out: dict[str, object] = {"name": plugin.name, "version": plugin.version}
    if plugin.counts:
        out["counts"] = _days(plugin.counts)
    return out


def _command_json(command: Command) -> dict[str, object]:
    out: dict[str, object] = {
        "day": command.day.isoformat(),
        "name": command.name,
        "duration": command.duration,
        "exit_code": command.exit_code,
        "count": command.count,
    }
    if command.params:
        out["params"] = dict(command.params)
    if command.exception is not None:
        out["exception"] = command.exception
    return out


def _data_json(record: DataCategory) -> dict[str, object]:
    return {
        "day": record.day.isoformat(),
        "kind": record.kind,
        "class": record.class_name,
        "dtype": record.dtype,
        "ndim": record.ndim,
        "size": record.size,
        "count": record.count,
    }


def encode(report: Report) -> bytes:
    """Encode ``report`` canonically, after checking it against the schema (a bad report raises WireError)."""
    document = to_json(report)
    # Validate what we are about to write: the client must never produce a report the server will refuse.
    from_json(document)
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False)
    return (text + "\n").encode("ascii")


# ---- decoding ------------------------------------------------------------------------------------------------
# The parser's hooks mark what the wire format refuses instead of raising, so that the schema check rejects it
# with the path of the field where it stands.
def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    duplicate = None
    for key, value in pairs:
        if key in out and duplicate is None:
            duplicate = key
        out[key] = value
    if duplicate is None:
        return out
    marked = DuplicateKeys(out)
    marked.duplicate = duplicate
    return marked


def _fraction(text: str) -> Unreadable:
    return Unreadable(f"a number that is not an integer ({text[:20]})")


def _constant(text: str) -> Unreadable:
    return Unreadable(f"{text}, which is not a number JSON allows")


def _integer(text: str) -> int | Unreadable:
    return int(text) if len(text) <= _MAX_DIGITS else Unreadable(f"an integer of {len(text)} digits")


_MAX_DIGITS = 20


def decode(data: bytes | str, *, max_bytes: int = MAX_REPORT_BYTES) -> Report:
    """Decode an encoded report, rejecting anything that does not match wire schema v1 exactly."""
    if len(data) > max_bytes:
        raise WireError("", f"report is {len(data)} bytes; at most {max_bytes} are accepted")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise WireError("", f"not UTF-8 text (byte {error.start})") from None
    try:
        document = json.loads(
            data, object_pairs_hook=_pairs, parse_float=_fraction, parse_constant=_constant, parse_int=_integer
        )
    except RecursionError:
        raise WireError("", "JSON nested too deeply") from None
    except ValueError as error:
        raise WireError("", f"not valid JSON: {error}") from None
    return from_json(document)


def from_json(document: object) -> Report:
    """Build a :class:`Report` from parsed JSON, checking the schema and the rules that span fields."""
    return from_checked(cast("dict[str, Any]", check(REPORT, document)))


def from_checked(raw: Mapping[str, Any]) -> Report:
    """Build a :class:`Report` from a document that matches the schema, checking the rules that span fields.

    ``raw`` is what the schema check returns: dates decoded, every optional field with a default present (in
    plugins and commands too). Raises :class:`WireError` for a document that breaks a rule spanning fields.
    """
    days: list[Day] = raw["days"]
    if days != sorted(days):
        raise WireError("days", "must be in ascending order")
    covered = set(days)

    def _covered(path: str, day: Day) -> Day:
        if day not in covered:
            raise WireError(path, f"{day.isoformat()} is not one of the report's days")
        return day

    def _per_day(name: str, mapping: dict[Day, Any]) -> dict[Day, Any]:
        for day in mapping:
            _covered(f"{name}.{day.isoformat()}", day)
        return mapping

    plugins = []
    for index, entry in enumerate(raw["plugins"]):
        path = f"plugins[{index}]"
        if entry["name"] == OTHER and entry["counts"]:
            raise WireError(f"{path}.counts", "plugins reported as 'other' carry no counts")
        plugins.append(Plugin(entry["name"], entry["version"], _per_day(f"{path}.counts", entry["counts"])))
    if len({plugin.name for plugin in plugins}) != len(plugins):
        raise WireError("plugins", "must not list a plugin twice")

    commands = tuple(
        Command(
            day=_covered(f"commands[{index}].day", entry["day"]),
            name=entry["name"],
            duration=entry["duration"],
            exit_code=entry["exit_code"],
            count=entry["count"],
            params=entry["params"],
            exception=entry["exception"],
        )
        for index, entry in enumerate(raw["commands"])
    )
    _unique("commands", [command.key() for command in commands])
    data = tuple(
        DataCategory(
            day=_covered(f"data[{index}].day", entry["day"]),
            kind=entry["kind"],
            class_name=entry["class"],
            dtype=entry["dtype"],
            ndim=entry["ndim"],
            size=entry["size"],
            count=entry["count"],
        )
        for index, entry in enumerate(raw["data"])
    )
    _unique("data", [record.key() for record in data])

    return Report(
        schema=raw["schema"],
        app=raw["app"],
        app_version=raw["app_version"],
        level=raw["level"],
        consent_version=raw["consent_version"],
        reporter=raw["reporter"],
        first_report=raw["first_report"],
        days=tuple(days),
        system=raw["system"],
        dependencies=raw["dependencies"],
        counts=_per_day("counts", raw["counts"]),
        activity={day: Activity(**value) for day, value in _per_day("activity", raw["activity"]).items()},
        exceptions=_per_day("exceptions", raw["exceptions"]),
        plugins=tuple(plugins),
        commands=commands,
        data=data,
    )


def _unique(path: str, keys: list[tuple[object, ...]]) -> None:
    seen: set[tuple[object, ...]] = set()
    for index, key in enumerate(keys):
        if key in seen:
            raise WireError(f"{path}[{index}]", "repeats an earlier record; identical records must be merged")
        seen.add(key)
