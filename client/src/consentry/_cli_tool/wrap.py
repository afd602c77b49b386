"""Command-line tools in one call: every run of an argparse, click or typer program becomes a command span.

::

    main = consentry.cli_tool(cli, "stripepy/telemetry.toml")  # a click command or group, or a typer.Typer

    @consentry.cli_tool(parser, "stripepy/telemetry.toml")  # argparse: decorate the function that parses
    def main(argv=None) -> int:
        args = parser.parse_args(argv)
        ...

The first run starts Consentry (:func:`consentry.init`), first asking on the terminal when the tool runs
interactively (:func:`consentry._consent.asking.ask_in_terminal`: stdin and stdout are terminals, not in CI, no kill
switch, once
per consent version). With consent, each run is recorded as a span: its subcommand path (``call``,
``db/migrate``; the application's name for a tool without subcommands), the values of the parameters its manifest
entry declares (an allowed value as such, any other only as "given"), the duration bucket, the exit status and
the exception's class name. Runs that only print help or a version, and shell-completion requests, are not runs.

The program is never changed: it is called exactly as its console script would call it, and its return value,
exit status, output and exceptions come back untouched. How a run is seen depends on the framework (see
:mod:`consentry._cli_tool.runs`):

- argparse: for the length of the run, the parser and its subparsers report each parse they complete (their
  ``parse_known_args`` is wrapped on the instance, and restored afterwards);
- click and typer: after the run, the command line is split again by click's own option parser, which only sorts
  tokens (no types, callbacks, prompts or files), so nothing of the program runs twice.

The framework is recognised from the object given. Consentry never imports click or typer: an object can only be
a click command if the program imported click.
"""

from __future__ import annotations

import functools
import os
import sys
from _thread import allocate_lock  # threading.Lock itself, without importing threading

from consentry._consent.quick import certainly_off
from consentry._record.null import NullRecorder
from consentry._where import find_manifest_file

# A tool starts with this module whether or not its user consented, so it imports little: not typing (stand-ins
# below; see pyproject.toml), not threading, not even the module that contains our errors (:mod:`consentry._guard`),
# nor what recording needs (init, spans, and with them the manifest; how a run is seen, consentry._cli_tool.runs).
# Without consent a run costs a look at the kill switches, at the manifest's name and at the stored answer
# (:func:`consentry._consent.quick.certainly_off`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path
    from types import TracebackType
    from typing import Any, Generic, ParamSpec, TypeVar, overload

    from consentry._cli_tool.runs import Run
    from consentry._clock import Clock
    from consentry._record.recorder import Recorder
    from consentry._record.spans import CommandSpan
    from consentry.manifest import Manifest
    from consentry.transport import Transport

    P = ParamSpec("P")
    R = TypeVar("R")
else:

    class Generic:
        """``typing.Generic`` at run time: only subscripted, as a base class."""

        def __class_getitem__(cls, _: object) -> type:
            return cls

    P = R = None


__all__ = ["CommandLineTool", "cli_tool", "exit_status"]

Values = dict[str, object]


def exit_status(result: object) -> int:
    """The exit status of a run that returned ``result``.

    An ``int`` as such, ``None`` 0 and a string 1, as ``sys.exit`` would make of them; anything else is success.
    """
    if isinstance(result, int):
        return int(result)
    return 1 if isinstance(result, str) else 0


def _normal(name: str) -> str:
    return name.replace("-", "_")


def parameters(declared: Sequence[str], values: Mapping[str, object]) -> Values:
    """The values of the ``declared`` parameters among ``values`` (``plot-type`` matches ``plot_type``)."""
    from consentry._cli_tool.runs import plain  # noqa: PLC0415 - see the imports

    found = {_normal(name): value for name, value in values.items()}
    return {name: plain(found.get(_normal(name))) for name in declared}


def _on_terminal() -> bool:
    try:
        return bool(sys.stdin and sys.stdout and sys.stdin.isatty() and sys.stdout.isatty())
    except (AttributeError, ValueError, OSError):
        return False


