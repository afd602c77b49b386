"""Command spans and data categories: turning what happened into the coarse values a report may carry.

A command's parameters pass through the manifest's allow-list: a value is kept only if the manifest lists it as
allowed, otherwise only whether the parameter was given. Data are described by duck typing (``shape``,
``size``, ``dtype``, ``ndim``), never by importing NumPy, and never by content. :class:`CommandSpan` times a
run as a context manager or a decorator; everything else here is a pure function.
"""

from __future__ import annotations

import functools
import json
import math
import re

from consentry._guard import guard
from consentry.wire.bins import size_category
from consentry.wire.schema import EXCEPTION_NAME

# A command-line tool with consent imports this module at each start: typing is not imported (see pyproject.toml),
# and the patterns that describe data are compiled when data is first described.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType
    from typing import Protocol, TypeVar

    class _Records(Protocol):
        """The side of a recorder that a span reports to."""

        def monotonic(self) -> float:
            """Seconds, for durations."""
            ...

        def record_command(
            self, name: str, params: Mapping[str, object], *, duration: float, exit_code: int, exception: str | None
        ) -> None:
            """Record one run."""
            ...

    F = TypeVar("F", bound=Callable[..., object])

__all__ = ["COORDINATE_KINDS", "CommandSpan", "data_key", "exception_name"]

_DTYPE = r"^[A-Za-z0-9_<>|=\[\]]{1,32}$"
_CLASS = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_KIND = r"^[a-z][a-z0-9_]{0,31}$"
_compiled = functools.cache(re.compile)  # each pattern when data is first described


def exception_name(error: BaseException | type[BaseException] | None) -> str | None:
    """The class name of an exception, never its message; ``None`` for no exception."""
    if error is None:
        return None
    name = (error if isinstance(error, type) else type(error)).__name__
    return name if EXCEPTION_NAME.regex.fullmatch(name) else "Other"


def _elements(data: object) -> float | None:
    try:
        return _count_elements(data)
    except Exception:  # noqa: BLE001 - the host's object may raise anything when looked at; it is then not described
        return None


def _count_elements(data: object) -> float | None:
    size = getattr(data, "size", None)
    if isinstance(size, (int, float)) and not isinstance(size, bool) and size >= 0:
        return float(size)
    shape = _shape(data)
    if shape is not None:
        return float(math.prod(shape))
    try:
        return float(len(data))  # type: ignore[arg-type]
    except TypeError:
        return None


