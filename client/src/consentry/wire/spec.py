"""A tiny declarative description of JSON documents.

The wire schema is written once, as data built from these node types. Two things are derived from it:
the strict decoder (:func:`check`) and the language-neutral JSON Schema (:func:`to_json_schema`), so the
two cannot drift apart. Only the constructs the wire format needs exist here; anything not described is
rejected.

The nodes are values, as frozen dataclasses would be (compared, hashed and shown by their fields, never changed),
but plain classes: a recording application defines them at each start, and making a dataclass compiles its
methods, which costs about a millisecond a class.
"""

from __future__ import annotations

import datetime
import functools
import re

TYPE_CHECKING = False  # not imported from typing: see pyproject.toml
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import ClassVar

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


class _Value:
    """A node's fields as ``@dataclass(frozen=True)`` makes them.

    Equality, hash and repr by ``_fields``, in order, and no assignment after ``__init__``
    (:class:`dataclasses.FrozenInstanceError`).
    """

    _fields: ClassVar[tuple[str, ...]] = ()

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({values})"

    def __setattr__(self, name: str, value: object) -> None:
        from dataclasses import FrozenInstanceError  # noqa: PLC0415 - only when someone tries

        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        from dataclasses import FrozenInstanceError  # noqa: PLC0415 - only when someone tries

        raise FrozenInstanceError(f"cannot delete field {name!r}")


class Str(_Value):
    """A string that fully matches ``pattern`` and is at most ``max_length`` characters long."""

    _fields = ("pattern", "max_length", "description")
    pattern: str
    max_length: int
    description: str

    def __init__(self, pattern: str, max_length: int, description: str = "") -> None:
        self._set(pattern=pattern, max_length=max_length, description=description)

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


class Date(_Value):
    """A calendar date as ``YYYY-MM-DD``; decoded to :class:`datetime.date`."""

    _fields = ("description",)
    description: str

    def __init__(self, description: str = "") -> None:
        self._set(description=description)

    def check(self, value: object, path: str) -> object:
        if type(value) is not str or re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value) is None:
            raise WireError(path, f"must be a date as YYYY-MM-DD, got {_short(value)}")
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            raise WireError(path, f"{value!r} is not a calendar date") from None

    def schema(self) -> dict[str, object]:
        return _described({"type": "string", "format": "date", "pattern": _DATE_PATTERN}, self)


_DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


class Int(_Value):
    """An integer in ``[minimum, maximum]``, optionally a multiple of ``multiple_of``. Booleans are not integers."""

    _fields = ("minimum", "maximum", "multiple_of", "description")
    minimum: int
    maximum: int
    multiple_of: int
    description: str

    def __init__(self, minimum: int, maximum: int, multiple_of: int = 1, description: str = "") -> None:
        self._set(minimum=minimum, maximum=maximum, multiple_of=multiple_of, description=description)

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


class Bool(_Value):
    """``true`` or ``false``."""

    _fields = ("description",)
    description: str

    def __init__(self, description: str = "") -> None:
        self._set(description=description)

    def check(self, value: object, path: str) -> object:
        if type(value) is not bool:
            raise WireError(path, f"must be true or false, got {_type_name(value)}")
        return value

    def schema(self) -> dict[str, object]:
        return _described({"type": "boolean"}, self)


class Enum(_Value):
    """One of a fixed list of strings."""

    _fields = ("values", "description")
    values: tuple[str, ...]
    description: str

    def __init__(self, values: tuple[str, ...], description: str = "") -> None:
        self._set(values=values, description=description)

    def check(self, value: object, path: str) -> object:
        if type(value) is not str or value not in self.values:
            raise WireError(path, f"must be one of {', '.join(self.values)}; got {_short(value)}")
        return value

    def schema(self) -> dict[str, object]:
        return _described({"type": "string", "enum": list(self.values)}, self)


class Nullable(_Value):
    """``null`` or a value of ``inner``."""

    _fields = ("inner",)
    inner: Node

    def __init__(self, inner: Node) -> None:
        self._set(inner=inner)

    def check(self, value: object, path: str) -> object:
        return None if value is None else self.inner.check(value, path)

    def schema(self) -> dict[str, object]:
        return {"anyOf": [self.inner.schema(), {"type": "null"}]}


class OneOf(_Value):
    """A value that matches exactly one of ``options`` (tried in order; options must not overlap)."""

    _fields = ("options", "description")
    options: tuple[Node, ...]
    description: str

    def __init__(self, options: tuple[Node, ...], description: str = "") -> None:
        self._set(options=options, description=description)

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


class Array(_Value):
    """A JSON array of ``min_items`` to ``max_items`` items of ``item``; ``unique`` forbids repeated items."""

    _fields = ("item", "max_items", "min_items", "unique", "description")
    item: Node
    max_items: int
    min_items: int
    unique: bool
    description: str

    def __init__(
        self,
        item: Node,
        max_items: int,
        min_items: int = 0,
        unique: bool = False,  # noqa: FBT001, FBT002 - the fields in order, as the dataclass took them
        description: str = "",
    ) -> None:
        self._set(item=item, max_items=max_items, min_items=min_items, unique=unique, description=description)

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


class Map(_Value):
    """A JSON object used as a dictionary: keys match ``key``, values match ``value``."""

    _fields = ("key", "value", "max_items", "description")
    key: Str | Date
    value: Node
    max_items: int
    description: str

    def __init__(self, key: Str | Date, value: Node, max_items: int, description: str = "") -> None:
        self._set(key=key, value=value, max_items=max_items, description=description)

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


class Field(_Value):
    """A named member of an :class:`Object`; optional fields decode to ``default`` when absent."""

    _fields = ("node", "required", "default")
    node: Node
    required: bool
    default: Callable[[], object] | None

    def __init__(
        self,
        node: Node,
        required: bool = True,  # noqa: FBT001, FBT002 - the fields in order, as the dataclass took them
        default: Callable[[], object] | None = None,
    ) -> None:
        self._set(node=node, required=required, default=default)


class Object(_Value):
    """A JSON object with a fixed set of members; unknown members are rejected."""

    _fields = ("title", "fields", "description")
    title: str
    fields: Mapping[str, Field]
    description: str

    def __init__(self, title: str, fields: Mapping[str, Field] | None = None, description: str = "") -> None:
        self._set(title=title, fields={} if fields is None else fields, description=description)

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