# ---- kinds of programs ---------------------------------------------------------------------------------------
class Watcher:
    """How runs of a kind of program are seen: any callable, only that it ran."""

    def completing(self) -> bool:
        """Whether this call only answers the shell's completion (not a run)."""
        return False

    def watch(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Run:  # noqa: ARG002 - overridden
        """Start watching one run called with ``args`` and ``kwargs``."""
        from consentry._cli_tool.runs import Run  # noqa: PLC0415 - see the imports

        return Run()


class ArgparseWatcher(Watcher):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser

    def watch(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Run:  # noqa: ARG002 - the parser tells
        from consentry._cli_tool.runs import ArgparseRun  # noqa: PLC0415 - see the imports

        return ArgparseRun(self.parser)


class ClickWatcher(Watcher):
    def __init__(self, command: Callable[[], Any]) -> None:
        self.command = command

    def completing(self) -> bool:
        # click's (and so typer's) shell completion sets _<PROG>_COMPLETE and calls the program.
        return any(name.startswith("_") and name.endswith("_COMPLETE") for name in os.environ)

    def watch(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Run:
        from consentry._cli_tool.runs import ClickRun  # noqa: PLC0415 - see the imports

        argv = kwargs.get("args", args[0] if args else None)
        return ClickRun(self.command, list(sys.argv[1:] if argv is None else argv))


# ---- the tool -------------------------------------------------------------------------------------------------
class _Recording:
    """One run as a command span, whose name and parameters are known only once the run has ended."""

    def __init__(self, span: CommandSpan, manifest: Manifest, run: Run) -> None:
        self.span = span
        self.run = run
        self._manifest = manifest

    def __enter__(self) -> _Recording:  # noqa: PYI034 - typing.Self needs Python 3.11
        self.span.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        from consentry._guard import guard  # noqa: PLC0415 - see the imports

        described = None
        with guard():
            described = self.run.describe(error)
            if described is not None:
                path, values = described
                self.span.name = "/".join(path) or self.span.name
                spec = self._manifest.commands.get(self.span.name)
                self.span.params = parameters(list(spec.params) if spec else [], values)
        if described is not None:  # else not a run: help, a version
            self.span.__exit__(kind, error, traceback)


class CommandLineTool(Generic[P, R]):
    """A command-line program with Consentry: call it as the program itself; each call is one run.

    Made by :func:`cli_tool`. :attr:`recorder` is the recorder once the first run started it (a
    :class:`~consentry.NullRecorder` before, and without consent), for counting events during a run.
    """

    def __init__(
        self, program: Callable[P, R], watcher: Watcher, manifest: Manifest | str | Path, options: dict[str, Any]
    ) -> None:
        self.program = program
        self._watcher = watcher
        self._manifest = manifest
        self._options = options
        self._recorder: Recorder | NullRecorder | None = None
        self._lock = allocate_lock()
        functools.update_wrapper(self, program, updated=())  # a click command has no __dict__ to copy, nor wants it

    @property
    def recorder(self) -> Recorder | NullRecorder:
        """The recorder of the runs (a no-op one before the first run and without consent)."""
        return self._recorder if self._recorder is not None else NullRecorder("the tool has not run yet")

    def _start(self) -> Recorder | NullRecorder:
        with self._lock:
            if self._recorder is None:
                self._recorder = _start(self._manifest, self._options)
            return self._recorder

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the program, as one recorded run."""
        if self._watcher.completing():
            return self.program(*args, **kwargs)
        recorder = self._start()
        recording = None if isinstance(recorder, NullRecorder) else _recording(recorder, self._watcher, args, kwargs)
        if recording is None:
            return self.program(*args, **kwargs)
        with recording, recording.run:
            result = self.program(*args, **kwargs)
            recording.span.exit_code = exit_status(result)
        return result


def _recording(
    recorder: Recorder, watcher: Watcher, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> _Recording | None:
    from consentry._guard import guard  # noqa: PLC0415 - see the imports

    recording = None
    with guard():
        from consentry._record.spans import CommandSpan  # noqa: PLC0415

        span = CommandSpan(recorder, recorder.manifest.name, {})
        recording = _Recording(span, recorder.manifest, watcher.watch(args, kwargs))
    return recording  # noqa: RET504 - None when guard() contained an error


def _start(manifest: Manifest | str | Path, options: dict[str, Any]) -> Recorder | NullRecorder:
    """The recorder of the runs: :func:`consentry.init`'s, or at once a no-op one when telemetry is certainly off."""
    prompt = options["prompt"] and _on_terminal()  # no terminal: init's cheap path, without asking
    try:
        reason = certainly_off(manifest, options["home"], options["environ"], asking=prompt)
    except Exception:  # noqa: BLE001 - init() looks again, and contains what went wrong
        reason = None
    if reason is not None:
        return NullRecorder(reason)
    from consentry._guard import guard  # noqa: PLC0415 - see the imports

    recorder: Recorder | NullRecorder = NullRecorder("Consentry failed to start; telemetry is off")
    with guard():
        from consentry._api import init  # noqa: PLC0415

        recorder = init(manifest, **{**options, "prompt": prompt})
    return recorder  # noqa: RET504 - the default when guard() contained an error


def _framework(program: object) -> str | None:
    """``typer``, ``click`` or ``argparse``: the framework ``program`` belongs to, from the modules already loaded."""
    for framework, module, name in (("typer", "typer", "Typer"), ("click", "click", "Command")):
        kind = getattr(sys.modules.get(module), name, None)
        if isinstance(kind, type) and isinstance(program, kind):
            return framework
    parser = getattr(sys.modules.get("argparse"), "ArgumentParser", None)
    return "argparse" if isinstance(parser, type) and isinstance(program, parser) else None


if TYPE_CHECKING:  # the run-time function is the last one; typing.overload is not imported

    @overload
    def cli_tool(
        program: argparse.ArgumentParser,
        manifest: Manifest | str | Path,
        *,
        app_version: str | None = None,
        prompt: bool = True,
        home: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        transport: Transport | None = None,
        background: bool = True,
        flush_at_exit: bool = True,
    ) -> Callable[[Callable[P, R]], CommandLineTool[P, R]]: ...

    @overload
    def cli_tool(
        program: Callable[P, R],
        manifest: Manifest | str | Path,
        *,
        app_version: str | None = None,
        prompt: bool = True,
        home: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        transport: Transport | None = None,
        background: bool = True,
        flush_at_exit: bool = True,
    ) -> CommandLineTool[P, R]: ...


def cli_tool(
    program: Any,  # a parser, a click command, a typer application or a function
    manifest: Manifest | str | Path,
    *,
    app_version: str | None = None,
    prompt: bool = True,
    home: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    transport: Transport | None = None,
    background: bool = True,
    flush_at_exit: bool = True,
) -> Any:  # see the overloads
    """Make every run of a command-line program a command span; the program itself is unchanged.

    ``program`` is a click command or group, or a ``typer.Typer``: the result is called as the program would be
    (``main = cli_tool(cli, manifest)``, then ``main()`` or ``main(["call", "x.hic"])``). For argparse it is the
    ``ArgumentParser``, and the result decorates the function that parses with it and runs the tool
    (``@cli_tool(parser, manifest)``). Any other callable is recorded under the application's name, without
    parameters. Nothing happens until the first run, which calls :func:`consentry.init` with ``manifest`` and the
    other arguments (``prompt``: ask on the terminal first, when interactive). Raises ``TypeError`` for a
    ``program`` that is none of these; never raises from a run.
    """
    manifest, _ = find_manifest_file(manifest)  # for the caller's package, now: init() runs later, from elsewhere
    options: dict[str, Any] = {
        "app_version": app_version,
        "prompt": prompt,
        "home": home,
        "environ": environ,
        "clock": clock,
        "transport": transport,
        "background": background,
        "flush_at_exit": flush_at_exit,
    }
    framework = _framework(program)
    if framework == "argparse":

        def decorate(main: Callable[P, R]) -> CommandLineTool[P, R]:
            return CommandLineTool(main, ArgparseWatcher(program), manifest, options)

        return decorate
    watcher: Watcher
    if framework == "typer":
        get_command = sys.modules["typer.main"].get_command
        watcher = ClickWatcher(lambda: get_command(program))
    elif framework == "click":
        watcher = ClickWatcher(lambda: program)
    elif callable(program):
        watcher = Watcher()
    else:
        raise TypeError(
            f"cli_tool() takes an argparse.ArgumentParser, a click command, a typer.Typer or a function, "
            f"not {type(program).__name__}"
        )
    return CommandLineTool(program, watcher, manifest, options)
