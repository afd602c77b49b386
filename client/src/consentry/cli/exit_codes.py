"""Named exit codes of ``consentry``."""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What ``consentry`` returns to the shell."""

    OK = 0
    ERROR = 1
    USAGE = 2
    UNKNOWN_APP = 3
    BAD_MANIFEST = 4
    SWITCHED_OFF = 5
    NOT_SENT = 6
    REFUSED = 7
    NOT_AUTHENTIC = 8
    UNREADABLE = 9
