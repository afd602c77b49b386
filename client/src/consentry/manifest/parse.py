"""Reading manifests from TOML or JSON, with errors that name the file, the field and what is wrong.

The parser collects every problem in a file before it gives up, so an author fixes them in one pass.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
import sys
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from consentry.manifest.model import NONE_LEVEL, CommandSpec, EventSpec, Level, Manifest, PluginManifest, PluginPolicy
from consentry.wire import strict_json
from consentry.wire.schema import (
    APP_NAME,
    EVENT_NAME,
    LEVEL_NAME,
    MAX_EVENTS_PER_DAY,
    OTHER,
    PACKAGE_NAME,
    PARAM_NAME,
    PARAM_VALUE,
    SYSTEM_FIELDS,
)
from consentry.wire.spec import Str

__all__ = [
    "MANIFEST_VERSION",
    "MAX_MANIFEST_BYTES",
    "ManifestError",
    "load_any_manifest",
    "load_manifest",
    "load_plugin_manifest",
    "loads_any_manifest",
    "loads_manifest",
    "loads_plugin_manifest",
    "manifest_from_bytes",
    "parse_manifest",
    "parse_plugin_manifest",
]

MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 1024 * 1024
_DEFAULT_NONE_DESCRIPTION = "Nothing is collected and nothing is sent."
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,63}$")
_COMPONENT = Str(r"^[A-Za-z0-9][A-Za-z0-9_. -]{0,63}$", 64)
_T = TypeVar("_T")


class ManifestError(ValueError):
    """A manifest is malformed. ``problems`` lists ``(field, what is wrong)``; ``source`` names the file."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {field}: {reason}" for field, reason in problems]
        super().__init__("\n".join(lines))


