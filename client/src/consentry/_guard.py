"""The contract with the host: no exception from Consentry ever reaches the application.

Every public entry point runs under :func:`guard`. Conditions the client expects (a read-only disk, an
unreachable server) are handled where they happen and never get here; what does get here is a bug in
Consentry. It is swallowed so the host keeps working, logged at debug level without payloads, and kept in a
small ring buffer: the test suite fails any test that left something in it, and ``consentry status --verbose``
shows it.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import threading

TYPE_CHECKING = False  # not imported from typing, nor is logging until needed: see pyproject.toml
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator
    from typing import ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")
    D = TypeVar("D")

__all__ = ["clear_internal_errors", "guard", "guarded", "internal_errors", "logger"]


class _Logger:
    """The ``consentry`` logger, created (with a NullHandler) on first use."""

    _logger: logging.Logger | None = None

    def _get(self) -> logging.Logger:
        if self._logger is None:
            import logging  # noqa: PLC0415 - see the imports

            logger = logging.getLogger("consentry")
            logger.addHandler(logging.NullHandler())
            self._logger = logger
        return self._logger

    def debug(self, message: str, *args: object, **kwargs: object) -> None:
        """Log at debug level (never payloads: names, sizes and reasons)."""
        self._get().debug(message, *args, **kwargs)  # type: ignore[arg-type]


logger = _Logger()

_errors: collections.deque[BaseException] = collections.deque(maxlen=64)
_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child may have inherited the lock held by a thread it does not have: give it a new one."""
    global _lock  # noqa: PLW0603 - the module's one lock, replaced only in a forked child
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _swallow(error: BaseException) -> None:
    with _lock:
        _errors.append(error)
    logger.debug("consentry internal error (%s); the application is not affected", type(error).__name__, exc_info=error)


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Run a block; an ``Exception`` raised inside it is recorded and swallowed."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - the host must never see our errors
        _swallow(error)


def guarded(default: D) -> Callable[[Callable[P, R]], Callable[P, R | D]]:
    """Decorate a public function: on an internal error, record it and return ``default``."""

    def decorate(function: Callable[P, R]) -> Callable[P, R | D]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | D:
            try:
                return function(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - the host must never see our errors
                _swallow(error)
                return default

        return wrapper

    return decorate


def internal_errors() -> list[BaseException]:
    """The internal errors swallowed in this process (the most recent 64)."""
    with _lock:
        return list(_errors)


def clear_internal_errors() -> None:
    """Forget the recorded internal errors."""
    with _lock:
        _errors.clear()
