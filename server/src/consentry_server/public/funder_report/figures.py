"""What a funder report states: read from the public store (published aggregates) only, never raw reports.

Every number here is a published number, or a sum or a peak of published numbers that says so. A number that
was not published stays ``None`` ("hidden"): it is never estimated, and nothing is computed from raw data. The
headline figures are those of the signed certificate embedded in the report
(:mod:`consentry_server.publish.certificates`), so the page and the certificate cannot disagree.
"""

from __future__ import annotations

import datetime
import json
from collections import defaultdict
from dataclasses import dataclass

from consentry_server.publish.certificates import Period
from consentry_server.publish.ledger import REPORTER_CAP
from consentry_server.storage.base import CONTRIBUTION_CAP
from consentry_server.storage.public import PublicStore
from consentry_server.storage.rows import FIRST_REPORT_UNKNOWN

__all__ = ["Distribution", "Feature", "Level", "Methods", "ReportFigures", "Week", "collect"]

#: How many features the report lists.
_TOP_FEATURES = 10


@dataclass(frozen=True)
class Week:
    """One ISO week of the period: its active installs and new installs as published (``None``: not published)."""

    label: str
    start: datetime.date
    installs: int | None
    new_installs: int | None
    new_unknown: bool  # installs of it reported over OTLP or a seed format: new installs cannot be known


@dataclass(frozen=True)
class Distribution:
    """The published installs per value of one field, in the last week of the period that has any."""

    field: str
    week: str | None
    counts: list[tuple[str, int]]


@dataclass(frozen=True)
class Feature:
    """An event counted in the period: its most installs in one published week, and its published weekly totals."""

    name: str
    purpose: str
    level: str
    peak_installs: int
    peak_week: str
    total: int
    weeks_published: int


@dataclass(frozen=True)
class Level:
    """A consent level of the manifest: what the user agrees to, and what it adds to a report."""

    name: str
    description: str
    system: list[str]
    dependencies: list[str]
    features: list[str]  # activity, plugins, data, exceptions: those the level turns on
    events: int
    commands: int


@dataclass(frozen=True)
class Methods:
    """How the figures were made: the manifest's levels and events, the privacy parameters and the settings."""

    levels: list[Level]
    events: list[dict[str, str]]
    commands: list[dict[str, str]]
    plugin_policy: str
    threshold: int
    noise: dict[str, object] | None
    cumulative_epsilon: float | None
    releases: int
    reporter_cap: int
    contribution_cap: int
    raw_retention_days: int
    log_retention_days: int


@dataclass(frozen=True)
class ReportFigures:
    """Everything the report shows, besides the certificate."""

    weeks: list[Week]
    distributions: list[Distribution]
    features: list[Feature]
    methods: Methods
    unknown_weeks: int = 0


def _week_label(start: datetime.date) -> str:
    return "{}-W{:02d}".format(*start.isocalendar()[:2])


def _int(value: object) -> int:
    return int(str(value))


def _weeks(store: PublicStore, app: str, period: Period, certified: dict[str, int | None]) -> list[Week]:
    """The period's weeks: active installs as certified, new installs as published (the largest over levels)."""
    starts = period.weeks()
    since, until = starts[0].isoformat(), starts[-1].isoformat()
    new: dict[str, list[int | None]] = defaultdict(list)
    for row in store.installs(app, "week", since=since, until=until):
        value = row["new_installs"]
        new[str(row["start"])].append(None if value is None else _int(value))
    unknown = {
        str(row["start"])
        for row in store.values(app, "week", FIRST_REPORT_UNKNOWN[0], since=since, until=until)
        if row["value"] == FIRST_REPORT_UNKNOWN[1]
    }
    weeks = []
    for start in starts:
        numbers = new.get(start.isoformat(), [])
        fresh = None if not numbers or None in numbers else max(n for n in numbers if n is not None)
        label = _week_label(start)
        weeks.append(Week(label, start, certified.get(label), fresh, start.isoformat() in unknown))
    return weeks


def _distribution(store: PublicStore, app: str, period: Period, name: str) -> Distribution:
    starts = {start.isoformat() for start in period.weeks()}
    rows = [row for row in store.values(app, "week", name) if row["start"] in starts]
    if not rows:
        return Distribution(name, None, [])
    last = max(str(row["start"]) for row in rows)
    counts = sorted(((str(row["value"]), _int(row["reporters"])) for row in rows if row["start"] == last),
                    key=lambda item: (-item[1], item[0]))  # fmt: skip
    return Distribution(name, _week_label(datetime.date.fromisoformat(last)), counts)


