"""The fast decoder of canonical bodies (``consentry_server.fast_decode``) never disagrees with the standard one.

Whatever the body: either the fast path declines (``None``, and the standard decoder decides), or both decoders
accept it with equal reports, and the fast path's digest is the one storage would compute. Bodies are the
canonical encodings of valid reports, of valid reports with one mutation, byte-level edits of canonical bodies,
and a table of the spellings the fast path must leave to the standard decoder. Through the application, the same
report sent canonical and compact is stored once.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sqlite3
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from consentry.manifest import Manifest
from consentry.wire import Command, DataCategory, Plugin, Report, WireError, decode, encode, to_json
from consentry_server.fast_decode import decode_canonical
from consentry_server.storage.rows import report_digest
from support.mutations import mutated, valid_reports

SETTINGS = hypothesis.settings(
    max_examples=600,
    deadline=None,
    database=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture, hypothesis.HealthCheck.too_slow],
)


def canonical(document: Any) -> bytes:
    """``document`` written as the client writes reports (what ``consentry.wire.encode`` does, unchecked)."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def standard(body: bytes) -> Report | None:
    try:
        return decode(body)
    except WireError:
        return None


def assert_agree(body: bytes) -> tuple[object, Report | None]:
    """The fast verdict, which is ``None`` or the standard decoder's report with the storage digest."""
    fast = decode_canonical(body)
    report = standard(body)
    if fast is not None:
        assert report is not None, f"the fast path accepted what the standard decoder refuses: {body[:300]!r}"
        assert fast.report == report
        assert fast.digest == report_digest(report)
    return fast, report


@pytest.fixture
def reports(manifests: dict[str, Manifest]) -> list[Report]:
    """The fuzzing's valid reports, and richer ones: several days, plugin counts, exceptions, many commands."""
    base = valid_reports(manifests)
    full, commands = base[2], base[3]
    first, second = full.days[0] - datetime.timedelta(days=1), full.days[0]
    richer = [
        dataclasses.replace(
            full,
            days=(first, second),
            first_report=True,
            counts={first: {"napari:window:file:save_layers": 2}, second: {"napari:window:file:drag_and_drop": 9}},
            exceptions={second: {"ValueError": 1, "KeyError": 3}},
            plugins=(Plugin("napari-blobs", "0.3.0", {first: {"detect": 1}, second: {"detect": 2}}),),
            data=(
                DataCategory(first, "image", "ndarray", "float32", 2, "SMALL", 1),
                DataCategory(second, "image", "ndarray", "uint8", 3, "MEDIUM", 2),
            ),
        ),
        dataclasses.replace(
            commands,
            commands=(
                Command(commands.days[0], "call", "1-10min", 0, 2, {"format": "mcool", "force": True}),
                Command(commands.days[0], "call", "<1s", 1, 1, {"format": "cool"}, "ValueError"),
                Command(commands.days[0], "plot", "1-10s", 0, 7),
            ),
        ),
    ]
    return [*base, *richer]


@pytest.fixture
def documents(reports: list[Report]) -> list[dict[str, Any]]:
    return [to_json(report) for report in reports]


def test_every_valid_report_takes_the_fast_path_with_the_same_result(reports):
    for report in reports:
        fast, decoded = assert_agree(encode(report))
        assert fast is not None, report
        assert decoded == report


def before(member: bytes, line: bytes) -> Callable[[bytes], bytes]:
    """What inserts ``line`` before the report's ``member`` (in key order, when ``line`` sorts there)."""
    opening = b'\n  "' + member + b'": '

    def insert(body: bytes) -> bytes:
        assert opening in body
        return body.replace(opening, b"\n" + line + opening[1:], 1)

    return insert


def swap_app_and_level(body: bytes) -> bytes:
    lines = body.split(b"\n")
    app = next(i for i, line in enumerate(lines) if line.startswith(b'  "app": '))
    level = next(i for i, line in enumerate(lines) if line.startswith(b'  "level": '))
    lines[app], lines[level] = lines[level], lines[app]
    return b"\n".join(lines)


