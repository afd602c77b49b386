"""Strict JSON reading for documents people and programs write by hand: manifests, certificates, seed uploads.

:func:`loads` is :func:`json.loads` that also refuses what a JSON parser silently accepts: a key repeated in
one object (the last would win), ``NaN`` and ``Infinity``, and, when asked, fractions and integers of too many
digits. Every refusal is a :class:`StrictJSONError` (a ``ValueError``) saying what was wrong; the caller turns it
into its own error. (The wire codec marks such values instead, so that its schema check can name the field.)
"""

from __future__ import annotations

import json

__all__ = ["StrictJSONError", "loads"]

_SHOWN = 40


class StrictJSONError(ValueError):
    """The text is not JSON, or is JSON this reader refuses."""


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"the key {key[:_SHOWN]!r} appears twice in one object")
        out[key] = value
    return out


def _constant(text: str) -> object:
    raise StrictJSONError(f"{text} is not a number JSON allows")


def _fraction(text: str) -> object:
    raise StrictJSONError(f"a number that is not an integer ({text[:20]})")


def loads(text: str, *, integers_only: bool = False, max_digits: int | None = None) -> object:
    """Parse ``text``; raise :class:`StrictJSONError` for anything but strict JSON.

    Refused: a repeated key, ``NaN`` and ``Infinity``; with ``integers_only``, fractions; with ``max_digits``,
    integers of more digits (refused before they are converted).
    """

    def integer(digits: str) -> int:
        if max_digits is not None and len(digits.lstrip("-")) > max_digits:
            raise StrictJSONError(f"an integer of {len(digits)} digits")
        return int(digits)

    try:
        return json.loads(
            text,
            object_pairs_hook=_unique,
            parse_constant=_constant,
            parse_float=_fraction if integers_only else None,
            parse_int=integer,
        )
    except StrictJSONError:
        raise
    except RecursionError:
        raise StrictJSONError("JSON nested too deeply") from None
    except ValueError as error:
        raise StrictJSONError(f"not valid JSON: {error}") from None
