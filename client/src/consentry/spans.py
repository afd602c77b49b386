"""Command spans and data categories: turning what happened into the coarse values a report may carry.

Pure helpers, no I/O. A command's parameters pass through the manifest's allow-list: a value is kept only if
the manifest lists it as allowed, otherwise only whether the parameter was given. Data are described by
duck typing (``shape``, ``size``, ``dtype``, ``ndim``), never by importing NumPy, and never by content.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from consentry.manifest import CommandSpec
from consentry.wire.schema import DATA_SIZES, DURATIONS, EXCEPTION_NAME

__all__ = ["command_key", "data_key", "duration_bucket", "exception_name", "size_category"]

_DURATION_BOUNDS = (1.0, 10.0, 60.0, 600.0, 3600.0)
_SIZE_BOUNDS = (1e6, 1e8, 1e10)
_DTYPE = re.compile(r"^[A-Za-z0-9_<>|=\[\]]{1,32}$")
_CLASS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


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


def exception_name(error: BaseException | type[BaseException] | None) -> str | None:
    """The class name of an exception, never its message; ``None`` for no exception."""
    if error is None:
        return None
    name = (error if isinstance(error, type) else type(error)).__name__
    return name if EXCEPTION_NAME.regex.fullmatch(name) else "Other"


def _param_value(allowed: tuple[str, ...], value: object) -> str | bool:
    if value is None or value is False:
        return False
    text = str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    if text is not None and text in allowed:
        return text
    return True


def command_key(
    spec: CommandSpec, params: Mapping[str, object], *, duration: float, exit_code: int, exception: str | None
) -> str:
    """The stored key of one command run: name, allow-listed parameters, duration bucket, exit code, exception.

    Parameters the manifest does not declare are left out; a declared parameter not passed (or passed as
    ``None`` or ``False``) is recorded as not given.
    """
    values = {name: _param_value(allowed, params.get(name)) for name, allowed in spec.params.items()}
    exit_code = exit_code if 0 <= exit_code <= 255 else 255  # noqa: PLR2004 - the range of exit statuses
    key = [spec.name, sorted(values.items()), duration_bucket(duration), exit_code, exception]
    return json.dumps(key, separators=(",", ":"))


def _elements(data: object) -> float | None:
    try:
        return _count_elements(data)
    except Exception:  # noqa: BLE001 - the host's object may raise anything when looked at; it is then not described
        return None


def _count_elements(data: object) -> float | None:
    size = getattr(data, "size", None)
    if isinstance(size, (int, float)) and not isinstance(size, bool) and size >= 0:
        return float(size)
    shape = getattr(data, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape):
        return float(math.prod(shape))
    try:
        return float(len(data))  # type: ignore[arg-type]
    except TypeError:
        return None


def _dtype_and_ndim(data: object) -> tuple[str, int] | None:
    try:
        dtype = str(getattr(data, "dtype", type(data).__name__))
        ndim = getattr(data, "ndim", None)
        if not isinstance(ndim, int) or isinstance(ndim, bool):
            shape = getattr(data, "shape", None)
            ndim = len(shape) if isinstance(shape, tuple) else 1
    except Exception:  # noqa: BLE001 - the host's object may raise anything when looked at
        return None
    return dtype, ndim


def data_key(kind: str, data: object) -> str | None:
    """The stored key of one data category, or ``None`` if ``data`` cannot be described."""
    if not _KIND.fullmatch(kind):
        return None
    elements = _elements(data)
    described = _dtype_and_ndim(data)
    if elements is None or described is None:
        return None
    class_name = type(data).__name__
    dtype, ndim = described
    class_name = class_name if _CLASS.fullmatch(class_name) else "other"
    dtype = dtype if _DTYPE.fullmatch(dtype) else "other"
    key = [kind, class_name, dtype, max(0, min(ndim, 64)), size_category(elements)]
    return json.dumps(key, separators=(",", ":"))
