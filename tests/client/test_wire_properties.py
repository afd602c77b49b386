"""Property-based tests of wire schema v1: the codec, the committed JSON Schema file and the Python types agree.

The strategy below builds valid :class:`Report` objects from the constraints of the schema and the rules that
span fields (listed in the description of ``json_schema()``). An independent validator (``jsonschema``) checks
that what the client encodes is what the published schema allows, and that documents broken at one point are
refused by that validator and by our decoder alike, with the decoder naming the broken field.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import operator
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

import consentry.wire
from consentry.wire import (
    DATA_SIZES,
    DURATIONS,
    MAX_COUNT,
    OTHER,
    SYSTEM_FIELDS,
    Activity,
    Command,
    DataCategory,
    Plugin,
    Report,
    WireError,
    decode,
    encode,
    json_schema,
    to_json,
)
from consentry.wire.schema import (
    ACTIVITY,
    APP_NAME,
    COMMAND,
    CONSENT_VERSION,
    DATA,
    EVENT_NAME,
    EXCEPTION_NAME,
    LEVEL_NAME,
    MAX_DAYS,
    PACKAGE_NAME,
    PARAM_NAME,
    PARAM_VALUE,
    PLUGIN,
    REPORT,
    REPORTER_ID,
    VERSION,
)
from consentry.wire.spec import Array, Bool, Date, Enum, Int, Map, Node, Nullable, Object, OneOf, Str

SCHEMA_FILE = Path(consentry.wire.__file__).parent / "report-v1.schema.json"
COMMITTED_SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(COMMITTED_SCHEMA, format_checker=FormatChecker())

PROPERTIES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- a strategy for valid reports ----------------------------------------------------------------------------
# Names are built from their character classes (much faster than st.from_regex); a name that does not match the
# schema would make encode() raise, so a mistake here fails the tests instead of going unnoticed.
LOWER, UPPER, DIGITS = string.ascii_lowercase, string.ascii_uppercase, string.digits
ALNUM = LOWER + UPPER + DIGITS


def _name(node: Str, first: str, rest: str, last: str = "") -> st.SearchStrategy[str]:
    """Names matching ``node``: a ``first`` character, then ``rest`` characters, ending in a ``last`` one if given."""
    middle = st.text(rest, max_size=node.max_length - 1 - (1 if last else 0))
    if not last:
        return st.builds(operator.add, st.sampled_from(first), middle)
    tail = st.one_of(st.just(""), st.builds(operator.add, middle, st.sampled_from(last)))
    return st.builds(operator.add, st.sampled_from(first), tail)


def _str(node: Object, name: str) -> Str:
    member = node.fields[name].node
    assert isinstance(member, Str)
    return member


APP = _name(APP_NAME, LOWER + DIGITS, LOWER + DIGITS + "._-", LOWER + DIGITS)
LEVEL = _name(LEVEL_NAME, LOWER, LOWER + DIGITS + "_").filter(lambda name: name != "none")
EVENT = _name(EVENT_NAME, ALNUM, ALNUM + "_.:/-")
PACKAGE = _name(PACKAGE_NAME, ALNUM, ALNUM + "._-", ALNUM)
VERSIONS = _name(VERSION, ALNUM, ALNUM + ".+!_-")
PARAM = _name(PARAM_NAME, ALNUM, ALNUM + "_.-")
PARAM_VALUES = st.text(ALNUM + "_.:/+-", min_size=1, max_size=PARAM_VALUE.max_length)
EXCEPTION = _name(EXCEPTION_NAME, ALNUM.replace(DIGITS, "") + "_", ALNUM + "_")
HEX = "0123456789abcdef"
REPORTER = st.text(HEX, min_size=REPORTER_ID.max_length, max_size=REPORTER_ID.max_length)
CONSENT = st.text(HEX, min_size=CONSENT_VERSION.max_length, max_size=CONSENT_VERSION.max_length)
KIND = _name(_str(DATA, "kind"), LOWER, LOWER + DIGITS + "_")
CLASS = _name(_str(DATA, "class"), ALNUM.replace(DIGITS, "") + "_", ALNUM + "_")
DTYPE = st.text(ALNUM + "_<>|=[]", min_size=1, max_size=_str(DATA, "dtype").max_length)
SYSTEM_VALUES: dict[str, st.SearchStrategy[str]] = {
    name: st.sampled_from(node.values) for name, node in SYSTEM_FIELDS.items() if isinstance(node, Enum)
} | {
    "os_version": _name(SYSTEM_FIELDS["os_version"], LOWER + DIGITS, LOWER + DIGITS + "._-"),
    "python": st.builds("{}.{}".format, st.integers(0, 99), st.integers(0, 999)),
}
COUNTS = st.one_of(st.integers(1, 1000), st.sampled_from([1, MAX_COUNT]))
EVENTS = st.dictionaries(EVENT, COUNTS, max_size=3)
DAY_ZERO = datetime.date(2025, 12, 20)  # days span a new year and a leap day (2028-02-29)
ALL_DAYS = st.integers(0, 900).map(lambda offset: DAY_ZERO + datetime.timedelta(days=offset))
DAYS = st.lists(ALL_DAYS, min_size=1, max_size=MAX_DAYS, unique=True).map(lambda days: tuple(sorted(days)))


@st.composite
def reports(draw: st.DrawFn) -> Report:
    days = draw(DAYS)
    day = st.sampled_from(days)

    def per_day(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[datetime.date, Any]]:
        return st.dictionaries(day, values, max_size=3)

    named_plugin = st.builds(
        Plugin,
        name=PACKAGE.filter(lambda name: name != OTHER),
        version=VERSIONS,
        counts=per_day(EVENTS),
    )
    other_plugin = st.builds(Plugin, name=st.just(OTHER), version=st.sampled_from([OTHER, "1.0"]))
    commands = st.builds(
        Command,
        day=day,
        name=EVENT,
        duration=st.sampled_from(DURATIONS),
        exit_code=st.integers(0, 255),
        count=COUNTS,
        params=st.dictionaries(PARAM, st.one_of(PARAM_VALUES, st.booleans()), max_size=3),
        exception=st.none() | EXCEPTION,
    )
    data = st.builds(
        DataCategory,
        day=day,
        kind=KIND,
        class_name=CLASS,
        dtype=DTYPE,
        ndim=st.integers(0, 64),
        size=st.sampled_from(DATA_SIZES),
        count=COUNTS,
    )
    activity = st.builds(
        Activity,
        runs=st.integers(0, MAX_COUNT),
        active_minutes=st.integers(0, 10_000).map(lambda steps: steps * 10),
    )
    return Report(
        app=draw(APP),
        app_version=draw(VERSIONS),
        level=draw(LEVEL),
        consent_version=draw(CONSENT),
        reporter=draw(REPORTER),
        first_report=draw(st.booleans()),
        days=days,
        system=draw(st.fixed_dictionaries({}, optional=SYSTEM_VALUES)),
        dependencies=draw(st.dictionaries(PACKAGE, VERSIONS, max_size=3)),
        counts=draw(per_day(EVENTS)),
        activity=draw(per_day(activity)),
        exceptions=draw(per_day(st.dictionaries(EXCEPTION, COUNTS, max_size=3))),
        plugins=tuple(draw(st.lists(named_plugin | other_plugin, max_size=4, unique_by=lambda plugin: plugin.name))),
        commands=tuple(draw(st.lists(commands, max_size=4, unique_by=lambda command: command.key()))),
        data=tuple(draw(st.lists(data, max_size=4, unique_by=lambda record: record.key()))),
    )


# ---- properties of valid reports -----------------------------------------------------------------------------
@PROPERTIES
@given(reports())
def test_decode_inverts_encode(report: Report):
    body = encode(report)
    assert decode(body) == report
    assert encode(decode(body)) == body


@PROPERTIES
@given(reports())
def test_encoded_report_validates_against_the_committed_schema(report: Report):
    document = json.loads(encode(report))
    errors = [error.message for error in VALIDATOR.iter_errors(document)]
    assert errors == []


# ---- documents broken at one point -----------------------------------------------------------------------------
Path_ = tuple[str | int, ...]
DROP = object()  # marks a mutation that removes the field


def _wrong_values(node: Node) -> list[object]:
    """JSON values of a type that ``node`` does not accept."""
    if isinstance(node, Int):
        return ["1", True, None]
    if isinstance(node, Bool):
        return [1, "true", None]
    if isinstance(node, (Str, Date, Enum, Nullable, OneOf)):
        return [12345, [], {}] if isinstance(node, (Nullable, OneOf)) else [12345, None, []]
    if isinstance(node, Array):
        return [{}, "x"]
    return [[], "x", 1]  # Object and Map


def _mutations(node: Node, value: object, path: Path_) -> list[tuple[str, Path_, object]]:
    """Every schema-level mutation of ``value`` (a valid fragment for ``node`` at ``path``): (kind, path, new)."""
    out = [("wrong type", path, wrong) for wrong in _wrong_values(node)]
    if isinstance(node, Int):
        out += [("too large", path, node.maximum + 1), ("too small", path, node.minimum - 1)]
    elif isinstance(node, Object):
        assert isinstance(value, dict)
        out.append(("unknown field", (*path, "unknown_field"), "x"))
        for name, member in node.fields.items():
            if name not in value:
                continue
            if member.required:
                out.append(("drop required field", (*path, name), DROP))
            out += _mutations(member.node, value[name], (*path, name))
    elif isinstance(node, Map):
        assert isinstance(value, dict)
        for key, item in value.items():
            out += _mutations(node.value, item, (*path, key))
    elif isinstance(node, Array):
        assert isinstance(value, list)
        for index, item in enumerate(value):
            out += _mutations(node.item, item, (*path, index))
    elif isinstance(node, Nullable) and value is not None:
        out += [mutation for mutation in _mutations(node.inner, value, path) if mutation[2] is not None]
    return [(kind, where, new) for kind, where, new in out if where]  # the document itself stays an object


def _apply(document: dict[str, Any], path: Path_, new: object) -> dict[str, Any]:
    mutated = copy.deepcopy(document)
    target: Any = mutated
    for key in path[:-1]:
        target = target[key]
    if new is DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return mutated


def _dotted(path: Path_) -> str:
    """``path`` written as WireError.path writes it: ``plugins[0].counts.2026-01-01.detect``."""
    out = ""
    for part in path:
        out = f"{out}[{part}]" if isinstance(part, int) else f"{out}.{part}" if out else part
    return out


@PROPERTIES
@given(st.data())
def test_a_document_broken_at_one_point_is_refused_by_both_validators(data: st.DataObject):
    document = to_json(data.draw(reports(), label="report"))
    kind, path, new = data.draw(st.sampled_from(_mutations(REPORT, document, ())), label="mutation")
    mutated = _apply(document, path, new)
    assert not VALIDATOR.is_valid(mutated), f"jsonschema accepts the document after {kind} at {_dotted(path)}"
    with pytest.raises(WireError) as caught:
        decode(json.dumps(mutated))
    assert caught.value.path == _dotted(path)


def test_mutations_cover_every_kind_on_a_full_report():
    report = Report(
        app="a",
        app_version="1",
        level="basic",
        consent_version="0" * 16,
        reporter="0" * 32,
        first_report=False,
        days=(DAY_ZERO,),
        activity={DAY_ZERO: Activity(1, 10)},
        commands=(Command(DAY_ZERO, "run", "<1s", 0, 1, {"fast": True}, "OSError"),),
    )
    mutations = _mutations(REPORT, to_json(report), ())
    kinds = {kind for kind, _, _ in mutations}
    assert kinds == {"wrong type", "too large", "too small", "unknown field", "drop required field"}
    paths = {_dotted(path) for _, path, _ in mutations}
    assert {"commands[0].params.fast", "commands[0].exception", f"activity.{DAY_ZERO}.active_minutes"} <= paths


# ---- the committed file and the Python types -------------------------------------------------------------------
def test_committed_schema_file_equals_the_generated_schema():
    assert json_schema() == COMMITTED_SCHEMA
    # Byte for byte what `python -m consentry.wire` writes, so regenerating it gives no diff.
    assert SCHEMA_FILE.read_text(encoding="utf-8") == json.dumps(json_schema(), indent=2) + "\n"


def test_committed_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(COMMITTED_SCHEMA)
    assert COMMITTED_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(
    ("cls", "node", "renamed"),
    [
        pytest.param(Report, REPORT, {}, id="Report"),
        pytest.param(Plugin, PLUGIN, {}, id="Plugin"),
        pytest.param(Command, COMMAND, {}, id="Command"),
        pytest.param(DataCategory, DATA, {"class_name": "class"}, id="DataCategory"),
        pytest.param(Activity, ACTIVITY, {}, id="Activity"),
    ],
)
def test_dataclass_has_exactly_the_fields_of_its_schema_object(cls: type, node: Object, renamed: dict[str, str]):
    fields = {renamed.get(field.name, field.name): field for field in dataclasses.fields(cls)}
    assert set(fields) == set(node.fields)
    # A field the schema lets a document leave out must have a default in the dataclass.
    for name, member in node.fields.items():
        if not member.required:
            field = fields[name]
            assert field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING, name