def _features(
    store: PublicStore, app: str, plugin: str | None, period: Period, manifest: dict[str, object]
) -> list[Feature]:
    starts = {start.isoformat() for start in period.weeks()}
    kind = "event" if plugin is None else "plugin_event"
    rows = [
        row
        for row in store.counters(app, "week", kind)
        if row["start"] in starts and (plugin is None or row["scope"] == plugin)
    ]
    declared = {str(event["name"]): event for event in _list_of_dicts(manifest.get("events"))}
    grouped: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        grouped[str(row["name"])].append(row)
    features = []
    for name, mine in grouped.items():
        best = max(mine, key=lambda row: (_int(row["reporters"]), str(row["start"])))
        event = declared.get(name, {})
        features.append(
            Feature(
                name=name,
                purpose=str(event.get("purpose", "")),
                level=str(event.get("level", "")),
                peak_installs=_int(best["reporters"]),
                peak_week=_week_label(datetime.date.fromisoformat(str(best["start"]))),
                total=sum(_int(row["total"]) for row in mine),
                weeks_published=len(mine),
            )
        )
    features.sort(key=lambda feature: (-feature.peak_installs, -feature.total, feature.name))
    return features[:_TOP_FEATURES]


def _list_of_dicts(value: object) -> list[dict[str, object]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _strings(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _levels(manifest: dict[str, object]) -> list[Level]:
    levels = manifest.get("levels")
    if not isinstance(levels, dict):
        return []
    events = _list_of_dicts(manifest.get("events"))
    commands = _list_of_dicts(manifest.get("commands"))
    return [
        Level(
            name=str(name),
            description=str(body.get("description", "")),
            system=_strings(body.get("system")),
            dependencies=_strings(body.get("dependencies")),
            features=[key for key in ("activity", "plugins", "data", "exceptions") if body.get(key) is True],
            events=sum(1 for event in events if event.get("level") == name),
            commands=sum(1 for command in commands if command.get("level") == name),
        )
        for name, body in levels.items()
        if isinstance(body, dict)
    ]


def _methods(store: PublicStore, app: str, manifest: dict[str, object], retention: tuple[int, int]) -> Methods:
    meta = store.meta()
    noise = meta.get("noise", "none")
    ledger = store.ledger(app)
    cumulative: float | None = 0.0
    if ledger:
        last = ledger[-1][-1]
        cumulative = None if last is None else float(str(last))
    plugins = manifest.get("plugins")
    policy = str(plugins.get("policy", "")) if isinstance(plugins, dict) else ""
    return Methods(
        levels=_levels(manifest),
        events=[
            {"name": str(e.get("name")), "level": str(e.get("level")), "purpose": str(e.get("purpose", ""))}
            for e in _list_of_dicts(manifest.get("events"))
        ],
        commands=[
            {"name": str(c.get("name")), "level": str(c.get("level")), "purpose": str(c.get("purpose", ""))}
            for c in _list_of_dicts(manifest.get("commands"))
        ],
        plugin_policy=policy,
        threshold=int(meta["threshold"]),
        noise=None if noise == "none" else json.loads(noise),
        cumulative_epsilon=cumulative,
        releases=len({row[0] for row in ledger}),
        reporter_cap=REPORTER_CAP,
        contribution_cap=CONTRIBUTION_CAP,
        raw_retention_days=retention[0],
        log_retention_days=retention[1],
    )


def collect(
    store: PublicStore,
    *,
    app: str,
    plugin: str | None,
    period: Period,
    certificate: dict[str, object],
    retention: tuple[int, int],
) -> ReportFigures:
    """The figures of a report of ``app`` (or its ``plugin``) over ``period``, from ``store`` only.

    ``certificate``: the signed certificate's object, whose weekly figures the report shows as they are.
    ``retention``: the server's raw and log retention, in days (settings, not published data).
    """
    manifest = next((info.manifest for info in store.apps() if info.name == app), {})
    figures = certificate["figures"]
    assert isinstance(figures, dict)  # noqa: S101 - made by certificate_figures
    weekly = figures["weekly_active_installs"]
    certified = {str(week["week"]): week["installs"] for week in weekly["by_week"]}
    weeks = _weeks(store, app, period, certified)
    if plugin is None:
        distributions = [_distribution(store, app, period, name) for name in ("app_version", "system.os")]
    else:
        distributions = [_distribution(store, app, period, f"plugin.{plugin}")]
    return ReportFigures(
        weeks=weeks,
        distributions=distributions,
        features=_features(store, app, plugin, period, manifest),
        methods=_methods(store, app, manifest, retention),
        unknown_weeks=sum(week.new_unknown for week in weeks),
    )