class _Reader:
    """Typed accessors over parsed TOML/JSON that record problems instead of raising."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def problem(self, path: str, reason: str) -> None:
        self.problems.append((path, reason))

    def table(self, parent: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> dict[str, Any]:
        value = parent.get(key)
        if value is None:
            if required:
                self.problem(path, "is required")
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"must be a table, got {_kind(value)}")
            return {}
        return value

    def keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
        for key in table:
            if key not in allowed:
                self.problem(_join(path, key), f"is not a known field (known: {', '.join(allowed)})")

    def text(self, table: Mapping[str, Any], key: str, path: str, limit: int, *, required: bool = True) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                self.problem(path, "is required")
            return None
        if not isinstance(value, str):
            self.problem(path, f"must be a string, got {_kind(value)}")
            return None
        if not value.strip():
            self.problem(path, "must not be empty")
            return None
        if len(value) > limit:
            self.problem(path, f"must be at most {limit} characters, got {len(value)}")
            return None
        if _CONTROL.search(value):
            self.problem(path, "must not contain control or bidirectional-override characters")
            return None
        return value.strip()

    def name(self, value: object, path: str, spec: Str, what: str) -> str | None:
        if not isinstance(value, str):
            self.problem(path, f"must be a string, got {_kind(value)}")
            return None
        if len(value) > spec.max_length or spec.regex.fullmatch(value) is None:
            self.problem(path, f"{_short(value)} is not a valid {what} (must match {spec.pattern})")
            return None
        return value

    def boolean(self, table: Mapping[str, Any], key: str, path: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            self.problem(path, f"must be true or false, got {_kind(value)}")
            return False
        return value

    def names(
        self, table: Mapping[str, Any], key: str, path: str, check: Callable[[object, str], _T | None], limit: int
    ) -> tuple[_T, ...]:
        value = table.get(key, [])
        if not isinstance(value, list):
            self.problem(path, f"must be an array, got {_kind(value)}")
            return ()
        if len(value) > limit:
            self.problem(path, f"must have at most {limit} items, got {len(value)}")
            return ()
        out: list[_T] = []
        for index, item in enumerate(value):
            checked = check(item, f"{path}[{index}]")
            if checked is None:
                continue
            if checked in out:
                self.problem(f"{path}[{index}]", f"{_short(checked)} is listed twice")
                continue
            out.append(checked)
        return tuple(out)

    def url(self, table: Mapping[str, Any], key: str, path: str, *, required: bool) -> str | None:
        value = self.text(table, key, path, 2048, required=required)
        if value is None:
            return None
        problem = _url_problem(value)
        if problem:
            self.problem(path, f"{_short(value)} is not a usable URL: {problem}")
            return None
        return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    kinds = {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer"}
    return kinds.get(type(value), type(value).__name__)


_SHORT = 60
_MAX_HOST = 253


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


def _url_problem(value: str) -> str | None:
    if any(char.isspace() for char in value):
        return "it contains white space"
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port
    except ValueError as error:
        return str(error)
    host = parts.hostname or ""
    if parts.scheme not in {"https", "http"}:
        return "the scheme must be https"
    if not host:
        return "it has no host name"
    if parts.username is not None or parts.password is not None:
        return "it must not carry a user name or password"
    if parts.fragment:
        return "it must not have a #fragment"
    if port == 0:
        return "port 0 is not a port"
    loopback = host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        labels = host.rstrip(".").split(".")
        if len(host) > _MAX_HOST or not all(_HOST_LABEL.match(label) for label in labels):
            return f"{host!r} is not a valid host name"
    if parts.scheme == "http" and not loopback:
        return "the scheme must be https (plain http is only allowed to localhost)"
    return None


# ---- applications ------------------------------------------------------------------------------------------
_TOP_KEYS = ("manifest_version", "app", "levels", "events", "commands", "plugins")
_APP_KEYS = ("name", "title", "homepage", "contact", "distribution", "consent_text")
_LEVEL_KEYS = ("description", "endpoint", "system", "dependencies", "activity", "exceptions", "plugins", "data")
_EVENT_KEYS = ("name", "level", "purpose", "component")
_COMMAND_KEYS = ("name", "level", "purpose", "params")
_PLUGIN_KEYS = ("policy", "public", "default")


def parse_manifest(document: Mapping[str, Any], source: str = "<manifest>") -> Manifest:
    """Build a :class:`Manifest` from parsed TOML or JSON; raise :class:`ManifestError` listing every problem."""
    reader = _Reader()
    if not isinstance(document, Mapping):
        raise ManifestError(source, [("(file)", f"must be a table, got {_kind(document)}")])
    _check_version(reader, document)
    reader.keys(document, _TOP_KEYS, "")
    app = reader.table(document, "app", "app")
    reader.keys(app, _APP_KEYS, "app")
    name = None
    if "name" in app:
        name = reader.name(app["name"], "app.name", APP_NAME, "application name")
    elif app:
        reader.problem("app.name", "is required")
    consent_text = reader.text(app, "consent_text", "app.consent_text", 10_000)
    title = reader.text(app, "title", "app.title", 100, required=False)
    homepage = reader.url(app, "homepage", "app.homepage", required=False)
    contact = _contact(reader, app)
    distribution = None
    if "distribution" in app:
        distribution = reader.name(app["distribution"], "app.distribution", PACKAGE_NAME, "distribution name")

    levels = _levels(reader, document)
    level_ranks = {level.name: level.rank for level in levels}
    events = _events(reader, document.get("events", []), "events", level_ranks)
    commands = _commands(reader, document, level_ranks)
    plugins = _plugin_policy(reader, document, levels)

    if reader.problems or name is None or consent_text is None:
        raise ManifestError(source, reader.problems or [("app", "is incomplete")])
    return Manifest(
        name=name,
        consent_text=consent_text,
        levels=levels,
        events=events,
        commands=commands,
        plugins=plugins,
        title=title or name,
        homepage=homepage,
        contact=contact,
        distribution=distribution,
        source=source,
    )


def _check_version(reader: _Reader, document: Mapping[str, Any]) -> None:
    version = document.get("manifest_version")
    if version is None:
        reader.problem("manifest_version", f"is required (this parser reads version {MANIFEST_VERSION})")
    elif type(version) is not int or version != MANIFEST_VERSION:
        reader.problem("manifest_version", f"must be {MANIFEST_VERSION}, got {_short(version)}")


def _contact(reader: _Reader, app: Mapping[str, Any]) -> str | None:
    contact = reader.text(app, "contact", "app.contact", 254, required=False)
    if contact is None or _EMAIL.match(contact) or _url_problem(contact) is None:
        return contact
    reader.problem("app.contact", f"{_short(contact)} is neither an e-mail address nor an https URL")
    return None


def _levels(reader: _Reader, document: Mapping[str, Any]) -> tuple[Level, ...]:
    table = reader.table(document, "levels", "levels")
    levels: list[Level] = []
    seen_system: dict[str, str] = {}
    seen_dependencies: dict[str, str] = {}
    seen_features: dict[str, str] = {}
    if NONE_LEVEL not in table:
        levels.append(Level(NONE_LEVEL, 0, _DEFAULT_NONE_DESCRIPTION))
    for key, body in table.items():
        path = f"levels.{key}"
        rank = len(levels)
        if key == NONE_LEVEL:
            if rank:
                reader.problem(path, "must be the first level")
            if isinstance(body, dict):
                reader.keys(body, ("description",), path)
                description = reader.text(body, "description", f"{path}.description", 1000)
                levels.append(Level(NONE_LEVEL, 0, description or _DEFAULT_NONE_DESCRIPTION))
            else:
                reader.problem(path, f"must be a table, got {_kind(body)}")
            continue
        if reader.name(key, path, LEVEL_NAME, "level name") is None:
            continue
        if not isinstance(body, dict):
            reader.problem(path, f"must be a table, got {_kind(body)}")
            continue
        reader.keys(body, _LEVEL_KEYS, path)
        level = Level(
            name=key,
            rank=rank,
            description=reader.text(body, "description", f"{path}.description", 1000) or "",
            endpoint=reader.url(body, "endpoint", f"{path}.endpoint", required=True),
            system=reader.names(body, "system", f"{path}.system", _system_field(reader), len(SYSTEM_FIELDS)),
            dependencies=reader.names(
                body,
                "dependencies",
                f"{path}.dependencies",
                lambda v, p: reader.name(v, p, PACKAGE_NAME, "distribution name"),
                100,
            ),
            activity=reader.boolean(body, "activity", f"{path}.activity"),
            exceptions=reader.boolean(body, "exceptions", f"{path}.exceptions"),
            plugins=reader.boolean(body, "plugins", f"{path}.plugins"),
            data=reader.boolean(body, "data", f"{path}.data"),
        )
        _once(reader, seen_system, level.system, key, f"{path}.system", what="system field")
        _once(reader, seen_dependencies, level.dependencies, key, f"{path}.dependencies", what="dependency")
        features = tuple(name for name in ("activity", "exceptions", "plugins", "data") if getattr(level, name))
        _once(reader, seen_features, features, key, path, what="feature")
        levels.append(level)
    if "levels" in document and len(levels) < 2:  # noqa: PLR2004 - 'none' plus at least one level that collects
        reader.problem("levels", "must declare at least one level besides 'none'")
    return tuple(levels)


def _system_field(reader: _Reader) -> Callable[[object, str], str | None]:
    def check(value: object, path: str) -> str | None:
        if value not in SYSTEM_FIELDS:
            reader.problem(path, f"{_short(value)} is not a system field (known: {', '.join(SYSTEM_FIELDS)})")
            return None
        return str(value)

    return check


def _once(reader: _Reader, seen: dict[str, str], names: tuple[str, ...], level: str, path: str, *, what: str) -> None:
    for name in names:
        if name in seen:
            reader.problem(path, f"{what} {name!r} is already collected at level {seen[name]!r}")
        seen.setdefault(name, level)


def _level_ref(reader: _Reader, value: object, path: str, ranks: Mapping[str, int]) -> str | None:
    if not isinstance(value, str):
        reader.problem(path, "is required" if value is None else f"must be a string, got {_kind(value)}")
        return None
    if value == NONE_LEVEL:
        reader.problem(path, "'none' collects nothing; choose a level that collects")
        return None
    if value not in ranks:
        reader.problem(path, f"unknown level {value!r} (levels: {', '.join(ranks)})")
        return None
    return value


def _entries(reader: _Reader, value: object, path: str, limit: int) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(value, list):
        reader.problem(path, f"must be an array of tables, got {_kind(value)}")
        return []
    if len(value) > limit:
        reader.problem(path, f"must have at most {limit} entries, got {len(value)}")
        return []
    out = []
    for index, entry in enumerate(value):
        entry_path = f"{path}[{index}]"
        if not isinstance(entry, dict):
            reader.problem(entry_path, f"must be a table, got {_kind(entry)}")
            continue
        out.append((entry_path, entry))
    return out


def _declarations(
    reader: _Reader,
    value: object,
    path: str,
    ranks: Mapping[str, int],
    extra: Callable[[dict[str, Any], str], _T],
    *,
    what: str,
    keys: tuple[str, ...],
    limit: int,
) -> Iterator[tuple[str, str, str, _T]]:
    """The well-formed entries of an array of ``[[events]]`` or ``[[commands]]``: name, level, purpose, extra.

    ``extra(entry, entry_path)`` reads what is particular to the kind of entry, for every entry, so that its
    problems are reported too; entries with problems in the common fields, or declared twice, are skipped.
    """
    seen: set[str] = set()
    for entry_path, entry in _entries(reader, value, path, limit):
        reader.keys(entry, keys, entry_path)
        name = reader.name(entry.get("name"), f"{entry_path}.name", EVENT_NAME, f"{what} name")
        level = _level_ref(reader, entry.get("level"), f"{entry_path}.level", ranks)
        purpose = reader.text(entry, "purpose", f"{entry_path}.purpose", 300)
        particular = extra(entry, entry_path)
        if name is None or level is None or purpose is None:
            continue
        if name in seen:
            reader.problem(f"{entry_path}.name", f"{what} {name!r} is declared twice")
            continue
        seen.add(name)
        yield name, level, purpose, particular


def _events(reader: _Reader, value: object, path: str, ranks: Mapping[str, int]) -> dict[str, EventSpec]:
    def component(entry: dict[str, Any], entry_path: str) -> str | None:
        if "component" not in entry:
            return None
        return reader.name(entry["component"], f"{entry_path}.component", _COMPONENT, "component name")

    declared = _declarations(
        reader, value, path, ranks, component, what="event", keys=_EVENT_KEYS, limit=MAX_EVENTS_PER_DAY
    )
    return {name: EventSpec(name, level, purpose, extra) for name, level, purpose, extra in declared}


def _commands(reader: _Reader, document: Mapping[str, Any], ranks: Mapping[str, int]) -> dict[str, CommandSpec]:
    def params(entry: dict[str, Any], entry_path: str) -> dict[str, tuple[str, ...]]:
        return _params(reader, entry.get("params", {}), f"{entry_path}.params")

    value = document.get("commands", [])
    declared = _declarations(reader, value, "commands", ranks, params, what="command", keys=_COMMAND_KEYS, limit=1000)
    return {name: CommandSpec(name, level, purpose, extra) for name, level, purpose, extra in declared}


def _params(reader: _Reader, value: object, path: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        reader.problem(path, f"must be a table of parameter = [allowed values], got {_kind(value)}")
        return {}
    if len(value) > 64:  # noqa: PLR2004 - the wire schema's limit on parameters per command
        reader.problem(path, f"must have at most 64 parameters, got {len(value)}")
        return {}
    params: dict[str, tuple[str, ...]] = {}
    for key in value:
        param = reader.name(key, f"{path}.{key}", PARAM_NAME, "parameter name")
        values = reader.names(
            value, key, f"{path}.{key}", lambda v, p: reader.name(v, p, PARAM_VALUE, "parameter value"), 100
        )
        if param is not None:
            params[param] = values
    return params


def _plugin_policy(reader: _Reader, document: Mapping[str, Any], levels: tuple[Level, ...]) -> PluginPolicy:
    table = reader.table(document, "plugins", "plugins", required=False)
    reader.keys(table, _PLUGIN_KEYS, "plugins")
    policy = table.get("policy", "none")
    if policy not in ("none", "listed", "declared"):
        reader.problem("plugins.policy", f"must be one of none, listed, declared; got {_short(policy)}")
        policy = "none"
    default = table.get("default", "allow")
    if default not in ("allow", "deny"):
        reader.problem("plugins.default", f"must be allow or deny, got {_short(default)}")
        default = "allow"

    def public_name(value: object, path: str) -> str | None:
        name = reader.name(value, path, PACKAGE_NAME, "plugin name")
        if name == OTHER:
            reader.problem(path, f"{OTHER!r} is reserved for plugins that are not public")
            return None
        return name

    public = reader.names(table, "public", "plugins.public", public_name, 10_000)
    if public and policy != "listed":
        reader.problem("plugins.public", "is only used with policy = 'listed'")
    listed_at = [level.name for level in levels if level.plugins]
    if policy != "none" and not listed_at:
        reader.problem("plugins.policy", f"is {policy!r} but no level sets plugins = true")
    if policy == "none" and listed_at:
        reader.problem(f"levels.{listed_at[0]}.plugins", "is true but plugins.policy is 'none'")
    return PluginPolicy(policy, public, default)


# ---- plugins -----------------------------------------------------------------------------------------------
def parse_plugin_manifest(
    document: Mapping[str, Any], host: Manifest | None = None, source: str = "<manifest>"
) -> PluginManifest:
    """Build a :class:`PluginManifest`; event levels are checked against ``host`` when it is given."""
    reader = _Reader()
    if not isinstance(document, Mapping):
        raise ManifestError(source, [("(file)", f"must be a table, got {_kind(document)}")])
    _check_version(reader, document)
    reader.keys(document, ("manifest_version", "plugin", "events"), "")
    plugin = reader.table(document, "plugin", "plugin")
    reader.keys(plugin, ("name", "host", "title", "public", "homepage"), "plugin")
    name = reader.name(plugin.get("name"), "plugin.name", PACKAGE_NAME, "plugin name")
    if name == OTHER:
        reader.problem("plugin.name", f"{OTHER!r} is reserved")
    host_name = reader.name(plugin.get("host"), "plugin.host", APP_NAME, "application name")
    if host is not None and host_name is not None and host_name != host.name:
        reader.problem("plugin.host", f"is {host_name!r} but the host application is {host.name!r}")
    title = reader.text(plugin, "title", "plugin.title", 100, required=False)
    homepage = reader.url(plugin, "homepage", "plugin.homepage", required=False)
    public = reader.boolean(plugin, "public", "plugin.public")
    ranks = {level.name: level.rank for level in host.levels} if host else _AnyLevel()
    events = _events(reader, document.get("events", []), "events", ranks)
    if reader.problems or name is None or host_name is None:
        raise ManifestError(source, reader.problems or [("plugin", "is incomplete")])
    return PluginManifest(name, host_name, events, title or name, public, homepage, source)


class _AnyLevel(dict[str, int]):
    """Level lookup used when a plugin manifest is read without its host: any level name is accepted."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and LEVEL_NAME.regex.fullmatch(key) is not None


