"""Strict decoding and canonical encoding of wire schema v1 reports.

Every malformed case starts from one valid document that uses every part of the schema and changes one thing,
so the only reason for the rejection is the change, and the error must name the field that was changed.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest

from consentry.wire import (
    MAX_COUNT,
    MAX_REPORT_BYTES,
    Activity,
    Command,
    DataCategory,
    Plugin,
    Report,
    WireError,
    decode,
    encode,
    to_json,
)
from consentry.wire.schema import REPORT

DAY1, DAY2 = "2026-11-19", "2026-11-20"
EXTRA_DAY = "2026-11-25"  # a valid date that is not one of the report's days
D1, D2 = datetime.date(2026, 11, 19), datetime.date(2026, 11, 20)


def _document() -> dict[str, Any]:
    """A valid report using every part of the schema, in its JSON form (as ``to_json`` gives it)."""
    return {
        "schema": 1,
        "app": "napari-like",
        "app_version": "0.5.0",
        "level": "full",
        "consent_version": "0123456789abcdef",
        "reporter": "0123456789abcdef0123456789abcdef",
        "first_report": True,
        "days": [DAY1, DAY2],
        "system": {"os": "linux", "os_version": "ubuntu-24", "arch": "x86_64", "python": "3.12", "cpus": "3-4"},
        "dependencies": {"numpy": "2.1.0", "qtpy": "2.4.1"},
        "counts": {DAY1: {"viewer.open": 3}, DAY2: {"viewer.open": 1, "napari:layer:add_image": 2}},
        "activity": {DAY1: {"runs": 2, "active_minutes": 30}, DAY2: {"runs": 1, "active_minutes": 0}},
        "exceptions": {DAY2: {"ValueError": 1}},
        "plugins": [
            {"name": "napari-blobs", "version": "1.0.0", "counts": {DAY1: {"detect": 4}}},
            {"name": "other", "version": "other"},
        ],
        "commands": [
            {
                "day": DAY1,
                "name": "call",
                "params": {"format": "cool", "force": True},
                "duration": "1-10s",
                "exit_code": 1,
                "exception": "MemoryError",
                "count": 2,
            },
            {"day": DAY2, "name": "call", "duration": "<1s", "exit_code": 0, "count": 5},
        ],
        "data": [
            {"day": DAY2, "kind": "image", "class": "ndarray", "dtype": "uint8", "ndim": 3, "size": "LARGE", "count": 2}
        ],
    }


FULL = Report(
    app="napari-like",
    app_version="0.5.0",
    level="full",
    consent_version="0123456789abcdef",
    reporter="0123456789abcdef0123456789abcdef",
    first_report=True,
    days=(D1, D2),
    system={"os": "linux", "os_version": "ubuntu-24", "arch": "x86_64", "python": "3.12", "cpus": "3-4"},
    dependencies={"numpy": "2.1.0", "qtpy": "2.4.1"},
    counts={D1: {"viewer.open": 3}, D2: {"viewer.open": 1, "napari:layer:add_image": 2}},
    activity={D1: Activity(runs=2, active_minutes=30), D2: Activity(runs=1, active_minutes=0)},
    exceptions={D2: {"ValueError": 1}},
    plugins=(Plugin("napari-blobs", "1.0.0", {D1: {"detect": 4}}), Plugin("other", "other")),
    commands=(
        Command(D1, "call", "1-10s", 1, 2, {"format": "cool", "force": True}, "MemoryError"),
        Command(D2, "call", "<1s", 0, 5),
    ),
    data=(DataCategory(D2, "image", "ndarray", "uint8", 3, "LARGE", 2),),
)

MINIMAL = Report(
    app="stripepy-like",
    app_version="1.0.0",
    level="basic",
    consent_version="fedcba9876543210",
    reporter="ffffffffffffffffffffffffffffffff",
    first_report=False,
    days=(D1,),
)


# ---- building malformed bodies -------------------------------------------------------------------------------
Change = Callable[[dict[str, Any]], None]


def _body(*changes: Change, replace: tuple[str, str] | None = None) -> bytes:
    """The base document with ``changes`` applied, as JSON bytes; ``replace`` then edits the text itself."""
    document = _document()
    for change in changes:
        change(document)
    text = json.dumps(document)
    if replace is not None:
        old, new = replace
        assert text.count(old) == 1, f"{old!r} must occur once in the base document"
        text = text.replace(old, new)
    return text.encode("utf-8")


def _set(*keys: Any, to: Any) -> Change:
    """Set the value at ``keys`` to ``to``."""

    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = to

    return change


def _drop(*keys: Any) -> Change:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return change


def _append(*path: Any) -> Change:
    """Append ``path[-1]`` (or a copy of the item at ``path[-1]`` when it is an int) to the list at ``path[:-1]``."""
    *keys, item = path

    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in keys:
            target = target[key]
        target.append(copy.deepcopy(target[item]) if isinstance(item, int) else item)

    return change


def _then(*changes: Change) -> Change:
    def change(document: dict[str, Any]) -> None:
        for each in changes:
            each(document)

    return change


COUNT = f"counts.{DAY1}.viewer.open"


def case(name: str, body: bytes, path: str) -> Any:
    return pytest.param(body, path, id=name)


MALFORMED = [
    # ---- not a JSON object at all: the document itself is wrong
    case("not-json", b"hello, server", ""),
    case("truncated-json", _body()[:-20], ""),
    case("empty-body", b"", ""),
    case("non-utf8-bytes", _body().replace(b'"napari-like"', b'"napari-\xff"'), ""),
    case("utf8-bom", b"\xef\xbb\xbf" + _body(), ""),
    case("array-instead-of-object", b"[" + _body() + b"]", ""),
    case("string-instead-of-object", b'"report"', ""),
    case("deep-nesting", b"[" * 100_000 + b"]" * 100_000, ""),
    case("deep-nesting-of-objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, ""),
    case("oversized-body", _body() + b" " * MAX_REPORT_BYTES, ""),
    # ---- duplicate keys
    case("duplicate-top-level-key", _body(replace=('"app": "napari-like"', '"app": "x", "app": "napari-like"')), "app"),
    case("duplicate-nested-key", _body(replace=('"os": "linux"', '"os": "macos", "os": "linux"')), "system.os"),
    # ---- numbers that are not integers in range, rejected while parsing
    case("float", _body(_set("commands", 0, "count", to=1.5)), "commands[0].count"),
    case("float-integral", _body(_set("commands", 0, "count", to=2.0)), "commands[0].count"),
    case("float-exponent", _body(_set("counts", DAY1, "viewer.open", to="@N@"), replace=('"@N@"', "1e3")), COUNT),
    case("nan", _body(_set("counts", DAY1, "viewer.open", to=float("nan"))), COUNT),
    case("infinity", _body(_set("counts", DAY1, "viewer.open", to=float("inf"))), COUNT),
    case("minus-infinity", _body(_set("activity", DAY1, "runs", to=float("-inf"))), f"activity.{DAY1}.runs"),
    case("int-5000-digits", _body(_set("counts", DAY1, "viewer.open", to="@N@"), replace=('"@N@"', "9" * 5000)), COUNT),
    # ---- unknown fields
    case("unknown-top-level-field", _body(_set("ip_address", to="192.0.2.1")), "ip_address"),
    case("unknown-system-field", _body(_set("system", "hostname", to="lab-pc-7")), "system.hostname"),
    case("unknown-plugin-field", _body(_set("plugins", 0, "path", to="/home/me")), "plugins[0].path"),
    case("unknown-command-field", _body(_set("commands", 1, "message", to="boom")), "commands[1].message"),
    case("unknown-data-field", _body(_set("data", 0, "name", to="cells.tif")), "data[0].name"),
    case("unknown-activity-field", _body(_set("activity", DAY1, "crashes", to=1)), f"activity.{DAY1}.crashes"),
    # ---- missing required fields
    case("missing-app", _body(_drop("app")), "app"),
    case("missing-schema", _body(_drop("schema")), "schema"),
    case("missing-days", _body(_drop("days")), "days"),
    case("missing-reporter", _body(_drop("reporter")), "reporter"),
    case("missing-first-report", _body(_drop("first_report")), "first_report"),
    case("missing-plugin-version", _body(_drop("plugins", 0, "version")), "plugins[0].version"),
    case("missing-command-duration", _body(_drop("commands", 1, "duration")), "commands[1].duration"),
    case("missing-data-class", _body(_drop("data", 0, "class")), "data[0].class"),
    case("missing-activity-runs", _body(_drop("activity", DAY2, "runs")), f"activity.{DAY2}.runs"),
    # ---- wrong types
    case("string-for-int", _body(_set("commands", 0, "exit_code", to="1")), "commands[0].exit_code"),
    case("string-for-count", _body(_set("counts", DAY1, "viewer.open", to="3")), COUNT),
    case("int-for-bool", _body(_set("first_report", to=1)), "first_report"),
    case("bool-for-int", _body(_set("counts", DAY1, "viewer.open", to=True)), COUNT),
    case("bool-for-schema-version", _body(_set("schema", to=True)), "schema"),
    case("null-for-string", _body(_set("app", to=None)), "app"),
    case("object-for-array", _body(_set("plugins", to={})), "plugins"),
    case("array-for-object", _body(_set("system", to=[])), "system"),
    case("int-for-param-value", _body(_set("commands", 0, "params", "format", to=5)), "commands[0].params.format"),
    case("int-for-exception", _body(_set("commands", 0, "exception", to=5)), "commands[0].exception"),
    # ---- numbers out of range
    case("count-zero", _body(_set("counts", DAY1, "viewer.open", to=0)), COUNT),
    case("count-negative", _body(_set("counts", DAY1, "viewer.open", to=-1)), COUNT),
    case("count-too-large", _body(_set("counts", DAY1, "viewer.open", to=MAX_COUNT + 1)), COUNT),
    case("command-count-zero", _body(_set("commands", 1, "count", to=0)), "commands[1].count"),
    case("exception-count-zero", _body(_set("exceptions", DAY2, "ValueError", to=0)), f"exceptions.{DAY2}.ValueError"),
    case("exit-code-256", _body(_set("commands", 0, "exit_code", to=256)), "commands[0].exit_code"),
    case("ndim-65", _body(_set("data", 0, "ndim", to=65)), "data[0].ndim"),
    case("runs-negative", _body(_set("activity", DAY1, "runs", to=-1)), f"activity.{DAY1}.runs"),
    case("schema-version-2", _body(_set("schema", to=2)), "schema"),
    case(
        "active-minutes-not-10",
        _body(_set("activity", DAY1, "active_minutes", to=15)),
        f"activity.{DAY1}.active_minutes",
    ),
    # ---- dates
    case("day-2026-02-30", _body(_set("days", 0, to="2026-02-30")), "days[0]"),
    case("day-without-dashes", _body(_set("days", 0, to="20261119")), "days[0]"),
    case("day-as-integer", _body(_set("days", 0, to=20261119)), "days[0]"),
    case("day-key-2026-02-30", _body(_set("counts", "2026-02-30", to={"viewer.open": 1})), "counts.2026-02-30"),
    case("command-day-month-13", _body(_set("commands", 0, "day", to="2026-13-01")), "commands[0].day"),
    case("days-empty", _body(_set("days", to=[])), "days"),
    case("days-more-than-31", _body(_set("days", to=[f"2026-01-{day:02}" for day in range(1, 32)] + [DAY1])), "days"),
    case("days-not-ascending", _body(_set("days", to=[DAY2, DAY1])), "days"),
    case("duplicate-day", _body(_set("days", to=[DAY1, DAY1, DAY2])), "days"),
    # ---- a day used somewhere that the report does not cover
    case("counts-day-not-covered", _body(_set("counts", EXTRA_DAY, to={"viewer.open": 1})), f"counts.{EXTRA_DAY}"),
    case(
        "activity-day-not-covered",
        _body(_set("activity", EXTRA_DAY, to={"runs": 1, "active_minutes": 10})),
        f"activity.{EXTRA_DAY}",
    ),
    case(
        "exceptions-day-not-covered",
        _body(_set("exceptions", EXTRA_DAY, to={"KeyError": 1})),
        f"exceptions.{EXTRA_DAY}",
    ),
    case(
        "plugin-day-not-covered",
        _body(_set("plugins", 0, "counts", EXTRA_DAY, to={"x": 1})),
        f"plugins[0].counts.{EXTRA_DAY}",
    ),
    case("command-day-not-covered", _body(_set("commands", 1, "day", to=EXTRA_DAY)), "commands[1].day"),
    case("data-day-not-covered", _body(_set("data", 0, "day", to=EXTRA_DAY)), "data[0].day"),
    # ---- names
    case("level-none", _body(_set("level", to="none")), "level"),
    case("level-upper-case", _body(_set("level", to="Full")), "level"),
    case("reporter-upper-case-hex", _body(_set("reporter", to="0123456789ABCDEF0123456789ABCDEF")), "reporter"),
    case("reporter-31-chars", _body(_set("reporter", to="0123456789abcdef0123456789abcde")), "reporter"),
    case("consent-version-not-hex", _body(_set("consent_version", to="0123456789abcdeg")), "consent_version"),
    case("app-upper-case", _body(_set("app", to="Napari-like")), "app"),
    case("app-sql", _body(_set("app", to="x'; DROP TABLE reports;--")), "app"),
    case("app-trailing-newline", _body(_set("app", to="napari-like\n")), "app"),
    case("event-with-space", _body(_set("counts", DAY1, "viewer open", to=1)), f"counts.{DAY1}.viewer open"),
    case(
        "plugin-event-with-space",
        _body(_set("plugins", 0, "counts", DAY1, "a b", to=1)),
        f"plugins[0].counts.{DAY1}.a b",
    ),
    case("command-name-with-space", _body(_set("commands", 0, "name", to="rm -rf")), "commands[0].name"),
    case(
        "exception-with-message",
        _body(_set("exceptions", DAY2, "ValueError: bad /home/me", to=1)),
        f"exceptions.{DAY2}.ValueError: bad /home/me",
    ),
    case(
        "param-value-with-space",
        _body(_set("commands", 0, "params", "format", to="my file")),
        "commands[0].params.format",
    ),
    # ---- system fields
    case("system-os-not-in-enum", _body(_set("system", "os", to="solaris")), "system.os"),
    case("system-cpus-not-a-bin", _body(_set("system", "cpus", to="12")), "system.cpus"),
    case("system-python-patch", _body(_set("system", "python", to="3.12.1")), "system.python"),
    case("enum-value-wrong-case", _body(_set("data", 0, "size", to="large")), "data[0].size"),
    # ---- rules that span records
    case("other-plugin-with-counts", _body(_set("plugins", 1, "counts", to={DAY1: {"x": 1}})), "plugins[1].counts"),
    case("duplicate-plugin", _body(_append("plugins", 0)), "plugins"),
    case(
        "duplicate-plugin-other-version",
        _body(_append("plugins", {"name": "napari-blobs", "version": "2.0"})),
        "plugins",
    ),
    case("duplicate-command", _body(_append("commands", 0)), "commands[2]"),
    case(
        "duplicate-command-other-count",
        _body(_then(_append("commands", 1), _set("commands", 2, "count", to=9))),
        "commands[2]",
    ),
    case("duplicate-data", _body(_then(_append("data", 0), _set("data", 1, "count", to=7))), "data[1]"),
]


def test_base_document_is_valid():
    # Each malformed case changes one thing in this document; it must itself be accepted.
    assert decode(json.dumps(_document()).encode()) == FULL


@pytest.mark.parametrize(("body", "path"), MALFORMED)
def test_malformed_report_is_rejected_naming_the_field(body: bytes, path: str):
    with pytest.raises(WireError) as caught:
        decode(body)
    assert caught.value.path == path
    assert caught.value.reason
    assert str(caught.value).startswith(f"{path or '(document)'}: ")


@pytest.mark.parametrize("length", [129, 200, 5000])
def test_event_name_too_long_is_rejected_naming_the_day(length: int):
    # Paths may shorten a long key (errors need not echo all of the input), so only the start is compared.
    with pytest.raises(WireError) as caught:
        decode(_body(_set("counts", DAY1, "e" * length, to=1)))
    assert caught.value.path.startswith(f"counts.{DAY1}.eeeeeeee")
    assert "128" in caught.value.reason


def test_oversized_body_is_rejected_before_parsing():
    # Not JSON at all, but too large: the size is checked first, so nothing is parsed.
    with pytest.raises(WireError, match="bytes"):
        decode(b"x" * (MAX_REPORT_BYTES + 1))
    body = _body()
    with pytest.raises(WireError):
        decode(body, max_bytes=len(body) - 1)
    assert decode(body, max_bytes=len(body)) == FULL


# ---- positive ------------------------------------------------------------------------------------------------
def test_full_report_uses_every_part_and_round_trips():
    document = to_json(FULL)
    assert document == _document()
    assert set(document) == set(REPORT.fields)  # every part of the schema is exercised
    assert decode(encode(FULL)) == FULL
    assert decode(json.dumps(document)) == FULL  # str input is accepted too


def test_encode_is_canonical():
    body = encode(FULL)
    text = body.decode("ascii")
    assert text.endswith("}\n")
    assert not text.endswith("\n\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=True) + "\n"
    assert decode(body) == FULL
    assert encode(decode(body)) == body


def test_encode_does_not_depend_on_insertion_order():
    shuffled = dataclasses.replace(
        FULL,
        system=dict(reversed(FULL.system.items())),
        dependencies=dict(reversed(FULL.dependencies.items())),
        counts={day: dict(reversed(counts.items())) for day, counts in reversed(FULL.counts.items())},
        activity=dict(reversed(FULL.activity.items())),
    )
    assert shuffled == FULL
    assert encode(shuffled) == encode(FULL)


def test_canonical_bytes_survive_a_decode_encode_cycle():
    for report in (FULL, MINIMAL):
        canonical = encode(report)
        assert encode(decode(canonical)) == canonical
    # A body that is valid but not canonical decodes to the same report and re-encodes canonically.
    loose = json.dumps(_document(), separators=(",", ":")).encode()
    assert loose != encode(FULL)
    assert encode(decode(loose)) == encode(FULL)


@pytest.mark.parametrize(
    ("report", "path"),
    [
        pytest.param(
            dataclasses.replace(FULL, counts={D1: {"viewer.open": 0}}), f"counts.{DAY1}.viewer.open", id="count-0"
        ),
        pytest.param(dataclasses.replace(FULL, days=(D2, D1)), "days", id="days-descending"),
        pytest.param(dataclasses.replace(FULL, level="none"), "level", id="level-none"),
        pytest.param(dataclasses.replace(FULL, system={"hostname": "lab-pc"}), "system.hostname", id="system-field"),
        pytest.param(dataclasses.replace(FULL, commands=FULL.commands * 2), "commands[2]", id="duplicate-command"),
        pytest.param(
            dataclasses.replace(FULL, exceptions={datetime.date(2026, 12, 1): {"KeyError": 1}}),
            "exceptions.2026-12-01",
            id="day-not-covered",
        ),
    ],
)
def test_encode_refuses_an_invalid_report(report: Report, path: str):
    with pytest.raises(WireError) as caught:
        encode(report)
    assert caught.value.path == path


def test_empty_optional_parts_are_omitted():
    document = json.loads(encode(MINIMAL))
    assert set(document) == {name for name, member in REPORT.fields.items() if member.required}
    assert decode(encode(MINIMAL)) == MINIMAL

    report = dataclasses.replace(
        MINIMAL,
        plugins=(Plugin("napari-blobs", "1.0.0"),),
        commands=(Command(D1, "call", "<1s", 0, 1),),
    )
    document = json.loads(encode(report))
    assert document["plugins"] == [{"name": "napari-blobs", "version": "1.0.0"}]
    assert document["commands"] == [{"day": DAY1, "name": "call", "duration": "<1s", "exit_code": 0, "count": 1}]
    assert "system" not in document
    assert "counts" not in document
    assert decode(encode(report)) == report


def test_explicit_empty_and_null_optional_parts_decode_like_absent_ones():
    document = to_json(MINIMAL) | {"system": {}, "counts": {}, "plugins": [], "commands": []}
    assert decode(json.dumps(document)) == MINIMAL
    command = {"day": DAY1, "name": "call", "duration": "<1s", "exit_code": 0, "count": 1, "exception": None}
    decoded = decode(json.dumps(to_json(MINIMAL) | {"commands": [command]}))
    assert decoded.commands == (Command(D1, "call", "<1s", 0, 1),)