# Each row: a name, what makes the body from a valid report's canonical encoding, and whether the standard decoder
# accepts the result. The fast path declines every one of them.
SPELLINGS = [
    ("compact", lambda body: json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode(), True),
    ("default separators", lambda body: json.dumps(json.loads(body), sort_keys=True).encode(), True),
    ("no final newline", lambda body: body[:-1], True),
    ("two final newlines", lambda body: body + b"\n", True),
    ("CRLF line ends", lambda body: body.replace(b"\n", b"\r\n"), True),
    ("four-space indent", lambda body: json.dumps(json.loads(body), indent=4, sort_keys=True).encode() + b"\n", True),
    ("members out of order", swap_app_and_level, True),
    ("byte-order mark", lambda body: b"\xef\xbb\xbf" + body, False),
    ("key given twice", before(b"app", b'  "app": "napari-like",\n'), False),
    ("unknown member", before(b"app", b'  "address": "127.0.0.1",\n'), False),
    ("empty plugins spelled out", before(b"reporter", b'  "plugins": [],\n'), True),
    ("no dependencies spelled out", before(b"first_report", b'  "dependencies": {},\n'), True),
    ("truncated", lambda body: body[: len(body) // 2], False),
    ("empty", lambda _: b"", False),
    ("trailing garbage", lambda body: body + b"{}", False),
]


@pytest.mark.parametrize(("name", "spell", "accepted"), SPELLINGS, ids=[row[0] for row in SPELLINGS])
def test_other_spellings_are_left_to_the_standard_decoder(reports, name, spell, accepted):
    report = reports[0]  # napari-like basic: no plugins, so spelling them out empty is not canonical
    body = spell(encode(report))
    fast, decoded = assert_agree(body)
    assert fast is None, name
    assert (decoded == report) if accepted else (decoded is None), name


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"schema": 1', b'"schema": 2'),
        (b'"schema": 1', b'"schema": true'),
        (b'"schema": 1', b'"schema": 1.0'),
        (b'"first_report": false', b'"first_report": 0'),
        (b'"runs": 3', b'"runs": -3'),
        (b'"runs": 3', b'"runs": 99999999999999999999999'),
        (b'"active_minutes": 40', b'"active_minutes": 41'),
        (b'"app_version": "1.0.0"', b'"app_version": "1.0.0\\n"'),
        (b'"app_version": "1.0.0"', b'"app_version": "1.0.\\u00e9"'),
        (b'"app_version": "1.0.0"', b'"app_version": "' + b"1" * 65 + b'"'),
        (b'"os": "linux"', b'"os": "plan9"'),
        (b'"python": "3.12"', b'"python": null'),
    ],
)
def test_values_the_schema_refuses_are_refused_by_both(reports, old, new):
    body = encode(reports[0])
    assert old in body
    fast, decoded = assert_agree(body.replace(old, new, 1))
    assert fast is None
    assert decoded is None


def test_dates_that_are_not_in_the_calendar_or_repeated_are_refused_by_both(reports):
    report = reports[0]
    day = report.days[0].isoformat().encode()
    body = encode(report)
    for bad in (b"2025-02-29", b"2024-13-01", b"2024-00-10", b"2024-1-01"):
        fast, decoded = assert_agree(body.replace(day, bad))
        assert fast is None
        assert decoded is None
    repeated = body.replace(b'"days": [\n    "' + day + b'"', b'"days": [\n    "' + day + b'",\n    "' + day + b'"')
    assert repeated != body
    fast, decoded = assert_agree(repeated)
    assert (fast, decoded) == (None, None)


def test_rules_that_span_fields_are_refused_by_both(reports):
    report = reports[-2]  # two days, per-day parts on both
    document = to_json(report)
    swapped = {**document, "days": list(reversed(document["days"]))}
    uncovered = {**document, "days": document["days"][:1]}
    repeated_plugin = {**document, "plugins": document["plugins"] * 2}
    for broken in (swapped, uncovered, repeated_plugin):
        fast, decoded = assert_agree(canonical(broken))
        assert (fast, decoded) == (None, None)


