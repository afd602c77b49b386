"""A tiny declarative description of JSON documents.

The wire schema is written once, as data built from these node types. Two things are derived from it:
the strict decoder (:func:`check`) and the language-neutral JSON Schema (:func:`to_json_schema`), so the
two cannot drift apart. Only the constructs the wire format needs exist here; anything not described is
rejected.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "Array",
    "Bool",
    "Date",
    "DuplicateKeys",
    "Enum",
    "Field",
    "Int",
    "Map",
    "Node",
    "Nullable",
    "Object",
    "OneOf",
    "Str",
    "Unreadable",
    "WireError",
    "check",
    "to_json_schema",
]


class WireError(ValueError):
    """A document does not match the wire schema.

    ``path`` names the offending field with dots (``counts.2026-11-20.viewer.open``); ``reason`` says what is
    wrong with it. ``str(error)`` gives both.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path or '(document)'}: {reason}")
        self.path = path
        self.reason = reason


_KEY_IN_PATH = 64


def _join(path: str, key: str) -> str:
    """``path.key``, with a key from the document shortened: error messages never echo much of the input."""
    if len(key) > _KEY_IN_PATH:
        key = key[: _KEY_IN_PATH - 3] + "..."
    return f"{path}.{key}" if path else key


class Unreadable:
    """A JSON value the decoder refuses wherever it appears: a fraction, ``NaN``, an integer of many digits.

    The parser puts it in place of the value, so that the schema check rejects it with the field's path.
    """

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return self.what


class DuplicateKeys(dict[str, object]):
    """A parsed JSON object in which ``duplicate`` appeared more than once; rejected with its path."""

    duplicate = ""


def _type_name(value: object) -> str:
    if isinstance(value, Unreadable):
        return value.what
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer"}
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)


_SHORT = 40


def _reject_duplicates(value: object, path: str) -> None:
    if isinstance(value, DuplicateKeys):
        raise WireError(_join(path, value.duplicate), "appears twice in the same object")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


@dataclass(frozen=True)
class Str:
    """A string that fully matches ``pattern`` and is at most ``max_length`` characters long."""

    pattern: str
    max_length: int
    description: str = ""

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        """The compiled pattern."""
        return re.compile(self.pattern)

    def check(self, value: object, path: str) -> object:
        if type(value) is not str:
            raise WireError(path, f"must be a string, got {_type_name(value)}")
        if len(value) > self.max_length:
            raise WireError(path, f"must be at most {self.max_length} characters, got {len(value)}")
        if self.regex.fullmatch(value) is None:
            raise WireError(path, f"{_short(value)} does not match {self.pattern}")
        return value

    def schema(self) -> dict[str, object]:
        return _described({"type": "string", "pattern": self.pattern, "maxLength": self.max_length}, self)


@dataclass(frozen=True)
class Date:
    """A calendar date as ``YYYY-MM-DD``; decoded to :class:`datetime.date`."""

    description: str = ""

    def check(self, value: object, path: str) -> object:
        if type(value) is not str or re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value) is None:
            raise WireError(path, f"must be a date as YYYY-MM-DD, got {_short(value)}")
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            raise WireError(path, f"{value!r} is not a calendar date") from None

    def schema(self) -> dict[str, object]:
        return _described({"type": "string", "format": "date", "pattern": DATE_PATTERN}, self)


DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


@dataclass(frozen=True)
class Int:
    """An integer in ``[minimum, maximum]``, optionally a multiple of ``multiple_of``. Booleans are not integers."""

    minimum: int
    maximum: int
    multiple_of: int = 1
    description: str = ""

    def check(self, value: object, path: str) -> object:
        if type(value) is not int:
            raise WireError(path, f"must be an integer, got {_type_name(value)}")
        if not self.minimum <= value <= self.maximum:
            raise WireError(path, f"must be between {self.minimum} and {self.maximum}, got {_short(value)}")
        if value % self.multiple_of:
            raise WireError(path, f"must be a multiple of {self.multiple_of}, got {_short(value)}")
        return value

    def schema(self) -> dict[str, object]:
        out: dict[str, object] = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        if self.multiple_of != 1:
            out["multipleOf"] = self.multiple_of
        return _described(out, self)


@dataclass(frozen=True)
class Bool:
    """``true`` or ``false``."""

    description: str = ""

    def check(self, value: object, path: str) -> object:
        if type(value) is not bool:
            raise WireError(path, f"must be true or false, got {_type_name(value)}")
        return value

    def schema(self) -> dict[str, object]:
        return _described({"type": "boolean"}, self)


@dataclass(frozen=True)
class Enum:
    """One of a fixed list of strings."""

    values: tuple[str, ...]
    description: str = ""

    def check(self, value: object, path: str) -> object:
        if type(value) is not str or value not in self.values:
            raise WireError(path, f"must be one of {', '.join(self.values)}; got {_short(value)}")
        return value

    def schema(self) -> dict[str, object]:
        return _described({"type": "string", "enum": list(self.values)}, self)


@dataclass(frozen=True)
class Nullable:
    """``null`` or a value of ``inner``."""

    inner: Node

    def check(self, value: object, path: str) -> object:
        return None if value is None else self.inner.check(value, path)

    def schema(self) -> dict[str, object]:
        return {"anyOf": [self.inner.schema(), {"type": "null"}]}


