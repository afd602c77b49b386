"""The plugin's contract with napari: nothing it does ever raises into napari.

napari's event emitters re-raise what a callback raises, so an exception in a layer hook would reach the code
that added the layer (``viewer.add_image`` would fail). Every hook runs under :func:`guard`: an ``Exception``
raised inside, by this plugin or by a napari object it looks at, is swallowed, logged at debug level (its type,
never a payload) and kept in a small ring buffer that :func:`swallowed` returns (the tests read it).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

__all__ = ["guard", "guarded", "logger", "swallowed"]

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("napari_consentry")
logger.addHandler(logging.NullHandler())

_swallowed: collections.deque[BaseException] = collections.deque(maxlen=64)  # appends are thread-safe


def _swallow(error: Exception) -> None:
    _swallowed.append(error)
    logger.debug("napari-consentry: %s ignored; napari is not affected", type(error).__name__, exc_info=error)


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Run a block; an ``Exception`` raised inside it is recorded and swallowed."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - napari must never see our errors
        _swallow(error)


def guarded(function: Callable[P, R]) -> Callable[P, R | None]:
    """Decorate a hook: on an error, record it and return ``None``."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - napari must never see our errors
            _swallow(error)
            return None

    return wrapper


def swallowed() -> list[BaseException]:
    """The errors the plugin's hooks swallowed in this process (the most recent 64)."""
    return list(_swallowed)
