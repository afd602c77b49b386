"""The manifest as Python values: an application's allow-list.

A :class:`Manifest` says what an application may collect, level by level, where each level is sent and what
the user is told. The same object drives the client (nothing outside it is recorded), the consent screen,
the server (anything outside it is rejected) and the public transparency page.

The consent version is derived from what the manifest collects and where it sends it, never from its wording:
adding an event or a system field changes it, rewording a description does not.

:func:`from_checked` builds a manifest again from the document of one that was validated before (the start-up
cache); reading and validating a manifest file is :mod:`consentry.manifest.parse`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A command-line tool with consent imports this module at each start: hashlib, json and urllib.parse are imported
# where they are used, not here.
TYPE_CHECKING = False  # not imported from typing: see pyproject.toml
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Literal

__all__ = [
    "NONE_LEVEL",
    "CommandSpec",
    "EventSpec",
    "Level",
    "Manifest",
    "PluginManifest",
    "PluginPolicy",
    "from_checked",
]

NONE_LEVEL = "none"
_FEATURES = ("activity", "exceptions", "plugins", "data")


@dataclass(frozen=True)
class Level:
    """One rung of the ladder. Levels are cumulative: consenting to a level consents to those below it."""

    name: str
    rank: int
    description: str
    endpoint: str | None = None
    system: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    activity: bool = False
    exceptions: bool = False
    plugins: bool = False
    data: bool = False

    @property
    def host(self) -> str | None:
        """The host name of this level's endpoint: what an administrator blocks to block this level."""
        import urllib.parse  # noqa: PLC0415 - see the imports

        return urllib.parse.urlsplit(self.endpoint).hostname if self.endpoint else None


@dataclass(frozen=True)
class EventSpec:
    """An event the application may count."""

    name: str
    level: str
    purpose: str
    component: str | None = None


@dataclass(frozen=True)
class CommandSpec:
    """A command whose runs are recorded as spans.

    ``params`` maps each parameter that may be reported to its allowed values. A parameter with allowed values
    is reported with its value when the value is allowed (otherwise as "given"); a parameter with no allowed
    values is only ever reported as given or not given.
    """

    name: str
    level: str
    purpose: str
    params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class PluginPolicy:
    """Which plugins are reported by name.

    ``none``: plugins are never reported. ``listed``: only the names in ``public``; every other plugin is
    reported as ``other``. ``declared``: plugins that ship a Consentry plugin manifest declaring themselves
    public. ``default`` is whether a plugin's own events are recorded before the user allowed or denied it.
    """

    policy: Literal["none", "listed", "declared"] = "none"
    public: tuple[str, ...] = ()
    default: Literal["allow", "deny"] = "allow"


