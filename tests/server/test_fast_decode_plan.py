"""The fast decoder's plan (``fast_decode.plan_for``) on small schemas of its own: what it mirrors, what it refuses.

The report's schema exercises the plan through ``test_fast_decode.py``. Here a schema with the same constructs
(a unique array of dates, date-keyed maps, optional fields with defaults at the top level and in the objects of
an array) shows each rule on its own; and schemas holding what the plan cannot mirror exactly are refused, so
that a future wire schema cannot be decoded differently by the fast path without anyone noticing.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from consentry.wire.spec import Array, Date, Enum, Field, Int, Map, Nullable, Object, OneOf, Str, WireError, check
from consentry_server.fast_decode import UnsupportedSchemaError, plan_for

NAME = Str("[a-z]+", 8)
ITEM = Object("Item", {"name": Field(NAME), "tags": Field(Array(NAME, 4), required=False, default=list)})
SMALL = Object(
    "Small",
    {
        "days": Field(Array(Date(), 3, min_items=1, unique=True)),
        "kind": Field(Enum(("a", "b"))),
        "counts": Field(Map(Date(), Map(NAME, Int(0, 100), 4), 3), required=False, default=dict),
        "items": Field(Array(ITEM, 4), required=False, default=list),
        "note": Field(Nullable(NAME), required=False),
    },
)
PLAN = plan_for(SMALL)


def canonical(document: Any) -> bytes:
    """``document`` spelled as the client spells reports: sorted keys, two-space indentation, ASCII."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


MINIMAL = {"days": ["2026-11-20"], "kind": "a"}
FULL = {
    "days": ["2026-11-19", "2026-11-20"],
    "kind": "b",
    "counts": {"2026-11-19": {"open": 3}, "2026-11-20": {"open": 1, "save": 100}},
    "items": [{"name": "viewer"}, {"name": "reader", "tags": ["fast", "io"]}],
    "note": "hello",
}


@pytest.mark.parametrize("document", [MINIMAL, FULL, {**MINIMAL, "note": None}], ids=["minimal", "full", "null"])
def test_a_canonical_body_decodes_to_what_the_standard_check_returns(document: dict[str, Any]) -> None:
    body = canonical(document)
    found = PLAN.document(body)
    assert found is not None
    decoded, compact = found
    assert decoded == check(SMALL, json.loads(body))
    assert compact == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def test_dates_are_decoded_and_absent_optional_parts_filled_in() -> None:
    found = PLAN.document(canonical(FULL))
    assert found is not None
    decoded = found[0]
    assert decoded["days"] == [datetime.date(2026, 11, 19), datetime.date(2026, 11, 20)]
    assert set(decoded["counts"]) == {datetime.date(2026, 11, 19), datetime.date(2026, 11, 20)}
    assert decoded["items"] == [{"name": "viewer", "tags": []}, {"name": "reader", "tags": ["fast", "io"]}]
    minimal = PLAN.document(canonical(MINIMAL))
    assert minimal is not None
    assert minimal[0] == {"days": [datetime.date(2026, 11, 20)], "kind": "a", "counts": {}, "items": []}


ACCEPTED = "accepted"
# (what is wrong, the body, what the standard check makes of it: accepted, or refused)
DECLINED = [
    ("a day twice", canonical({**MINIMAL, "days": ["2026-11-20", "2026-11-20"]}), "refused"),
    ("a date key that is no calendar date", canonical({**MINIMAL, "counts": {"2026-02-30": {"open": 1}}}), "refused"),
    ("a day that is no calendar date", canonical({**MINIMAL, "days": ["2026-13-01"]}), "refused"),
    ("an unknown field", canonical({**MINIMAL, "extra": 1}), "refused"),
    ("a value outside its enumeration", canonical({**MINIMAL, "kind": "c"}), "refused"),
    ("a count above its maximum", canonical({**MINIMAL, "counts": {"2026-11-20": {"open": 101}}}), "refused"),
    ("a required field missing", canonical({"days": ["2026-11-20"]}), "refused"),
    ("a top-level default spelled out", canonical({**MINIMAL, "counts": {}}), "accepted"),
    (
        "a default spelled out in an array's object",
        canonical({**MINIMAL, "items": [{"name": "x", "tags": []}]}),
        "accepted",
    ),
    ("compact JSON", json.dumps(FULL, sort_keys=True).encode(), "accepted"),
    ("unsorted keys", (json.dumps({"kind": "a", "days": ["2026-11-20"]}, indent=2) + "\n").encode(), "accepted"),
    ("no final line break", canonical(MINIMAL)[:-1], "accepted"),
    ("a key given twice", canonical(MINIMAL).replace(b'"kind": "a"', b'"kind": "b",\n  "kind": "a"'), "refused"),
    ("truncated", canonical(FULL)[: len(canonical(FULL)) // 2], "refused"),
]


@pytest.mark.parametrize(("body", "standard"), [case[1:] for case in DECLINED], ids=[c[0] for c in DECLINED])
def test_anything_but_a_valid_canonical_body_is_left_to_the_standard_check(body: bytes, standard: str) -> None:
    assert PLAN.document(body) is None
    try:
        parsed = json.loads(body, object_pairs_hook=_no_duplicates)
        check(SMALL, parsed)
    except (ValueError, WireError):
        verdict = "refused"
    else:
        verdict = "accepted"
    assert verdict == standard


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key given twice")
    return dict(pairs)


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        (
            Object("T", {"items": Field(Array(Object("I", {"xs": Field(Array(NAME, 2, unique=True))}), 2))}),
            "arrays that are top-level fields",
        ),
        (Object("T", {"items": Field(Array(ITEM, 2, unique=True))}), "arrays of strings, dates and numbers"),
        (
            Object("T", {"inner": Field(Object("In", {"x": Field(Int(0, 1), required=False, default=int)}))}),
            "defaults only at the top level",
        ),
        (
            Object("T", {"items": Field(Array(Object("I", {"more": Field(Array(ITEM, 2))}), 2))}),
            "defaults only at the top level",
        ),
        (Object("T", {"x": Field(OneOf((Map(Date(), Int(0, 1), 2), Int(0, 1))))}), "which option of a OneOf"),
    ],
    ids=["unique-nested", "unique-objects", "defaults-in-object", "defaults-two-arrays-deep", "dates-in-oneof"],
)
def test_a_schema_the_plan_cannot_mirror_is_refused(schema: Object, reason: str) -> None:
    with pytest.raises(UnsupportedSchemaError, match=reason):
        plan_for(schema)
