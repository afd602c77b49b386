"""How ``consentry`` fails: named exit codes, and the error every command raises to report one."""

from __future__ import annotations

import enum

__all__ = ["CliError", "ExitCode"]


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


class CliError(Exception):
    """A failure to report to the user, with a hint and an exit code."""

    def __init__(self, message: str, hint: str = "", code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code
