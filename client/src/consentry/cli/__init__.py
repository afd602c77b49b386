"""``consentry``: see, control and switch off the telemetry of applications that use Consentry."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from consentry.cli import commands, verify
from consentry.cli.failures import ExitCode

__all__ = ["ExitCode", "build_parser", "main"]

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]  # noqa: SLF001 - argparse's type for subcommands

_DESCRIPTION = """\
See, control and switch off the usage statistics of applications that use Consentry.

Nothing is collected or sent unless you said yes. Each application lists everything it may collect in its
manifest (consentry status APP shows its levels); reports are written to disk before they are sent and
`consentry preview APP` prints exactly those bytes. `consentry disable APP` stops everything and deletes what
was not sent; `consentry disable --all` does so for every application. The environment variables
CONSENTRY_DISABLE=1, DO_NOT_TRACK=1 and <APP>_NO_TELEMETRY=1 also switch it off, and nothing is recorded in CI.
An answer covers only what is recorded after it: earlier reports wait for `consentry approve` or `reject`.
"""

_EPILOG = """\
exit codes: 0 ok, 1 internal error, 2 usage error, 3 unknown application, 4 bad manifest,
5 switched off by a kill switch, 6 not sent (will retry), 7 refused by the server,
8 certificate not authentic (changed or signed by another key), 9 certificate or key unreadable.
Files live under $CONSENTRY_HOME (default: your configuration folder, see `consentry status`).
"""


def _app_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="application name, as in `consentry apps`")
    parser.add_argument("--manifest", metavar="FILE", help="read the application's manifest from FILE")


def _reports_arguments(parser: argparse.ArgumentParser) -> None:
    _app_argument(parser)
    parser.add_argument("reports", nargs="*", metavar="REPORT", help="DAY.LEVEL or DAY (default: every report)")


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _today_flag(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--today", action="store_true", help=text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``consentry`` (also used to generate the CLI reference)."""
    parser = argparse.ArgumentParser(
        prog="consentry",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"consentry {commands.VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _answer_commands(sub)
    _report_commands(sub)
    _data_commands(sub)
    verify.add_parser(sub)
    return parser


def _answer_commands(sub: Subparsers) -> None:
    """status, and the commands that record the user's answer."""
    status = sub.add_parser(
        "status",
        help="show whether telemetry is on, at which level, and what is waiting",
        description="Show the mode, level, since when, until when, the consent version, pending reports, the "
        "last upload, this week's reporter id, the data folder and the one-line indicator text. Without APP, "
        "one line per known application.",
    )
    status.add_argument("app", nargs="?", help="application name (default: all known applications)")
    status.add_argument("--manifest", metavar="FILE", help="read the application's manifest from FILE")
    status.add_argument("--verbose", "-v", action="store_true", help="also show drops and internal errors")
    _json_flag(status)

    for mode, text in (
        ("enable", "send reports automatically (mode 'on')"),
        ("local", "record and write reports, but never send them (mode 'local')"),
        ("ask", "write reports and send each only after `consentry approve` (mode 'ask')"),
    ):
        command = sub.add_parser(
            mode,
            help=text,
            description=f"Say yes for APP: {text}. Only data recorded from now on is sent without asking you: "
            "reports kept from before (recorded in local or ask mode, or under an earlier answer) stay on this "
            "computer until you send them with `consentry approve APP` or delete them with `consentry reject APP`. "
            "The level decides what is collected (see `consentry status APP`); the default is the highest level. "
            "Undo with `consentry disable APP`.",
        )
        _app_argument(command)
        command.add_argument("--level", help="collect up to this level (default: the highest)")
        command.add_argument(
            "--for", dest="valid_for", metavar="DURATION", help="answer expires after DURATION, e.g. 30d, 2w, 12h"
        )
        command.set_defaults(mode={"enable": "on"}.get(mode, mode))

    disable = sub.add_parser(
        "disable",
        help="switch telemetry off and delete what was not sent",
        description="Switch telemetry off for APP (or, with --all, for every application using Consentry) and "
        "delete the data not yet sent. The application keeps working exactly as before.",
    )
    disable.add_argument("app", nargs="?", help="application name")
    disable.add_argument("--manifest", metavar="FILE", help="read the application's manifest from FILE")
    disable.add_argument("--all", action="store_true", help="disable every application using Consentry")

    reenable = sub.add_parser(
        "enable-all",
        help="lift `consentry disable --all` (does not enable any application)",
        description="Remove the user-wide switch set by `consentry disable --all`. Applications stay off until "
        "you enable each of them.",
    )
    reenable.set_defaults(mode=None)


def _report_commands(sub: Subparsers) -> None:
    """The commands about reports: preview, approve, upload, history, endpoints."""
    preview = sub.add_parser(
        "preview",
        help="print the reports that will be sent, byte for byte",
        description="Turn completed days into reports (if telemetry is on) and print each pending report "
        "exactly as it will be uploaded, with where it will go. With --today, build the reports of today as it "
        "stands instead and print those: partial reports, never queued, which `consentry upload APP --today` sends "
        "(for an application's author checking an integration on the day).",
    )
    _app_argument(preview)
    preview.add_argument("--raw", action="store_true", help="print only the report bytes, nothing else")
    _today_flag(preview, "build and print today's reports so far instead (partial; for checking an integration)")
    _json_flag(preview)

    approve = sub.add_parser(
        "approve",
        help="approve pending reports and send them",
        description="Approve pending reports of APP and send them now: those named (as `consentry preview APP` "
        "shows them, DAY.LEVEL, or DAY for every level of a day), or all of them. Reports wait for approval in "
        "mode 'ask', and in any mode when they hold data recorded before your current answer.",
    )
    _reports_arguments(approve)

    reject = sub.add_parser(
        "reject",
        help="delete pending reports without sending them",
        description="Delete pending reports of APP without sending them: those named (DAY.LEVEL or DAY, as "
        "`consentry preview APP` shows them), or all of them. Each is recorded in the history as rejected.",
    )
    _reports_arguments(reject)

    upload = sub.add_parser(
        "upload",
        help="send the pending reports now",
        description="Turn completed days into reports and send those that may be sent now, saying what happened "
        "to each. With --today, build the reports of today as it stands and send them once, now, if the current "
        "answer sends without asking: partial reports, never queued or retried. The server keeps one report per "
        "reporter, level and day, so the whole day's report, built after midnight as usual, replaces them and "
        "nothing is counted twice.",
    )
    _app_argument(upload)
    _today_flag(upload, "build today's reports so far and send them once, now (partial; replaced by the whole day)")
    _json_flag(upload)

    history = sub.add_parser(
        "history", help="list every upload: when, where, status", description="List every upload of APP."
    )
    _app_argument(history)
    history.add_argument("--bytes", action="store_true", help="also print the exact bytes that were sent")
    _json_flag(history)

    endpoints = sub.add_parser(
        "endpoints",
        help="list the host names each level sends to (for firewalls)",
        description="List, per level, the URL and host name APP sends reports to; blocking a host blocks that level.",
    )
    _app_argument(endpoints)
    _json_flag(endpoints)


def _data_commands(sub: Subparsers) -> None:
    """Plugins, deletion, purge and the list of applications."""
    plugins = sub.add_parser(
        "plugins",
        help="allow or deny each plugin's own statistics",
        description="Show, allow or deny the plugins of APP one by one. A denied plugin records nothing of its own; "
        "its name may still be listed as installed when the level lists plugins.",
    )
    _app_argument(plugins)
    plugins.add_argument("--allow", action="append", default=[], metavar="PLUGIN", help="allow PLUGIN (repeatable)")
    plugins.add_argument("--deny", action="append", default=[], metavar="PLUGIN", help="deny PLUGIN (repeatable)")
    _json_flag(plugins)

    forget = sub.add_parser(
        "forget",
        help="ask the servers to delete what was sent, then delete everything here",
        description="Send a deletion request for this installation's reporter ids still inside the servers' "
        "retention window to every server of APP, then switch telemetry off and delete every local file "
        "(counts, pending reports, history, the reporter secret). If a server cannot be reached, nothing local is "
        "deleted, so you can try again (or use --local-only).",
    )
    _app_argument(forget)
    forget.add_argument("--local-only", action="store_true", help="do not contact servers; only delete locally")
    _json_flag(forget)

    purge = sub.add_parser(
        "purge",
        help="switch off and delete every local file, without contacting anyone",
        description="Switch telemetry off for APP (or, with --all, every application) and delete every local file "
        "it kept: counts, pending reports, the upload history and the reporter secret. Nothing is sent.",
    )
    purge.add_argument("app", nargs="?", help="application name")
    purge.add_argument("--manifest", metavar="FILE", help="read the application's manifest from FILE")
    purge.add_argument("--all", action="store_true", help="every application known here")

    apps = sub.add_parser("apps", help="list applications known on this machine", description="List applications.")
    _json_flag(apps)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``consentry``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(commands.run(args))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`consentry status | head -1`): stop quietly. Python flushes stdout again at exit,
        # which would fail the same way and print an error, so what is left goes nowhere.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.OK)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return int(ExitCode.ERROR)
    return code


if __name__ == "__main__":
    sys.exit(main())
