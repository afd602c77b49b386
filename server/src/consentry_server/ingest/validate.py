"""Checking a decoded report against the registered manifests: a pure function, no I/O.

A report must say nothing its manifest does not allow, at exactly its level: every event, system field,
dependency, command, parameter value and part must be declared there. Days may be neither in the future nor
older than the retention window. The first violation found is reported with a machine-readable code and the
field it concerns. Plugins are the one thing not refused: a plugin that is not public on this server is stored
as ``other``, without its counts.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass

from consentry.manifest import NONE_LEVEL, Level, Manifest
from consentry.wire import Plugin, Report, encode
from consentry.wire.schema import OTHER
from consentry_server.ingest.catalog import Catalog

__all__ = ["Rejection", "Validated", "bounded_text", "encode_checked", "validate_report"]


@dataclass(frozen=True)
class Rejection(Exception):  # noqa: N818 - a rejection is an outcome, not an error of the server
    """Why a request was refused: HTTP ``status``, a stable ``code``, the ``field`` concerned, a message."""

    status: int
    code: str
    field: str
    message: str
    retry_after: int | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.field}: {self.message}" if self.field else f"{self.code}: {self.message}"

    def to_json(self) -> dict[str, object]:
        """The body of the error response; field and message are bounded, so input is never echoed at length."""
        return {
            "error": {
                "code": self.code,
                "field": bounded_text(self.field, 200),
                "message": bounded_text(self.message, 500),
            }
        }


def bounded_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, lone surrogates (which JSON cannot carry as UTF-8) escaped."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _reject(code: str, field: str, message: str) -> Rejection:
    return Rejection(400, code, field, message)


def _check_days(report: Report, today: datetime.date, *, future_days: int, retention_days: int) -> None:
    latest = today + datetime.timedelta(days=future_days)
    oldest = today - datetime.timedelta(days=retention_days)
    for index, day in enumerate(report.days):
        if day > latest:
            raise _reject("day_in_future", f"days[{index}]", f"{day} is after the server's date {today}")
        if day < oldest:
            raise _reject("day_too_old", f"days[{index}]", f"{day} is older than the {retention_days}-day retention")


def _check_level_parts(report: Report, level: Level) -> None:
    for name in report.system:
        if name not in level.system:
            raise _reject("field_not_in_manifest", f"system.{name}", f"level {level.name!r} does not collect {name!r}")
    for name in report.dependencies:
        if name not in level.dependencies:
            raise _reject(
                "dependency_not_in_manifest", f"dependencies.{name}", f"level {level.name!r} does not report {name!r}"
            )
    parts = (("activity", report.activity), ("exceptions", report.exceptions), ("data", report.data))
    for part, value in parts:
        if value and not getattr(level, part):
            raise _reject("part_not_in_manifest", part, f"level {level.name!r} does not collect {part}")


def _check_events(report: Report, manifest: Manifest) -> None:
    for day, counts in report.counts.items():
        for event in counts:
            spec = manifest.events.get(event)
            field = f"counts.{day.isoformat()}.{event}"
            if spec is None:
                raise _reject("event_not_in_manifest", field, f"event {event!r} is not declared in the manifest")
            if spec.level != report.level:
                raise _reject(
                    "event_wrong_level", field, f"event {event!r} belongs to level {spec.level!r}, not {report.level!r}"
                )


def _check_plugins(report: Report, level: Level, catalog: Catalog) -> Report:
    """Check the plugins; return the report with every plugin that is not public stored as ``other``."""
    kept: list[Plugin] = []
    others = False
    for index, plugin in enumerate(report.plugins):
        field = f"plugins[{index}]"
        if not plugin.counts and not level.plugins:
            raise _reject("part_not_in_manifest", field, f"level {level.name!r} does not list installed plugins")
        if plugin.name == OTHER or not catalog.is_public_plugin(plugin.name):
            others = True  # a name that is not public is not kept, nor its counts
            continue
        kept.append(plugin)
        if not plugin.counts:
            continue
        plugin_manifest = catalog.plugins.get(plugin.name)
        if plugin_manifest is None:
            raise _reject("unknown_plugin", f"{field}.name", f"no manifest is registered for plugin {plugin.name!r}")
        for day, counts in plugin.counts.items():
            for event in counts:
                spec = plugin_manifest.events.get(event)
                if spec is None or spec.level != report.level:
                    raise _reject(
                        "event_not_in_manifest",
                        f"{field}.counts.{day.isoformat()}.{event}",
                        f"plugin {plugin.name!r} declares no event {event!r} at level {report.level!r}",
                    )
    if others and level.plugins:
        kept.append(Plugin(OTHER, OTHER))
    kept.sort(key=lambda plugin: plugin.name)
    return report if tuple(kept) == report.plugins else dataclasses.replace(report, plugins=tuple(kept))


def _check_commands(report: Report, manifest: Manifest) -> None:
    for index, command in enumerate(report.commands):
        field = f"commands[{index}]"
        spec = manifest.commands.get(command.name)
        if spec is None or spec.level != report.level:
            raise _reject(
                "command_not_in_manifest",
                f"{field}.name",
                f"command {command.name!r} is not declared at level {report.level!r}",
            )
        for param, value in command.params.items():
            if param not in spec.params:
                raise _reject("param_not_in_manifest", f"{field}.params.{param}", f"{param!r} is not declared")
            if isinstance(value, str) and value not in spec.params[param]:
                raise _reject(
                    "param_value_not_allowed",
                    f"{field}.params.{param}",
                    f"value {value!r} is not an allowed value of {param!r}",
                )


@dataclass(frozen=True)
class Validated:
    """A report that passed: the manifest it matched, and the report as it is to be stored.

    The stored report differs from the one received only in its plugins: a name that is not public on this
    server is stored as ``other``, without its counts.
    """

    manifest: Manifest
    report: Report


def validate_report(
    report: Report,
    catalog: Catalog,
    *,
    path_level: str,
    today: datetime.date,
    future_days: int = 1,
    retention_days: int = 60,
) -> Validated:
    """Check ``report`` against ``catalog``; return what to store, or raise :class:`Rejection`."""
    if report.level != path_level:
        raise _reject("level_mismatch", "level", f"report is for level {report.level!r} but sent to {path_level!r}")
    manifest = catalog.manifest_for(report.consent_version)
    if report.level == NONE_LEVEL or report.level not in manifest.level_names:
        raise _reject("unknown_level", "level", f"{report.app!r} has no level {report.level!r}")
    level = manifest.level(report.level)
    _check_days(report, today, future_days=future_days, retention_days=retention_days)
    _check_level_parts(report, level)
    _check_events(report, manifest)
    _check_commands(report, manifest)
    return Validated(manifest, _check_plugins(report, level, catalog))


def encode_checked(
    report: Report,
    catalog: Catalog,
    *,
    today: datetime.date,
    future_days: int,
    retention_days: int,
    max_bytes: int,
) -> bytes:
    """A report built by an adapter (OTLP, the seed formats), checked as native ingest will check it, and encoded.

    Adapters check every report of a request this way before storing any, so that a request is refused whole.
    Raises :class:`Rejection` (the manifest does not allow it, or once encoded it is larger than ``max_bytes``)
    or :class:`~consentry.wire.WireError` (it exceeds a limit of the wire format).
    """
    validate_report(
        report, catalog, path_level=report.level, today=today, future_days=future_days, retention_days=retention_days
    )
    body = encode(report)
    if len(body) > max_bytes:
        raise Rejection(413, "too_large", "", f"a report would be larger than {max_bytes} bytes once encoded")
    return body