@pytest.mark.parametrize(
    "body",
    [
        b'{\n  "a": ' * 1000 + b"1" + b"}" * 1000 + b"\n",  # an unknown field, which msgspec skips by recursing
        b'{\n  "system": ' + b"[" * 1000 + b"]" * 1000 + b"\n}\n",
        b'{\n  "counts": {"2026-01-01": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1002 + b"\n",
    ],
    ids=["unknown_field_objects", "arrays", "objects_in_a_field"],
)
def test_bodies_nested_too_deeply_are_refused_by_both_without_raising(body):
    fast, decoded = assert_agree(body)
    assert (fast, decoded) == (None, None)


@SETTINGS
@hypothesis.given(data=st.data())
def test_mutated_reports_written_canonically_never_make_the_decoders_disagree(documents, data):
    _, document = data.draw(mutated(documents), label="document")
    assert_agree(canonical(document))


@SETTINGS
@hypothesis.given(data=st.data())
def test_byte_edits_of_canonical_bodies_never_make_the_decoders_disagree(documents, data):
    body = bytearray(canonical(data.draw(st.sampled_from(documents), label="document")))
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        position = data.draw(st.integers(0, len(body) - 1), label="position")
        edit = data.draw(st.sampled_from(["replace", "delete", "insert", "duplicate line"]), label="edit")
        if edit == "replace":
            body[position] = data.draw(st.sampled_from(b'0123456789abcdef":,{}[] \n\\-.'), label="byte")
        elif edit == "delete":
            del body[position : position + data.draw(st.integers(1, 8))]
        elif edit == "insert":
            body[position:position] = data.draw(st.sampled_from([b"0", b"1", b" ", b",", b'"', b"\n  ", b"-"]))
        else:
            start = body.rfind(b"\n", 0, position) + 1
            end = body.find(b"\n", position)
            if end > start:
                body[end:end] = b"\n" + body[start:end]
        if not body:
            break
    assert_agree(bytes(body))


def test_the_same_report_spelled_two_ways_is_stored_once(client, reports):
    """The digests of the two paths agree, so idempotency does not depend on the spelling."""
    for number, original in enumerate(reports):
        report = dataclasses.replace(original, reporter=f"{number + 1:032x}")
        body = encode(report)
        compact = json.dumps(json.loads(body), separators=(",", ":")).encode()
        headers = {"content-type": "application/json"}
        first = client.post(f"/v1/reports/{report.level}", content=body, headers=headers)
        again = client.post(f"/v1/reports/{report.level}", content=compact, headers=headers)
        assert first.json()["status"] == "stored", first.text
        assert again.json()["status"] == "duplicate", (report, again.text)


def test_a_report_whose_plugins_are_stored_as_other_is_identified_as_stored(client, reports, storage):
    """Validation stores plugins that are not public as 'other'; the digest is then that of the stored report."""
    middle = next(report for report in reports if report.plugins and report.level == "middle")
    report = dataclasses.replace(
        middle, reporter="cd" * 16, plugins=(*middle.plugins[:1], Plugin("not-public-here", "1.0"))
    )
    headers = {"content-type": "application/json"}
    first = client.post(f"/v1/reports/{report.level}", content=encode(report), headers=headers)
    assert first.json()["status"] == "stored", first.text
    stored = dataclasses.replace(report, plugins=(middle.plugins[0], Plugin("other", "other")))
    db = sqlite3.connect(storage.path)
    try:
        query = "SELECT digest FROM reports WHERE reporter = ?"
        (digest,) = db.execute(query, (bytes.fromhex(report.reporter),)).fetchone()
    finally:
        db.close()
    assert digest == report_digest(stored)
    again = client.post(f"/v1/reports/{report.level}", content=encode(stored), headers=headers)
    assert again.json()["status"] == "duplicate", again.text
