"""How a run of a command-line program is seen, for :mod:`consentry._cli_tool.wrap`'s watchers; one kind per framework.

- argparse: for the length of a run, the parser and its subparsers report each parse they complete: their
  ``parse_known_args`` is wrapped on the instance (once, however many runs watch it, on any thread) and
  restored when the last run ends; each parse is reported to the innermost run of the thread that parses;
- click and typer: after the run, the command line is split again by click's own option parser, which only
  sorts tokens (no types, callbacks, prompts or files), so nothing of the program runs twice;
- anything else: only that it ran.

click and typer are never imported here: their objects come from the program. Only a recorded run imports this
module: a tool without consent never does.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from consentry._guard import guard

if TYPE_CHECKING:
    import argparse

__all__ = [
    "OBSERVERS",
    "ArgparseRun",
    "ClickRun",
    "Run",
    "parser_tree",
    "plain",
    "read_click_line",
]

Values = dict[str, object]
_MISSING = object()


def plain(value: object) -> object:
    """A parameter value as the allow-list check takes it: text, a bool, or ``None`` when not given.

    Numbers become text (an integer too long to print is only "given"); lists and other objects are only
    "given": what is reported is decided by the manifest, this only keeps odd objects away from it.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        try:
            return str(value)
        except ValueError:  # an integer past the interpreter's limit on digits
            return True
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    return None if type(value).__name__ == "Sentinel" else True  # click's UNSET: not given


class Run:
    """What one run showed, for a program whose command line Consentry cannot see: only that it ran."""

    def __enter__(self) -> Run:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def describe(self, error: BaseException | None) -> tuple[list[str], Mapping[str, object]] | None:  # noqa: ARG002 - overridden
        """The subcommand path and the parameter values of the run; ``None`` if it was not a run (only help)."""
        return [], {}


class ArgparseRun(Run):
    """Sees the parses of an argparse parser tree during one run (through :data:`OBSERVERS`)."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._parser = parser
        self._tree: list[tuple[argparse.ArgumentParser, str | None]] = []
        self._path: list[str] = []
        self._namespace: object = None
        self._began = False

    def __enter__(self) -> ArgparseRun:  # noqa: PYI034 - typing.Self needs Python 3.11
        with guard():
            self._tree = parser_tree(self._parser)
            OBSERVERS.enter(self, self._tree)
        return self

    def __exit__(self, *_: object) -> None:
        with guard():
            OBSERVERS.leave(self, self._tree)

    def entered(self, name: str | None) -> None:
        """A parse began: the root's (``name`` ``None``) restarts the path, a subparser's extends it."""
        if name is None:
            self._began, self._path, self._namespace = True, [], None
        else:
            self._path.append(name)

    def parsed(self, result: Any) -> None:  # noqa: ANN401 - what parse_known_args returned
        """The root's parse returned ``(namespace, extras)``."""
        self._namespace = result[0]

    def describe(self, error: BaseException | None) -> tuple[list[str], Mapping[str, object]] | None:
        """The subparsers chosen and the parsed namespace; ``None`` when parsing ended the run with status 0."""
        if self._namespace is None:
            if self._began and isinstance(error, SystemExit) and error.code in (0, None):
                return None  # --help or --version
            return self._path, {}
        try:
            values = dict(vars(self._namespace))
        except TypeError:  # a namespace object without attributes of its own
            values = {}
        return self._path, values


