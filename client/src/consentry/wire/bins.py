"""The coarse values a report carries for what happened: the bins of durations and data sizes, and command keys.

Defined once, here, for the client that records and for the server that maps other systems' uploads (OTLP spans,
dfx's command records) into the same values.
"""

from __future__ import annotations

import json

from consentry.wire.schema import DATA_SIZES, DURATIONS

TYPE_CHECKING = False  # not imported from typing: a command-line tool imports this module at each start
if TYPE_CHECKING:
    from collections.abc import Mapping

    from consentry.manifest import CommandSpec

__all__ = ["command_key", "duration_bucket", "size_category"]

_DURATION_BOUNDS = (1.0, 10.0, 60.0, 600.0, 3600.0)
_SIZE_BOUNDS = (1e6, 1e8, 1e10)


def duration_bucket(seconds: float) -> str:
    """The duration bucket of a run that took ``seconds``."""
    for bound, label in zip(_DURATION_BOUNDS, DURATIONS, strict=False):
        if seconds < bound:
            return label
    return DURATIONS[-1]


def size_category(elements: float) -> str:
    """NAP-8's size category: SMALL < 1e6 elements <= MEDIUM < 1e8 <= LARGE < 1e10 <= VERY_LARGE."""
    for bound, label in zip(_SIZE_BOUNDS, DATA_SIZES, strict=False):
        if elements < bound:
            return label
    return DATA_SIZES[-1]


def _param_value(allowed: tuple[str, ...], value: object) -> str | bool:
    if value is None:
        return False
    if isinstance(value, bool):  # a value, "true" or "false", where the manifest lists it; else a flag
        text = "true" if value else "false"
        return text if text in allowed else value
    if not isinstance(value, (str, int, float)):
        return True
    try:
        text = str(value)
    except ValueError:  # an integer of more digits than Python converts to text: no allowed value is that long
        return True
    return text if text in allowed else True


def command_key(
    spec: CommandSpec, params: Mapping[str, object], *, duration: float, exit_code: int, exception: str | None
) -> str:
    """The stored key of one command run: name, allow-listed parameters, duration bucket, exit code, exception.

    Parameters the manifest does not declare are left out; a declared parameter not passed (or passed as
    ``None``) is recorded as not given. A boolean is the value ``"true"`` or ``"false"`` where the manifest
    allows that value; otherwise it is a flag: ``True`` is given, ``False`` not given.
    """
    values = {name: _param_value(allowed, params.get(name)) for name, allowed in spec.params.items()}
    exit_code = exit_code if 0 <= exit_code <= 255 else 255  # noqa: PLR2004 - the range of exit statuses
    key = [spec.name, sorted(values.items()), duration_bucket(duration), exit_code, exception]
    return json.dumps(key, separators=(",", ":"))
