"""Decoding canonical report bodies fast, with the standard decoder as the authority.

Every Consentry client uploads the canonical encoding of its report (:func:`consentry.wire.encode`: sorted
keys, two-space indentation, ASCII, no empty optional part). :func:`decode_canonical` decodes such a body with
msgspec, which checks types, ranges, lengths and patterns in C against types derived here from the one wire
schema (:data:`consentry.wire.schema.REPORT`), then confirms that the body *is* the canonical encoding of what
it decoded. That confirmation rules out what msgspec lets pass without a word: a key given twice, an unknown
field, an optional part spelled out empty, any other spelling. The rules that span fields are then checked by
the client's own code (:func:`consentry.wire.from_checked`).

It answers ``None`` whenever it is not sure, and the caller decodes with :func:`consentry.wire.decode`, whose
verdict and error message stand. So this path can only accept what the standard decoder accepts, with the same
result (``tests/server/test_fast_decode.py`` checks that on generated bodies); anything else costs only time.
It also returns the report's digest (:func:`~consentry_server.storage.rows.report_digest`), which falls out of
the check for free: the compact key-sorted JSON it hashes is an intermediate step.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Required, TypedDict, Union

import msgspec

from consentry.wire import Report, WireError, from_checked
from consentry.wire.schema import REPORT
from consentry.wire.spec import Array, Bool, Date, Enum, Int, Map, Node, Nullable, Object, OneOf, Str

__all__ = ["Decoded", "decode_canonical"]


@dataclass(frozen=True)
class Decoded:
    """A report decoded from its canonical encoding, and the digest storage identifies it by."""

    report: Report
    digest: bytes


@dataclass(frozen=True)
class _Optional:
    """An optional field with a default, which a canonical encoding leaves out when it holds the default."""

    name: str
    default: Callable[[], object]
    inner: Node


def _type(node: Node, unique: list[str], name: str = "") -> Any:  # noqa: ANN401 - a type expression
    """The msgspec type that accepts exactly what ``node`` accepts (uniqueness aside: see ``unique``)."""
    if isinstance(node, Str):
        # msgspec searches; the schema matches whole strings (and '$' alone would allow a final newline).
        return Annotated[str, msgspec.Meta(pattern=rf"\A(?:{node.pattern})\Z", max_length=node.max_length)]
    if isinstance(node, Date):
        return datetime.date
    if isinstance(node, Int):
        step = node.multiple_of if node.multiple_of != 1 else None
        return Annotated[int, msgspec.Meta(ge=node.minimum, le=node.maximum, multiple_of=step)]
    if isinstance(node, Bool):
        return bool
    if isinstance(node, Enum):
        return Literal[node.values]
    if isinstance(node, Nullable):
        return Union[_type(node.inner, unique), None]  # noqa: UP007 - built at run time
    if isinstance(node, OneOf):
        return Union[tuple(_type(option, unique) for option in node.options)]  # noqa: UP007
    if isinstance(node, Array):
        if node.unique:
            unique.append(name)  # checked after decoding: msgspec has no such constraint
        limits = msgspec.Meta(min_length=node.min_items, max_length=node.max_items)
        return Annotated[list[_type(node.item, unique)], limits]  # type: ignore[misc]
    if isinstance(node, Map):
        # Date keys stay strings here (msgspec sorts only string keys); _dated_keys makes them dates afterwards.
        key = _DATE_KEY if isinstance(node.key, Date) else _type(node.key, unique)
        limits = msgspec.Meta(max_length=node.max_items)
        return Annotated[dict[key, _type(node.value, unique)], limits]  # type: ignore[misc,valid-type]
    fields = {
        field_name: (Required if member.required else NotRequired)[_type(member.node, unique, field_name)]
        for field_name, member in node.fields.items()
    }
    return TypedDict(node.title, fields)  # type: ignore[operator]


_DATE_KEY = Annotated[str, msgspec.Meta(pattern=r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")]

#: Turns the date keys of one decoded value into dates (raising ValueError for one that is not a calendar date).
_Dating = Callable[[Any], Any]


def _dated_keys(node: Node) -> _Dating | None:
    """What turns the date keys within a value of ``node`` into dates; ``None`` if it holds no date keys."""
    if isinstance(node, Map):
        inner = _dated_keys(node.value)
        if isinstance(node.key, Date):
            date = datetime.date.fromisoformat
            if inner is None:
                return lambda value: {date(key): item for key, item in value.items()}
            return lambda value: {date(key): inner(item) for key, item in value.items()}
        if inner is not None:
            return lambda value: {key: inner(item) for key, item in value.items()}
        return None
    if isinstance(node, Array):
        item_dating = _dated_keys(node.item)
        return None if item_dating is None else lambda value: [item_dating(item) for item in value]
    if isinstance(node, Nullable):
        inner_dating = _dated_keys(node.inner)
        return None if inner_dating is None else lambda value: None if value is None else inner_dating(value)
    if isinstance(node, Object):
        fields = {name: dating for name, member in node.fields.items() if (dating := _dated_keys(member.node))}
        if not fields:
            return None

        def object_dating(value: dict[str, Any]) -> dict[str, Any]:
            for name, dating in fields.items():
                if name in value:
                    value[name] = dating(value[name])
            return value

        return object_dating
    if isinstance(node, OneOf) and any(_dated_keys(option) for option in node.options):
        raise ImportError("fast_decode cannot tell which option of a OneOf holds date keys")
    return None


def _optionals(node: Object) -> list[_Optional]:
    return [
        _Optional(name, member.default, member.node)
        for name, member in node.fields.items()
        if not member.required and member.default is not None
    ]


_UNIQUE: list[str] = []
_DECODER = msgspec.json.Decoder(_type(REPORT, _UNIQUE))
_ENCODER = msgspec.json.Encoder(order="sorted")
if any(name == "" for name in _UNIQUE) or not set(_UNIQUE) <= set(REPORT.fields):
    raise ImportError("fast_decode checks unique items only in arrays that are fields of the report itself")
_DATING = _dated_keys(REPORT) or (lambda document: document)
_TOP = _optionals(REPORT)
#: The report's optional arrays of objects (plugins, commands, data), by name.
_ARRAYS = {
    optional.name: optional.inner.item
    for optional in _TOP
    if isinstance(optional.inner, Array) and isinstance(optional.inner.item, Object)
}
_NESTED = {name: _optionals(item) for name, item in _ARRAYS.items()}


def _objects(node: Node) -> list[Object]:
    """Every object type within ``node``, ``node`` included."""
    if isinstance(node, Object):
        return [node, *(found for member in node.fields.values() for found in _objects(member.node))]
    if isinstance(node, Array):
        return _objects(node.item)
    if isinstance(node, Map):
        return _objects(node.value)
    if isinstance(node, Nullable):
        return _objects(node.inner)
    if isinstance(node, OneOf):
        return [found for option in node.options for found in _objects(option)]
    return []


_COVERED = {id(REPORT)} | {id(item) for item in _ARRAYS.values()}
if any(_optionals(node) and id(node) not in _COVERED for node in _objects(REPORT)):
    raise ImportError("fast_decode fills in defaults only in the report and in the objects of its arrays")


def _canonical_defaults(document: dict[str, Any]) -> bool:
    """Fill in absent optional fields; False if one was given holding its default (not canonical)."""
    for optional in _TOP:
        value = document.get(optional.name, _MISSING)
        if value is _MISSING:
            document[optional.name] = optional.default()
            continue
        if value == optional.default():
            return False
        for item in value if optional.name in _NESTED else ():
            for nested in _NESTED[optional.name]:
                inner = item.get(nested.name, _MISSING)
                if inner is _MISSING:
                    item[nested.name] = nested.default()
                elif inner == nested.default():
                    return False
    return True


_MISSING: Any = object()
#: How every canonical encoding begins: an object whose members are indented by two spaces.
_OPENING = b'{\n  "'


def decode_canonical(body: bytes) -> Decoded | None:
    """The report ``body`` encodes and its digest, if ``body`` is a valid canonical report; otherwise ``None``."""
    if not body.startswith(_OPENING) or not body.endswith(b"}\n"):
        return None  # not even shaped like one: spare the attempt
    try:
        document = _DECODER.decode(body)
    except msgspec.MsgspecError:
        return None
    compact = _ENCODER.encode(document)
    if msgspec.json.format(compact, indent=2) + b"\n" != body:
        return None
    if any(len(set(document[name])) != len(document[name]) for name in _UNIQUE):
        return None
    if not _canonical_defaults(document):
        return None
    try:
        report = from_checked(_DATING(document))
    except (ValueError, WireError):  # a date key that is not a calendar date; a rule that spans fields
        return None
    return Decoded(report, hashlib.sha256(compact).digest())
