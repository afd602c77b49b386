"""consentry.wire.strict_json: the JSON reader of manifests, certificates and the seed systems' uploads."""

from __future__ import annotations

import pytest

from consentry.wire import strict_json

REFUSED_ALWAYS = {
    "repeated key": ('{"a": 1, "a": 2}', "appears twice"),
    "repeated key deep inside": ('{"a": [{"b": 1, "b": 1}]}', "appears twice"),
    "NaN": ('{"a": NaN}', "NaN is not a number JSON allows"),
    "Infinity": ("[-Infinity]", "-Infinity is not a number JSON allows"),
    "truncated": ('{"a": [1, 2', "not valid JSON"),
    "trailing garbage": ("[1] [2]", "not valid JSON"),
    "nested too deeply": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "empty": ("", "not valid JSON"),
}


@pytest.mark.parametrize(("text", "reason"), REFUSED_ALWAYS.values(), ids=REFUSED_ALWAYS.keys())
def test_what_is_always_refused(text, reason):
    with pytest.raises(strict_json.StrictJSONError, match=reason):
        strict_json.loads(text)


def test_plain_json_reads_as_json_does():
    assert strict_json.loads('{"a": [1, -2, 1.5, "x", null, true], "b": {}}') == {
        "a": [1, -2, 1.5, "x", None, True],
        "b": {},
    }


def test_fractions_only_when_integers_are_asked_for():
    assert strict_json.loads("[2.5]") == [2.5]
    with pytest.raises(strict_json.StrictJSONError, match="not an integer"):
        strict_json.loads("[2.5]", integers_only=True)
    with pytest.raises(strict_json.StrictJSONError, match="not an integer"):
        strict_json.loads("[1e3]", integers_only=True)


def test_integers_of_too_many_digits_are_refused_before_conversion():
    assert strict_json.loads("[-" + "9" * 20 + "]", max_digits=20) == [-int("9" * 20)]
    with pytest.raises(strict_json.StrictJSONError, match="an integer of 100001 digits"):
        strict_json.loads("[" + "9" * 100_001 + "]", max_digits=20)  # int() itself would refuse past 4300


def test_the_error_is_a_value_error_and_echoes_little_of_the_input():
    key = "k" * 10_000
    with pytest.raises(ValueError, match="appears twice") as caught:
        strict_json.loads(f'{{"{key}": 1, "{key}": 2}}')
    assert len(str(caught.value)) < 100
