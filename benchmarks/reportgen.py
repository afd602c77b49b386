"""Valid, varied reports for the server benchmarks, built from the example applications' manifests.

Every report built here passes the server's decoding and validation against the registered example manifests
(``check`` verifies it), says only what its level declares, and is deterministic in its seed: the same seed,
reporter and day always give the same report. Two mixes:

- ``ingest``: what installs send, one report per level of the level they consented to (so ``basic`` reports,
  with a few facts and two counters, are the most frequent);
- ``rich``: only the levels that carry counters (events, commands, data categories, exceptions, plugin events),
  with many counters each: what "a report with many counters" means in the storage benchmarks.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import random
from collections.abc import Sequence

from consentry.manifest import Level, Manifest, PluginManifest
from consentry.wire import (
    DATA_SIZES,
    DURATIONS,
    SYSTEM_FIELDS,
    Activity,
    Command,
    DataCategory,
    Plugin,
    Report,
    decode,
    encode,
    to_json,
)
from consentry_examples import Example, all_examples
from consentry_server.ingest.catalog import Catalog
from consentry_server.ingest.validate import validate_report
from consentry_server.storage import Storage

__all__ = ["PLACEHOLDER", "ReportFactory", "compact", "register_examples", "split_template"]

#: The reporter id of templates: the load generator puts a distinct id in its place in every request.
PLACEHOLDER = "0" * 32

_FREE_TEXT = {
    "os_version": ("ubuntu-24", "ubuntu-22", "debian-12", "fedora-41", "14", "15", "11", "10"),
    "python": ("3.10", "3.11", "3.12", "3.13"),
}
_DEPENDENCY_VERSIONS = ("1.26.4", "2.0.2", "2.1.3", "3.12.1", "0.14.2", "2.4.1", "5.1.0")
_EXCEPTIONS = ("ValueError", "KeyError", "OSError", "MemoryError", "RuntimeError", "TypeError", "IndexError")
_DATA_KINDS = ("image", "labels", "points", "shapes", "surface", "tracks")
_DATA_CLASSES = ("ndarray", "Array", "Tensor", "DataArray")
_DTYPES = ("uint8", "uint16", "int32", "float32", "float64", "bool")


def register_examples(storage: Storage) -> list[Example]:
    """Register the example applications and their plugins in ``storage``; return the examples."""
    examples = all_examples()
    for example in examples:
        storage.register_manifest(example.manifest)
        for plugin in example.plugins:
            storage.register_manifest(plugin)
    return examples


def _is_public(manifest: Manifest, plugin: PluginManifest) -> bool:
    if manifest.plugins.policy == "listed":
        return plugin.name in manifest.plugins.public
    return manifest.plugins.policy == "declared" and plugin.public


def _collects_counters(manifest: Manifest, level: Level, plugins: Sequence[PluginManifest]) -> bool:
    return bool(
        manifest.events_at(level.name)
        or any(command.level == level.name for command in manifest.commands.values())
        or level.data
        or level.exceptions
        or any(event.level == level.name for plugin in plugins for event in plugin.events.values())
    )


@dataclasses.dataclass(frozen=True)
class _Kind:
    """One application at one level, and how often reports of it are sent."""

    example: Example
    level: Level
    weight: float


class ReportFactory:
    """Builds reports of the example applications (see the module's docstring for the two mixes)."""

    def __init__(self, mix: str = "ingest") -> None:
        if mix not in ("ingest", "rich"):
            raise ValueError(mix)
        self.mix = mix
        self.examples = all_examples()
        self.kinds: list[_Kind] = []
        for example in self.examples:
            levels = list(example.manifest.levels[1:])
            public = [plugin for plugin in example.plugins if _is_public(example.manifest, plugin)]
            for index, level in enumerate(levels):
                if mix == "rich":
                    if _collects_counters(example.manifest, level, public):
                        self.kinds.append(_Kind(example, level, example.weight))
                else:
                    # Installs at level i or above send a report at level i: lower levels are more frequent.
                    self.kinds.append(_Kind(example, level, example.weight * (len(levels) - index) / len(levels)))
        self._weights = [kind.weight for kind in self.kinds]

    def catalogs(self) -> dict[str, Catalog]:
        """The catalogs the server builds from the registered examples (for :meth:`check`)."""
        catalogs = {}
        for example in self.examples:
            manifest = example.manifest
            plugins = {plugin.name: plugin for plugin in example.plugins}
            catalogs[manifest.name] = Catalog(manifest, {manifest.consent_version: manifest}, plugins)
        return catalogs

    def report(self, seed: int, reporter: str = PLACEHOLDER, day: datetime.date | None = None) -> Report:
        """The report of template ``seed`` from ``reporter`` for ``day`` (default: yesterday, UTC)."""
        day = day or (datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1))
        rng = random.Random(seed)
        kind = rng.choices(self.kinds, self._weights)[0]
        rich = self.mix == "rich"
        manifest, level = kind.example.manifest, kind.level
        present = 0.85 if rich else 0.5
        report = Report(
            app=manifest.name,
            app_version=rng.choice(kind.example.versions),
            level=level.name,
            consent_version=manifest.consent_version,
            reporter=reporter,
            first_report=rng.random() < 0.1,
            days=(day,),
            system={name: self._system_value(rng, name) for name in level.system},
            dependencies={name: rng.choice(_DEPENDENCY_VERSIONS) for name in level.dependencies},
        )
        counts = {event.name: rng.randint(1, 200) for event in manifest.events_at(level.name) if rng.random() < present}
        activity = None
        if level.activity:
            activity = Activity(runs=rng.randint(1, 12), active_minutes=10 * rng.randint(0, 50))
        exceptions: dict[str, int] = {}
        if level.exceptions and rng.random() < (0.9 if rich else 0.2):
            exceptions = {name: rng.randint(1, 3) for name in rng.sample(_EXCEPTIONS, rng.randint(1, 4))}
        return dataclasses.replace(
            report,
            counts={day: counts} if counts else {},
            activity={day: activity} if activity else {},
            exceptions={day: exceptions} if exceptions else {},
            plugins=self._plugins(rng, kind, day, present),
            commands=self._commands(rng, manifest, level, day, rich=rich),
            data=self._data(rng, level, day, rich=rich),
        )

    @staticmethod
    def _system_value(rng: random.Random, name: str) -> str:
        node = SYSTEM_FIELDS[name]
        values = getattr(node, "values", None)
        return str(rng.choice(values)) if values else rng.choice(_FREE_TEXT[name])

    @staticmethod
    def _plugins(rng: random.Random, kind: _Kind, day: datetime.date, present: float) -> tuple[Plugin, ...]:
        manifest, level = kind.example.manifest, kind.level
        plugins = []
        for plugin in kind.example.plugins:
            if not _is_public(manifest, plugin) or rng.random() > present:
                continue
            events = {
                name: rng.randint(1, 50)
                for name, spec in plugin.events.items()
                if spec.level == level.name and rng.random() < present
            }
            if events or level.plugins:
                version = rng.choice(kind.example.plugin_versions)
                plugins.append(Plugin(plugin.name, version, {day: events} if events else {}))
        return tuple(sorted(plugins, key=lambda plugin: plugin.name))

    @staticmethod
    def _commands(
        rng: random.Random, manifest: Manifest, level: Level, day: datetime.date, *, rich: bool
    ) -> tuple[Command, ...]:
        commands: dict[tuple[object, ...], Command] = {}
        for spec in manifest.commands.values():
            if spec.level != level.name:
                continue
            for _ in range(rng.randint(1, 4) if rich else rng.randint(0, 2)):
                params: dict[str, str | bool] = {
                    param: rng.choice(values) if values else rng.random() < 0.5
                    for param, values in spec.params.items()
                    if rng.random() < 0.8
                }
                failed = rng.random() < 0.1
                command = Command(
                    day=day,
                    name=spec.name,
                    duration=rng.choice(DURATIONS),
                    exit_code=1 if failed else 0,
                    count=rng.randint(1, 20),
                    params=params,
                    exception=rng.choice(_EXCEPTIONS) if failed else None,
                )
                commands.setdefault(command.key(), command)
        return tuple(commands.values())

    @staticmethod
    def _data(rng: random.Random, level: Level, day: datetime.date, *, rich: bool) -> tuple[DataCategory, ...]:
        if not level.data:
            return ()
        records: dict[tuple[object, ...], DataCategory] = {}
        for _ in range(rng.randint(2, 8) if rich else rng.randint(0, 3)):
            record = DataCategory(
                day=day,
                kind=rng.choice(_DATA_KINDS),
                class_name=rng.choice(_DATA_CLASSES),
                dtype=rng.choice(_DTYPES),
                ndim=rng.randint(2, 5),
                size=rng.choice(DATA_SIZES),
                count=rng.randint(1, 30),
            )
            records.setdefault(record.key(), record)
        return tuple(records.values())

    def check(self, report: Report, today: datetime.date | None = None) -> None:
        """Raise unless the server would store ``report`` exactly as it is (decoding and validation)."""
        today = today or datetime.datetime.now(datetime.timezone.utc).date()
        if decode(compact(report).encode()) != report:
            raise AssertionError(f"report {report} does not survive encoding")
        validated = validate_report(report, self.catalogs()[report.app], path_level=report.level, today=today)
        if validated.report != report:
            raise AssertionError(f"the server would change report {report}")


def compact(report: Report) -> str:
    """The report as compact JSON (the server accepts any valid JSON; the client sends it indented, gzipped)."""
    return json.dumps(to_json(report), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def split_template(report: Report) -> tuple[str, str]:
    """A template report's canonical encoding split around its reporter id (which must be :data:`PLACEHOLDER`).

    The canonical encoding (:func:`consentry.wire.encode`) is what the client uploads (gzip-compressed; the
    benchmarks send it uncompressed). Its line breaks are written as the two characters ``\\n`` (no string in a
    report may hold a backslash), so that a template stays on one line; ``wrk_reports.lua`` puts them back.
    """
    text = encode(report).decode("ascii").replace("\n", "\\n")
    marker = f'"reporter": "{PLACEHOLDER}"'
    assert report.reporter == PLACEHOLDER
    assert text.count(marker) == 1
    before, after = text.split(marker)
    return before + '"reporter": "', '"' + after
