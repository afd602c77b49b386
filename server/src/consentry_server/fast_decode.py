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
What is derived from the schema is a :class:`Plan` (:func:`plan_for`). The derivation refuses, with
:class:`UnsupportedSchemaError` as this module loads, a schema holding what the plan cannot mirror exactly
(``tests/server/test_fast_decode_plan.py`` shows each refusal on a small schema): better no server than a fast
path that disagrees with the standard decoder on a newer schema.

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

__all__ = ["Decoded", "Plan", "UnsupportedSchemaError", "decode_canonical", "plan_for"]


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
        raise UnsupportedSchemaError("fast_decode cannot tell which option of a OneOf holds date keys")
    return None


def _optionals(node: Object) -> list[_Optional]:
    return [
        _Optional(name, member.default, member.node)
        for name, member in node.fields.items()
        if not member.required and member.default is not None
    ]


class UnsupportedSchemaError(ImportError):
    """The wire schema holds a construct :func:`plan_for` cannot mirror exactly; raised when this module loads.

    Better to refuse to start than to decode a newer schema differently from the standard decoder.
    """


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


#: Nodes decoded to hashable values, whose uniqueness a set can check.
_SCALARS = (Str, Date, Int, Bool, Enum)


def _array(node: Node) -> Array:
    """The array ``node`` is (possibly nullable)."""
    return _array(node.inner) if isinstance(node, Nullable) else node  # type: ignore[return-value]


_MISSING: Any = object()
#: How every canonical encoding begins: an object whose members are indented by two spaces.
_OPENING = b'{\n  "'


@dataclass(frozen=True)
class Plan:
    """How to decode canonical encodings of one schema (:func:`plan_for`) into its checked document."""

    decoder: msgspec.json.Decoder[Any]
    #: The top-level arrays whose items must differ (msgspec has no such constraint).
    unique: tuple[str, ...]
    dating: _Dating
    #: Optional fields with defaults: the top level's, and those of the objects of its arrays, by array.
    top: tuple[_Optional, ...]
    nested: dict[str, tuple[_Optional, ...]]

    def document(self, body: bytes) -> tuple[dict[str, Any], bytes] | None:
        """The document ``body`` encodes, and its compact key-sorted JSON (what the digest is of).

        The document is what :meth:`Object.check <consentry.wire.spec.Object.check>` returns: dates decoded,
        defaults filled in. ``None`` unless ``body`` is the canonical encoding of a document the schema accepts,
        rules that span fields aside.
        """
        if not body.startswith(_OPENING) or not body.endswith(b"}\n"):
            return None  # not even shaped like one: spare the attempt
        try:
            document = self.decoder.decode(body)
        except (msgspec.MsgspecError, RecursionError):  # msgspec recurses, even into fields it skips
            return None
        compact = _ENCODER.encode(document)
        if msgspec.json.format(compact, indent=2) + b"\n" != body:
            return None
        if any((items := document.get(name)) and len(set(items)) != len(items) for name in self.unique):
            return None
        if not self._canonical_defaults(document):
            return None
        try:
            return self.dating(document), compact
        except ValueError:  # a date key that is not a calendar date
            return None

    def _canonical_defaults(self, document: dict[str, Any]) -> bool:
        """Fill in absent optional fields; False if one was given holding its default (not canonical)."""
        for optional in self.top:
            value = document.get(optional.name, _MISSING)
            if value is _MISSING:
                document[optional.name] = optional.default()
                continue
            if value == optional.default():
                return False
            for item in value if optional.name in self.nested else ():
                for nested in self.nested[optional.name]:
                    inner = item.get(nested.name, _MISSING)
                    if inner is _MISSING:
                        item[nested.name] = nested.default()
                    elif inner == nested.default():
                        return False
        return True


def plan_for(schema: Object) -> Plan:
    """The :class:`Plan` of ``schema``; :class:`UnsupportedSchemaError` if it holds what the plan cannot mirror."""
    unique: list[str] = []
    decoder = msgspec.json.Decoder(_type(schema, unique))
    if any(name == "" for name in unique) or not set(unique) <= set(schema.fields):
        raise UnsupportedSchemaError("fast_decode checks unique items only in arrays that are top-level fields")
    if any(not isinstance(_array(schema.fields[name].node).item, _SCALARS) for name in unique):
        raise UnsupportedSchemaError("fast_decode checks unique items only in arrays of strings, dates and numbers")
    dating = _dated_keys(schema) or (lambda document: document)
    top = _optionals(schema)
    arrays = {
        optional.name: optional.inner.item
        for optional in top
        if isinstance(optional.inner, Array) and isinstance(optional.inner.item, Object)
    }
    covered = {id(schema)} | {id(item) for item in arrays.values()}
    if any(_optionals(node) and id(node) not in covered for node in _objects(schema)):
        raise UnsupportedSchemaError("fast_decode fills in defaults only at the top level and in its arrays' objects")
    nested = {name: tuple(_optionals(item)) for name, item in arrays.items()}
    return Plan(decoder, tuple(unique), dating, tuple(top), nested)


_ENCODER = msgspec.json.Encoder(order="sorted")
_PLAN = plan_for(REPORT)


def decode_canonical(body: bytes) -> Decoded | None:
    """The report ``body`` encodes and its digest, if ``body`` is a valid canonical report; otherwise ``None``."""
    found = _PLAN.document(body)
    if found is None:
        return None
    document, compact = found
    try:
        report = from_checked(document)
    except WireError:  # a rule that spans fields
        return None
    return Decoded(report, hashlib.sha256(compact).digest())
