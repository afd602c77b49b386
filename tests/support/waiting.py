"""The one way tests wait for something to happen: poll a condition until a deadline, then fail saying what.

A deadline is a bound, never an expectation of speed: it is generous (a loaded CI machine is slow) and only a
failing test ever reaches it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["DEADLINE", "wait_for"]

#: Seconds a condition is waited for unless a test says otherwise.
DEADLINE = 60.0

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    what: str | None = None,
    *,
    timeout: float = DEADLINE,
    interval: float = 0.02,
    pause: Callable[[float], object] = time.sleep,
) -> T:
    """Call ``condition`` until it returns something true, and return that; fail the test at ``timeout`` seconds.

    ``pause`` waits between calls (``time.sleep``; a Qt test passes ``QTest.qWait`` so that Qt runs meanwhile).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what or 'a condition'} in vain")
        pause(interval)