def _digest(items: list[str]) -> str:
    import hashlib  # noqa: PLC0415 - see the imports
    import json  # noqa: PLC0415

    payload = json.dumps(sorted(items), separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()[:16]


@dataclass(frozen=True)
class Manifest:
    """An application's manifest (format version 1)."""

    name: str
    consent_text: str
    levels: tuple[Level, ...]
    events: Mapping[str, EventSpec] = field(default_factory=dict)
    commands: Mapping[str, CommandSpec] = field(default_factory=dict)
    plugins: PluginPolicy = field(default_factory=PluginPolicy)
    title: str = ""
    homepage: str | None = None
    contact: str | None = None
    distribution: str | None = None
    source: str = "<manifest>"

    # ---- levels -------------------------------------------------------------------------------------------
    def level(self, name: str) -> Level:
        """Return the level called ``name``; raise KeyError if there is none."""
        for level in self.levels:
            if level.name == name:
                return level
        raise KeyError(name)

    @property
    def opt_out_variables(self) -> tuple[str, ...]:
        """Each environment variable, set as shown, that switches this application's telemetry off."""
        from consentry._consent.quick import opt_out_variables  # noqa: PLC0415 - the rule the client applies

        return opt_out_variables(self.name)

    @property
    def level_names(self) -> tuple[str, ...]:
        """Level names from least to most data, ``none`` first."""
        return tuple(level.name for level in self.levels)

    def levels_upto(self, name: str) -> tuple[Level, ...]:
        """The collecting levels that consent to ``name`` covers, lowest first (``none`` excluded)."""
        rank = self.level(name).rank
        return tuple(level for level in self.levels if 0 < level.rank <= rank)

    def feature_level(self, feature: str) -> Level | None:
        """The level that carries ``feature`` (one of activity, exceptions, plugins, data), if any."""
        return next((level for level in self.levels if getattr(level, feature)), None)

    # ---- consent ------------------------------------------------------------------------------------------
    def collected(self, upto: str | None = None) -> frozenset[str]:
        """What consent up to level ``upto`` (default: the highest) lets the application collect and send.

        Each item names one thing collected, or one host data is sent to, without the level it sits at: if a
        manifest change makes ``collected(level)`` grow, consent at that level must be asked again; if it only
        shrinks or moves items between consented levels, it need not.
        """
        rank = self.levels[-1].rank if upto is None else self.level(upto).rank
        ranks = {level.name: level.rank for level in self.levels}
        return frozenset(item for level, item in self._items() if ranks[level] <= rank)

    def _items(self) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        for level in self.levels[1:]:
            items.append((level.name, f"host:{level.host}"))
            items.extend((level.name, f"system:{name}") for name in level.system)
            items.extend((level.name, f"dependency:{name}") for name in level.dependencies)
            items.extend((level.name, f"feature:{name}") for name in _FEATURES if getattr(level, name))
            if level.plugins:
                policy = self.plugins
                items.append((level.name, f"plugins:{policy.policy}:{policy.default}"))
                items.extend((level.name, f"plugin:{name}") for name in policy.public)
        items.extend((event.level, f"event:{event.name}") for event in self.events.values())
        for command in self.commands.values():
            items.append((command.level, f"command:{command.name}"))
            for param, values in command.params.items():
                items.append((command.level, f"param:{command.name}:{param}"))
                items.extend((command.level, f"value:{command.name}:{param}={value}") for value in values)
        return items

    @property
    def consent_version(self) -> str:
        """16 hex digits that change whenever what is collected, at which level, or where it goes changes."""
        return _digest([f"{level}|{item}" for level, item in self._items()] + ["ladder|" + ",".join(self.level_names)])

    # ---- events -------------------------------------------------------------------------------------------
    def events_at(self, level: str) -> tuple[EventSpec, ...]:
        """The events reported at exactly ``level``."""
        return tuple(event for event in self.events.values() if event.level == level)

    def is_public_plugin(self, name: str) -> bool:
        """Whether a plugin called ``name`` is reported by name under the ``listed`` policy."""
        return self.plugins.policy == "listed" and name in self.plugins.public

    def to_document(self) -> dict[str, object]:
        """The manifest as a TOML/JSON document that parses back to an equal manifest."""
        app: dict[str, object] = {"name": self.name, "title": self.title, "consent_text": self.consent_text}
        optional = {"homepage": self.homepage, "contact": self.contact, "distribution": self.distribution}
        app.update((key, value) for key, value in optional.items() if value is not None)
        levels: dict[str, object] = {}
        for level in self.levels:
            body: dict[str, object] = {"description": level.description}
            if level.rank:
                body.update(endpoint=level.endpoint, system=list(level.system), dependencies=list(level.dependencies))
                body.update((name, getattr(level, name)) for name in _FEATURES)
            levels[level.name] = body
        return {
            "manifest_version": 1,
            "app": app,
            "levels": levels,
            "events": [_event_document(event) for event in self.events.values()],
            "commands": [
                {
                    "name": command.name,
                    "level": command.level,
                    "purpose": command.purpose,
                    "params": {name: list(values) for name, values in command.params.items()},
                }
                for command in self.commands.values()
            ],
            "plugins": {
                "policy": self.plugins.policy,
                "public": list(self.plugins.public),
                "default": self.plugins.default,
            },
        }


@dataclass(frozen=True)
class PluginManifest:
    """A plugin's manifest: its own events, namespaced under the plugin, at its host's levels."""

    name: str
    host: str
    events: Mapping[str, EventSpec] = field(default_factory=dict)
    title: str = ""
    public: bool = False
    homepage: str | None = None
    source: str = "<manifest>"

    @property
    def consent_version(self) -> str:
        """Changes whenever the plugin's events or their levels change."""
        items = [f"{event.level}|event:{event.name}" for event in self.events.values()]
        return _digest([*items, f"host|{self.host}", f"public|{self.public}"])

    def to_document(self) -> dict[str, object]:
        """The plugin manifest as a TOML/JSON document that parses back to an equal manifest."""
        plugin: dict[str, object] = {"name": self.name, "host": self.host, "title": self.title, "public": self.public}
        if self.homepage is not None:
            plugin["homepage"] = self.homepage
        events = [_event_document(event) for event in self.events.values()]
        return {"manifest_version": 1, "plugin": plugin, "events": events}

    def collected(self, host: Manifest, upto: str) -> frozenset[str]:
        """The plugin's events that consent up to ``upto`` on ``host`` covers."""
        rank = host.level(upto).rank
        return frozenset(f"event:{e.name}" for e in self.events.values() if host.level(e.level).rank <= rank)


def _event_document(event: EventSpec) -> dict[str, object]:
    out: dict[str, object] = {"name": event.name, "level": event.level, "purpose": event.purpose}
    if event.component is not None:
        out["component"] = event.component
    return out


# ---- a validated manifest, read back -----------------------------------------------------------------------------
def from_checked(document: Mapping[str, object], source: str = "<manifest>") -> Manifest:
    """The :class:`Manifest` whose :meth:`Manifest.to_document` is ``document``, without validating it again.

    For a document that a validated manifest wrote (the start-up cache, :mod:`consentry._local.startup_cache`): only its
    shapes are checked, so that a damaged one raises ``ValueError`` (or ``KeyError``, ``TypeError``) instead of
    making a manifest that would fail later. Anything else goes through
    :func:`~consentry.manifest.parse_manifest`, which checks every name and value.
    """
    app = _table(document["app"])
    levels = _checked_levels(_table(document["levels"]))
    known = {level.name for level in levels[1:]}
    events = {}
    for entry in map(_table, _list(document["events"])):
        component = None if entry.get("component") is None else _text(entry["component"])
        name, level, purpose = _text(entry["name"]), _level(entry["level"], known), _text(entry["purpose"])
        events[name] = EventSpec(name, level, purpose, component)
    commands = {}
    for entry in map(_table, _list(document["commands"])):
        params = {_text(param): _texts(values) for param, values in _table(entry["params"]).items()}
        name, level, purpose = _text(entry["name"]), _level(entry["level"], known), _text(entry["purpose"])
        commands[name] = CommandSpec(name, level, purpose, params)
    plugins = _table(document["plugins"])
    policy, default = plugins["policy"], plugins["default"]
    if policy not in ("none", "listed", "declared") or default not in ("allow", "deny"):
        raise ValueError("not a plugin policy")
    optional = {
        key: None if app.get(key) is None else _text(app[key]) for key in ("homepage", "contact", "distribution")
    }
    return Manifest(
        name=_text(app["name"]),
        consent_text=_text(app["consent_text"]),
        levels=levels,
        events=events,
        commands=commands,
        plugins=PluginPolicy(policy, _texts(plugins["public"]), default),
        title=_text(app["title"]),
        source=source,
        **optional,
    )


def _checked_levels(table: dict[str, object]) -> tuple[Level, ...]:
    levels: list[Level] = []
    for rank, (name, value) in enumerate(table.items()):
        body = _table(value)
        if (rank == 0) != (name == NONE_LEVEL):
            raise ValueError("'none' is not the first level")
        if rank == 0:
            levels.append(Level(name, 0, _text(body["description"])))
            continue
        levels.append(
            Level(
                name=name,
                rank=rank,
                description=_text(body["description"]),
                endpoint=_text(body["endpoint"]),
                system=_texts(body["system"]),
                dependencies=_texts(body["dependencies"]),
                activity=_flag(body["activity"]),
                exceptions=_flag(body["exceptions"]),
                plugins=_flag(body["plugins"]),
                data=_flag(body["data"]),
            )
        )
    if len(levels) < 2:  # noqa: PLR2004 - 'none' and at least one level that collects
        raise ValueError("no level that collects")
    return tuple(levels)


def _table(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise TypeError("not a table")
    return value


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError("not an array")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _texts(value: object) -> tuple[str, ...]:
    return tuple(_text(item) for item in _list(value))


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError("not a boolean")
    return value


def _level(value: object, known: set[str]) -> str:
    if value not in known:
        raise ValueError("not a level that collects")
    return _text(value)