# ---- files -------------------------------------------------------------------------------------------------
def _toml() -> ModuleType | None:
    if sys.version_info >= (3, 11):
        return importlib.import_module("tomllib")
    try:  # Python 3.10: tomli is the same parser, when the environment has it
        return importlib.import_module("tomli")
    except ImportError:
        return None


def _read(text: str, fmt: str, source: str) -> Mapping[str, Any]:
    if len(text) > MAX_MANIFEST_BYTES:
        raise ManifestError(source, [("(file)", f"is larger than {MAX_MANIFEST_BYTES} bytes")])
    if fmt == "json":
        try:
            document = strict_json.loads(text)
        except strict_json.StrictJSONError as error:
            raise ManifestError(source, [("(file)", f"is not readable JSON: {error}")]) from None
    elif fmt == "toml":
        toml = _toml()
        if toml is None:
            raise ManifestError(
                source,
                [("(file)", "reading TOML needs Python 3.11 or the tomli package; or ship the manifest as JSON")],
            )
        try:
            document = toml.loads(text)
        except (ValueError, RecursionError) as error:  # TOMLDecodeError is a ValueError
            raise ManifestError(source, [("(file)", f"is not valid TOML: {error}")]) from None
    else:
        raise ValueError(f"unknown manifest format {fmt!r}; use 'toml' or 'json'")
    if not isinstance(document, dict):
        raise ManifestError(source, [("(file)", f"must hold a table, got {_kind(document)}")])
    return document