@dataclass(frozen=True)
class OneOf:
    """A value that matches exactly one of ``options`` (tried in order; options must not overlap)."""

    options: tuple[Node, ...]
    description: str = ""

    def check(self, value: object, path: str) -> object:
        reasons = []
        for option in self.options:
            try:
                return option.check(value, path)
            except WireError as error:
                reasons.append(error.reason)
        raise WireError(path, " or ".join(reasons))

    def schema(self) -> dict[str, object]:
        return _described({"oneOf": [option.schema() for option in self.options]}, self)


@dataclass(frozen=True)
class Array:
    """A JSON array of ``min_items`` to ``max_items`` items of ``item``; ``unique`` forbids repeated items."""

    item: Node
    max_items: int
    min_items: int = 0
    unique: bool = False
    description: str = ""

    def check(self, value: object, path: str) -> object:
        if type(value) is not list:
            raise WireError(path, f"must be an array, got {_type_name(value)}")
        if not self.min_items <= len(value) <= self.max_items:
            raise WireError(path, f"must have between {self.min_items} and {self.max_items} items, got {len(value)}")
        out = [self.item.check(item, f"{path}[{index}]") for index, item in enumerate(value)]
        if self.unique and len(set(map(_freeze, value))) != len(value):
            raise WireError(path, "must not repeat an item")
        return out

    def schema(self) -> dict[str, object]:
        out: dict[str, object] = {"type": "array", "items": self.item.schema(), "maxItems": self.max_items}
        if self.min_items:
            out["minItems"] = self.min_items
        if self.unique:
            out["uniqueItems"] = True
        return _described(out, self)


@dataclass(frozen=True)
class Map:
    """A JSON object used as a dictionary: keys match ``key``, values match ``value``."""

    key: Str | Date
    value: Node
    max_items: int
    description: str = ""

    def check(self, value: object, path: str) -> object:
        _reject_duplicates(value, path)
        if type(value) is not dict:
            raise WireError(path, f"must be an object, got {_type_name(value)}")
        if len(value) > self.max_items:
            raise WireError(path, f"must have at most {self.max_items} entries, got {len(value)}")
        out = {}
        for key, item in value.items():
            item_path = _join(path, key)
            out[self.key.check(key, item_path)] = self.value.check(item, item_path)
        return out

    def schema(self) -> dict[str, object]:
        key_schema = self.key.schema()
        key_schema.pop("type")
        key_schema.pop("description", None)
        out = {
            "type": "object",
            "propertyNames": key_schema,
            "additionalProperties": self.value.schema(),
            "maxProperties": self.max_items,
        }
        return _described(out, self)


@dataclass(frozen=True)
class Field:
    """A named member of an :class:`Object`; optional fields decode to ``default`` when absent."""

    node: Node
    required: bool = True
    default: Callable[[], object] | None = None


@dataclass(frozen=True)
class Object:
    """A JSON object with a fixed set of members; unknown members are rejected."""

    title: str
    fields: Mapping[str, Field] = field(default_factory=dict)
    description: str = ""

    def check(self, value: object, path: str) -> object:
        _reject_duplicates(value, path)
        if type(value) is not dict:
            raise WireError(path, f"must be an object, got {_type_name(value)}")
        for key in value:
            if key not in self.fields:
                raise WireError(_join(path, key), f"is not a field of {self.title}")
        out: dict[str, object] = {}
        for name, member in self.fields.items():
            if name in value:
                out[name] = member.node.check(value[name], _join(path, name))
            elif member.required:
                raise WireError(_join(path, name), "is required")
            elif member.default is not None:
                out[name] = member.default()
        return out

    def schema(self) -> dict[str, object]:
        out: dict[str, object] = {
            "title": self.title,
            "type": "object",
            "properties": {name: member.node.schema() for name, member in self.fields.items()},
            "required": [name for name, member in self.fields.items() if member.required],
            "additionalProperties": False,
        }
        return _described(out, self)


Node = Str | Date | Int | Bool | Enum | Nullable | OneOf | Array | Map | Object
"""Any node. Each has ``check(value, path)``, which returns the decoded value or raises :class:`WireError`
naming ``path``, and ``schema()``, which returns its JSON Schema fragment."""


def _described(schema: dict[str, object], node: Str | Date | Int | Bool | Enum | OneOf | Array | Map | Object) -> (
    dict[str, object]
):  # fmt: skip
    if node.description:
        schema["description"] = node.description
    return schema


def _freeze(value: object) -> object:
    if isinstance(value, dict):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return (type(value).__name__, value)


def check(node: Node, value: object) -> object:
    """Check ``value`` (parsed JSON) against ``node``; return it with dates decoded, or raise :class:`WireError`."""
    return node.check(value, "")


def to_json_schema(node: Object, *, schema_id: str, title: str, description: str) -> dict[str, object]:
    """Render ``node`` as a JSON Schema (draft 2020-12) document."""
    document: dict[str, object] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
    }
    body = node.schema()
    body["title"] = title
    body["description"] = description
    document.update(body)
    return document