class Observers:
    """The wrapped ``parse_known_args`` of the parsers being watched, shared by the runs of every thread.

    A parser is wrapped once on the instance, however many runs watch it (at once on several threads, or one
    inside another), and restored when the last of them ends; each parse is reported to the innermost run of the
    thread that parses, and what the parse returns or raises is passed on untouched.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wrapped: dict[int, list[Any]] = {}  # id(parser) -> [parser, previous attribute, wrapper, runs]
        self._local = threading.local()

    def _runs(self) -> list[ArgparseRun]:
        runs: list[ArgparseRun] | None = getattr(self._local, "runs", None)
        if runs is None:
            runs = self._local.runs = []
        return runs

    def enter(self, run: ArgparseRun, tree: list[tuple[argparse.ArgumentParser, str | None]]) -> None:
        """``run`` watches the parsers of ``tree`` on this thread, until :meth:`leave`."""
        with self._lock:
            for parser, name in tree:
                self._wrap(parser, name)
        self._runs().append(run)

    def leave(self, run: ArgparseRun, tree: list[tuple[argparse.ArgumentParser, str | None]]) -> None:
        """``run`` has ended: parsers no run watches any more get their own ``parse_known_args`` back."""
        runs = self._runs()
        if run in runs:
            runs.remove(run)
        with self._lock:
            for parser, _ in tree:
                self._unwrap(parser)

    def _wrap(self, parser: argparse.ArgumentParser, name: str | None) -> None:
        entry = self._wrapped.get(id(parser))
        if entry is not None:
            entry[3] += 1
            return
        previous = vars(parser).get("parse_known_args", _MISSING)
        original = parser.parse_known_args
        runs = self._runs

        def parse_known_args(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - argparse's own signature
            current = runs()
            run = current[-1] if current else None
            if run is not None:
                with guard():
                    run.entered(name)
            result = original(*args, **kwargs)
            if run is not None and name is None:
                with guard():
                    run.parsed(result)
            return result

        vars(parser)["parse_known_args"] = parse_known_args
        self._wrapped[id(parser)] = [parser, previous, parse_known_args, 1]

    def _unwrap(self, parser: argparse.ArgumentParser) -> None:
        entry = self._wrapped.get(id(parser))
        if entry is None:
            return
        entry[3] -= 1
        if entry[3]:
            return
        del self._wrapped[id(parser)]
        attributes = vars(parser)
        if attributes.get("parse_known_args") is not entry[2]:
            return  # replaced by someone else since: theirs stays
        if entry[1] is _MISSING:
            del attributes["parse_known_args"]
        else:
            attributes["parse_known_args"] = entry[1]


OBSERVERS = Observers()


def _after_fork_in_child() -> None:
    """A forked child may have inherited the observers' lock held by a thread it does not have."""
    OBSERVERS._lock = threading.Lock()  # noqa: SLF001 - this module's own object


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def parser_tree(root: argparse.ArgumentParser) -> list[tuple[argparse.ArgumentParser, str | None]]:
    """The parser and every subparser below it, each with its subcommand name (the root's is ``None``)."""
    parser_class = sys.modules["argparse"].ArgumentParser
    found: list[tuple[argparse.ArgumentParser, str | None]] = [(root, None)]
    seen = {id(root)}
    index = 0
    while index < len(found):
        parser = found[index][0]
        index += 1
        for action in getattr(parser, "_actions", ()):
            choices = getattr(action, "choices", None)
            if not isinstance(choices, dict):
                continue
            for name, sub in choices.items():  # a subcommand's name comes before its aliases
                if isinstance(sub, parser_class) and id(sub) not in seen:
                    seen.add(id(sub))
                    found.append((sub, name))
    return found


class ClickRun(Run):
    """Reads the command line of a click (or typer) run again, after it, with click's option parser only."""

    def __init__(self, command: Callable[[], Any], argv: list[str]) -> None:
        self._command = command
        self._argv = argv

    def describe(self, error: BaseException | None) -> tuple[list[str], Mapping[str, object]] | None:  # noqa: ARG002 - the command line says it all
        """The subcommands named on the command line and the values given (or defaulted); ``None`` for help."""
        path, values, informational = read_click_line(self._command(), self._argv)
        return None if informational else (path, values)


def read_click_line(command: Any, argv: Sequence[str]) -> tuple[list[str], Values, bool]:  # noqa: ANN401 - click is not imported
    """Split ``argv`` as ``command`` would.

    Returns the subcommand path, the values by parameter name, and whether an eager option that does not reach
    the command (``--help``, ``--version``) was given.

    Only click's option parser runs, in resilient mode: no type conversion, no callbacks, no prompts. A value not
    on the command line is its parameter's default when that is plain text or a number.
    """
    path: list[str] = []
    values: Values = {}
    informational = False
    parent = None
    info_name: str | None = None
    args = [str(arg) for arg in argv]
    while True:
        settings = {key: value for key, value in command.context_settings.items() if key != "resilient_parsing"}
        context = command.context_class(command, info_name=info_name, parent=parent, resilient_parsing=True, **settings)
        opts, rest, _ = command.make_parser(context).parse_args(args=args)
        for param in command.get_params(context):
            if param.name is None:
                continue
            given = plain(opts.get(param.name))
            if given is not None and given is not False and param.is_eager and not param.expose_value:
                informational = True
            default = param.default if isinstance(param.default, (str, int, float)) else None
            values[param.name] = opts[param.name] if given is not None else default
        if informational or not rest or not hasattr(command, "resolve_command") or getattr(command, "chain", False):
            return path, values, informational
        name, sub, rest = command.resolve_command(context, rest)
        if sub is None:
            return path, values, informational
        path.append(sub.name or name)
        parent, command, info_name, args = context, sub, name, rest