def _read_file(path: str | Path) -> tuple[Mapping[str, Any], str]:
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_MANIFEST_BYTES + 1)
    except OSError as error:
        raise ManifestError(source, [("(file)", f"cannot be read: {error.strerror or error}")]) from None
    return _read_bytes(raw, path), source


def _read_bytes(raw: bytes, path: Path) -> Mapping[str, Any]:
    source = str(path)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(source, [("(file)", f"is larger than {MAX_MANIFEST_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ManifestError(source, [("(file)", f"is not UTF-8 (byte {error.start})")]) from None
    fmt = "json" if path.suffix.lower() == ".json" else "toml"
    return _read(text, fmt, source)


def manifest_from_bytes(raw: bytes, path: str | Path) -> Manifest:
    """The application manifest in ``raw``, the content of file ``path`` (``.toml`` or ``.json``), validated.

    :func:`load_manifest` when the content was read already: the start-up cache keeps exactly the bytes it
    validated.
    """
    path = Path(path)
    return parse_manifest(_read_bytes(raw, path), str(path))


def loads_manifest(text: str, *, fmt: str = "toml", source: str = "<string>") -> Manifest:
    """Parse a manifest from TOML (default) or JSON text."""
    return parse_manifest(_read(text, fmt, source), source)


def load_manifest(path: str | Path) -> Manifest:
    """Read an application manifest from a ``.toml`` or ``.json`` file."""
    document, source = _read_file(path)
    return parse_manifest(document, source)


def loads_plugin_manifest(
    text: str, host: Manifest | None = None, *, fmt: str = "toml", source: str = "<string>"
) -> PluginManifest:
    """Parse a plugin manifest from TOML (default) or JSON text."""
    return parse_plugin_manifest(_read(text, fmt, source), host, source)


def load_plugin_manifest(path: str | Path, host: Manifest | None = None) -> PluginManifest:
    """Read a plugin manifest from a ``.toml`` or ``.json`` file."""
    document, source = _read_file(path)
    return parse_plugin_manifest(document, host, source)


def _any(document: Mapping[str, Any], source: str) -> Manifest | PluginManifest:
    if "plugin" in document and "app" not in document:
        return parse_plugin_manifest(document, None, source)
    return parse_manifest(document, source)


def loads_any_manifest(text: str, *, fmt: str = "toml", source: str = "<string>") -> Manifest | PluginManifest:
    """Parse an application manifest, or a plugin manifest if the document has a ``plugin`` table."""
    return _any(_read(text, fmt, source), source)


def load_any_manifest(path: str | Path) -> Manifest | PluginManifest:
    """Read an application or plugin manifest from a file."""
    document, source = _read_file(path)
    return _any(document, source)