def _shape(data: object) -> tuple[int, ...] | None:
    shape = getattr(data, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        return shape
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


def _array(data: object) -> tuple[str, str, int, float] | None:
    """Class, dtype, dimensions and number of elements of an array (NAP-8's image and labels, any other kind)."""
    elements = _elements(data)
    described = _dtype_and_ndim(data)
    if elements is None or described is None:
        return None
    dtype, ndim = described
    return type(data).__name__, dtype, ndim, elements


#: Kinds described by their coordinates, as NAP-8 describes napari's points: the number of dimensions of one
#: coordinate (NAP-8's ``shape[1]``) and the size category of the number of items (``shape[0]``), not of elements.
#: The layouts are napari's ``layer.data``: points (N, D); vectors (N, 2, D), a position and a direction each;
#: tracks (N, 1 + D), each vertex's track id then its D coordinates; shapes a list of (vertices, D) arrays, one a
#: shape; surface a tuple (vertices (V, D), faces[, values]).
COORDINATE_KINDS = ("points", "shapes", "surface", "tracks", "vectors")
_RANKS = {"points": 2, "tracks": 2, "vectors": 3}


def _coordinates(kind: str, data: object) -> tuple[str, str, int, float] | None:
    """Class, dtype, dimensions of a coordinate and number of items of a layer's coordinates, if in its layout."""
    try:
        return _describe_coordinates(kind, data)
    except Exception:  # noqa: BLE001 - the host's object may raise anything when looked at
        return None


def _describe_coordinates(kind: str, data: object) -> tuple[str, str, int, float] | None:
    container = type(data).__name__
    if kind == "shapes":
        if not isinstance(data, (list, tuple)) or not data:  # an empty shapes layer has no coordinates to describe
            return None
        first = _shape(data[0])
        if first is None or len(first) != 2:  # noqa: PLR2004 - (vertices, D)
            return None
        return container, str(getattr(data[0], "dtype", "none")), first[1], float(len(data))
    if kind == "surface":
        mesh: object = data[0] if isinstance(data, tuple) and data else None
        vertices = _shape(mesh)
        if vertices is None or len(vertices) != 2:  # noqa: PLR2004 - (V, D)
            return None
        return container, str(getattr(mesh, "dtype", "none")), vertices[1], float(vertices[0])
    shape = _shape(data)
    if shape is None or len(shape) != _RANKS[kind] or (kind == "vectors" and shape[1] != 2):  # noqa: PLR2004
        return None
    ndim = shape[-1] - 1 if kind == "tracks" else shape[-1]  # a track vertex's first column is its track id
    return container, str(getattr(data, "dtype", container)), max(ndim, 0), float(shape[0])


def data_key(kind: str, data: object) -> str | None:
    """The stored key of one data category, or ``None`` if ``data`` cannot be described.

    The key holds the kind, the class and dtype, a number of dimensions and a size category, as NAP-8's
    ``DataSizeTypeCollector`` does: an array (``image``, ``labels`` and any kind not in :data:`COORDINATE_KINDS`)
    by its ``ndim`` and its number of elements; the coordinates of napari's other layers by the dimensions of
    one coordinate and their number of items, so that 500,000 points in 3D are ``3`` and ``SMALL``.
    """
    if not _compiled(_KIND).fullmatch(kind):
        return None
    described = _coordinates(kind, data) if kind in COORDINATE_KINDS else _array(data)
    if described is None:
        return None
    class_name, dtype, ndim, items = described
    class_name = class_name if _compiled(_CLASS).fullmatch(class_name) else "other"
    dtype = dtype if _compiled(_DTYPE).fullmatch(dtype) else "other"
    key = [kind, class_name, dtype, max(0, min(ndim, 64)), size_category(items)]
    return json.dumps(key, separators=(",", ":"))


class CommandSpan:
    """One run of a command, timed; recorded when it ends, with its exit status and exception type.

    As a context manager (``with recorder.command("call", format=fmt):``) the parameters are those given; as
    a decorator (``@recorder.command("call")``) they are the decorated function's arguments, by name. Either
    way only the parameters the manifest declares are kept, and only their allowed values. The block's own
    exceptions propagate unchanged; only the exception's class name is recorded, never its message or
    traceback. ``SystemExit`` gives the exit code; set :attr:`exit_code` for a failure that does not raise.
    """

    def __init__(self, recorder: _Records | None, name: str, params: Mapping[str, object]) -> None:
        self._recorder = recorder
        self.name = name
        self.params = dict(params)
        self.exit_code = 0
        self._start = 0.0

    def __enter__(self) -> CommandSpan:  # noqa: PYI034 - typing.Self needs Python 3.11
        if self._recorder is not None:
            self._start = self._recorder.monotonic()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._recorder is None:
            return
        with guard():
            exit_code, exception = self.exit_code, exception_name(kind)
            if isinstance(error, SystemExit):
                code = error.code
                exit_code = code if isinstance(code, int) else (0 if code is None else 1)
                exception = None
            elif isinstance(error, KeyboardInterrupt):
                exit_code = 130
            elif error is not None:
                exit_code = exit_code or 1
            duration = self._recorder.monotonic() - self._start
            self._recorder.record_command(
                self.name, self.params, duration=duration, exit_code=exit_code, exception=exception
            )

    def __call__(self, function: F) -> F:
        """Use the span as a decorator: every call of ``function`` is one run."""
        import inspect  # noqa: PLC0415 - only decorators pay for it

        signature = inspect.signature(function)
        recorder, name = self._recorder, self.name

        @functools.wraps(function)
        def run(*args: object, **kwargs: object) -> object:
            params: dict[str, object] = {}
            with guard():
                bound = signature.bind_partial(*args, **kwargs)
                params = dict(bound.arguments)
            with CommandSpan(recorder, name, params):
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]
