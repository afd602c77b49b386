"""Counting uncaught exceptions by class name, through chained ``sys.excepthook`` and ``threading.excepthook``.

The hooks record the exception's class name (never its message or traceback) and then call the hook that was
installed before, so the host's own handling, and Python's traceback printing, are unchanged. Uninstalling
restores the previous hooks, unless someone installed another hook on top of ours since: then ours stays in
the chain, recording nothing, rather than breaking theirs.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import TracebackType

from consentry._guard import guard

__all__ = ["install_exception_hooks"]

Record = Callable[[type[BaseException]], None]
_IGNORED = (KeyboardInterrupt, SystemExit)


def _counted(kind: object) -> bool:
    """Whether ``kind`` is an exception class worth counting (hooks are sometimes called with ``None``)."""
    return isinstance(kind, type) and issubclass(kind, BaseException) and not issubclass(kind, _IGNORED)


def install_exception_hooks(record: Record) -> Callable[[], None]:
    """Chain hooks that pass each uncaught exception's class to ``record``; return the function that removes them."""
    previous_sys = sys.excepthook
    previous_thread = threading.excepthook
    active = [True]

    def sys_hook(kind: type[BaseException], value: BaseException, traceback: TracebackType | None) -> None:
        if active[0] and _counted(kind):
            with guard():
                record(kind)
        previous_sys(kind, value, traceback)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if active[0] and _counted(args.exc_type):
            with guard():
                record(args.exc_type)
        previous_thread(args)

    sys.excepthook = sys_hook
    threading.excepthook = thread_hook

    def uninstall() -> None:
        active[0] = False
        if sys.excepthook is sys_hook:
            sys.excepthook = previous_sys
        if threading.excepthook is thread_hook:
            threading.excepthook = previous_thread

    return uninstall
