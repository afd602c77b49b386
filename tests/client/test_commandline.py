"""consentry.cli_tool: argparse, click and typer programs, each run a command span, the program unchanged.

The same small StripePy-like program is written in each framework; each test runs the real program, unwrapped
and wrapped, in process, and compares what the user sees (return value, exit status, exception, output). The
first-run prompt is tested in a child process on a real pseudo-terminal, and "nothing before consent" with an
audit hook, as in test_invariants.py.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pty
import select
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
import typer

import consentry
import consentry._cli_tool.wrap
from consentry import Manifest
from consentry._cli_tool.wrap import exit_status
from consentry.manifest import loads_manifest
from support.processes import client_environment
from support.store import recorded_day

APP = "stripepy-like"
PRIVATE_PATH = "/home/alice/secret-project/patient-042.hic"


# ---- the program, in each framework -------------------------------------------------------------------------------
def call_(params: dict[str, Any]) -> int:
    sys.stdout.write(f"calling stripes in {params['matrix']} at {params['resolution']}\n")
    if params["normalization"] == "interrupt":
        raise KeyboardInterrupt
    return 0


def download_(params: dict[str, Any]) -> int:
    sys.stderr.write(f"cannot download {params['name']}\n")
    sys.exit(3)


def plot_(params: dict[str, Any]) -> int:
    sys.stdout.write(f"plot {params['plot_type']}\n")
    return 0


def view_(params: dict[str, Any]) -> int:
    del params
    raise FileNotFoundError(2, "No such file or directory", PRIVATE_PATH)


BEHAVIOUR: dict[str, Callable[[dict[str, Any]], int]] = {
    "call": call_,
    "download": download_,
    "plot": plot_,
    "view": view_,
}


def argparse_program() -> tuple[argparse.ArgumentParser, Callable[..., int]]:
    parser = argparse.ArgumentParser(prog=APP)
    parser.add_argument("--version", action="version", version="1.0")
    commands = parser.add_subparsers(dest="command", required=True)
    call = commands.add_parser("call", aliases=["c"])
    call.add_argument("matrix")
    call.add_argument("resolution", type=int)
    call.add_argument("--format")
    call.add_argument("-p", "--nproc", type=int)
    call.add_argument("--force", action="store_true")
    call.add_argument("--normalization")
    download = commands.add_parser("download")
    download.add_argument("name")
    download.add_argument("--unit-test", action="store_true")
    plot = commands.add_parser("plot")
    plot.add_argument("--plot-type")
    plot.add_argument("--relative-change-threshold", type=float)
    view = commands.add_parser("view")
    view.add_argument("--with-biodescriptors", action="store_true")
    aliases = {"c": "call"}

    def main(argv: list[str] | None = None) -> int:
        args = parser.parse_args(argv)
        return BEHAVIOUR[aliases.get(args.command, args.command)](vars(args))

    return parser, main


def click_program() -> click.Group:
    @click.group()
    @click.version_option("1.0")
    def cli() -> None:
        pass

    @cli.command()
    @click.argument("matrix")
    @click.argument("resolution", type=int)
    @click.option("--format")
    @click.option("-p", "--nproc", type=int)
    @click.option("--force", is_flag=True)
    @click.option("--normalization")
    def call(**params: Any) -> None:
        call_(params)

    @cli.command()
    @click.argument("name")
    @click.option("--unit-test", is_flag=True)
    def download(**params: Any) -> None:
        download_(params)

    @cli.command()
    @click.option("--plot-type")
    @click.option("--relative-change-threshold", type=float)
    def plot(**params: Any) -> None:
        plot_(params)

    @cli.command()
    @click.option("--with-biodescriptors", is_flag=True)
    def view(**params: Any) -> None:
        view_(params)

    return cli


def typer_program() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def call(
        matrix: str,
        resolution: int,
        format: str | None = typer.Option(None, "--format"),  # noqa: A002 - the option's name
        nproc: int | None = typer.Option(None, "-p", "--nproc"),
        force: bool = typer.Option(False, "--force"),  # noqa: FBT001, FBT003 - typer's way to declare a flag
        normalization: str | None = typer.Option(None, "--normalization"),
    ) -> None:
        call_({"matrix": matrix, "resolution": resolution, "normalization": normalization})
        del format, nproc, force

    @app.command()
    def download(name: str, unit_test: bool = typer.Option(False, "--unit-test")) -> None:  # noqa: FBT001, FBT003
        download_({"name": name, "unit_test": unit_test})

    @app.command()
    def plot(
        plot_type: str | None = typer.Option(None, "--plot-type"),
        relative_change_threshold: float | None = typer.Option(None, "--relative-change-threshold"),
    ) -> None:
        plot_({"plot_type": plot_type, "relative_change_threshold": relative_change_threshold})

    @app.command()
    def view(with_biodescriptors: bool = typer.Option(False, "--with-biodescriptors")) -> None:  # noqa: FBT001, FBT003
        view_({"with_biodescriptors": with_biodescriptors})

    return app


@dataclass
class Program:
    """One framework's version of the program: its unwrapped entry point, and how to wrap it."""

    framework: str
    target: Any
    main: Callable[..., Any]

    def wrap(self, manifest: Manifest, **options: Any) -> consentry._cli_tool.wrap.CommandLineTool[..., Any]:
        if self.framework == "argparse":
            return consentry.cli_tool(self.target, manifest, **options)(self.main)
        return consentry.cli_tool(self.target, manifest, **options)

    def run(self, entry: Callable[..., Any], argv: list[str]) -> Any:
        if self.framework == "argparse":
            return entry(argv)
        return entry(argv, prog_name=APP)


def make_program(framework: str) -> Program:
    if framework == "argparse":
        parser, main = argparse_program()
        return Program(framework, parser, main)
    if framework == "click":
        group = click_program()
        return Program(framework, group, group)
    app = typer_program()
    return Program(framework, app, app)


@pytest.fixture(params=["argparse", "click", "typer"])
def program(request: pytest.FixtureRequest) -> Program:
    return make_program(request.param)


# ---- helpers ------------------------------------------------------------------------------------------------------
def outcome(run: Callable[[], Any], capsys: pytest.CaptureFixture[str]) -> tuple[tuple[object, ...], str, str]:
    """What the user sees of one run: how it ended, and its output."""
    try:
        ended: tuple[object, ...] = ("returned", run())
    except SystemExit as error:
        ended = ("exit", error.code)
    except BaseException as error:  # noqa: BLE001 - KeyboardInterrupt too: it is what the program raised
        ended = ("raised", type(error).__name__, str(error))
    out, err = capsys.readouterr()
    return ended, out, err


def expected_status(ended: tuple[object, ...]) -> tuple[int, str | None]:
    """The exit status and exception a span must record for a run that ended so."""
    if ended[0] == "returned":
        return exit_status(ended[1]), None
    if ended[0] == "exit":
        code = ended[1]
        return (code if isinstance(code, int) else (0 if code is None else 1)), None
    name = str(ended[1])
    return (130 if name == "KeyboardInterrupt" else 1), name


def spans(home: Path, day: object, app: str = APP) -> list[list[object]]:
    """The command spans stored for ``day``: [name, params, duration, exit code, exception, count]."""
    record = recorded_day(home, app, day)  # type: ignore[arg-type]
    if record is None:
        return []
    found = [[*json.loads(key), n] for (kind, key), n in record.counters.items() if kind == "command"]
    return sorted(found, key=json.dumps)


def span(
    manifest: Manifest, command: str, exit_code: int = 0, exception: str | None = None, **given: object
) -> list[object]:
    """A stored span of ``command``: the declared parameters not in ``given`` (by Python name) not given."""
    declared = manifest.commands[command].params
    params = {param: given.get(param.replace("-", "_"), False) for param in declared}
    return [command, [list(item) for item in sorted(params.items())], "<1s", exit_code, exception, 1]


@pytest.fixture
def consented(stripepy, home, environ, clock) -> dict[str, Any]:
    """Consent given; the options that make cli_tool record in this test's home, without threads or atexit."""
    consentry.set_consent(stripepy, "on", "basic", home=home, environ=environ, clock=clock)
    return {"home": home, "environ": environ, "clock": clock, "background": False, "flush_at_exit": False}


# ---- behaviour is unchanged ---------------------------------------------------------------------------------------
RUNS = [
    ["call", PRIVATE_PATH, "10000", "--format", "hic", "-p", "8"],
    ["download", "ENCFF993FGR"],
    ["plot", "--plot-type", "contact-map"],
    ["view", "--with-biodescriptors"],
    ["call", PRIVATE_PATH, "5000", "--normalization", "interrupt"],
    ["call"],  # a usage error
    ["call", "--help"],
    ["--version"],
    ["nonsense"],
    [],
]


@pytest.mark.parametrize("consent", ["on", "off"])
@pytest.mark.parametrize("argv", RUNS, ids=lambda argv: " ".join(argv)[:40] or "no arguments")
def test_the_program_behaves_exactly_as_without_consentry(
    program, stripepy, home, environ, clock, capsys, argv, consent
):
    consentry.set_consent(stripepy, consent, "basic" if consent == "on" else None, home=home, environ=environ)
    options = {"home": home, "environ": environ, "clock": clock, "background": False, "flush_at_exit": False}
    tool = program.wrap(stripepy, **options)
    unwrapped = outcome(lambda: program.run(program.main, list(argv)), capsys)
    wrapped = outcome(lambda: program.run(tool, list(argv)), capsys)
    assert wrapped == unwrapped
    assert tool.recorder.enabled is (consent == "on")
    tool.recorder.flush()
    recorded = spans(home, clock.today())
    if consent == "off":
        assert not (home / "apps" / APP / "store.sqlite3").exists()
    elif argv[-1:] in (["--help"], ["--version"]):
        assert recorded == []  # printing help or a version is not a run
    else:
        code, exception = expected_status(unwrapped[0])
        assert [item[3:5] for item in recorded] in ([[code, exception]], [])  # [] when the command is unknown


def test_runs_become_spans_with_only_allowed_values(program, stripepy, consented, clock, capsys):
    tool = program.wrap(stripepy, **consented)
    for argv in RUNS[:5]:
        outcome(lambda argv=argv: program.run(tool, list(argv)), capsys)
    tool.recorder.flush()
    # Ctrl-C: argparse lets KeyboardInterrupt through, click prints "Aborted!" and exits 1, typer exits 130.
    interrupted = {"argparse": (130, "KeyboardInterrupt"), "click": (1, None), "typer": (130, None)}[program.framework]
    expected = [
        span(stripepy, "call", format="hic", resolution="10000", nproc=True),
        span(stripepy, "call", *interrupted, resolution="5000", normalization=True),
        span(stripepy, "download", 3, name="ENCFF993FGR"),
        span(stripepy, "plot", plot_type="contact-map"),
        span(stripepy, "view", 1, "FileNotFoundError", with_biodescriptors=True),
    ]
    assert spans(consented["home"], clock.today()) == sorted(expected, key=json.dumps)
    stored = json.dumps(spans(consented["home"], clock.today()))
    assert "alice" not in stored
    assert "No such file" not in stored
    assert tool.recorder.drops == {}


def test_unknown_subcommands_and_bare_runs_are_dropped_not_raised(program, stripepy, consented, clock, capsys):
    tool = program.wrap(stripepy, **consented)
    for argv in (["nonsense"], []):
        outcome(lambda argv=argv: program.run(tool, list(argv)), capsys)
    tool.recorder.flush()
    assert spans(consented["home"], clock.today()) == []
    assert tool.recorder.drops == {"command not in the manifest": 2}  # recorded as the application's own name


def test_an_alias_is_recorded_under_its_subcommand(stripepy, consented, clock):
    parser, main = argparse_program()
    tool = consentry.cli_tool(parser, stripepy, **consented)(main)
    assert tool(["c", "m.hic", "25000"]) == 0
    tool.recorder.flush()
    assert spans(consented["home"], clock.today()) == [span(stripepy, "call", resolution="25000")]


def test_a_returned_status_and_values_set_after_parsing_are_what_the_span_records(stripepy, consented, clock):
    parser, _ = argparse_program()

    @consentry.cli_tool(parser, stripepy, **consented)
    def main(argv: list[str]) -> int:
        args = parser.parse_args(argv)
        args.format = args.format or "cool"  # inferred by the program: the value the run used
        return 4

    assert main(["call", "m.cool", "5000"]) == 4
    main.recorder.flush()
    assert spans(consented["home"], clock.today()) == [span(stripepy, "call", 4, format="cool", resolution="5000")]


def test_the_parsers_are_left_as_they_were(stripepy, consented, capsys):
    parser, main = argparse_program()
    tool = consentry.cli_tool(parser, stripepy, **consented)(main)
    before = {id(p): dict(vars(p)) for p in (parser, *parser._subparsers._group_actions[0].choices.values())}  # type: ignore[union-attr]
    for argv in RUNS:
        outcome(lambda argv=argv: tool(list(argv)), capsys)
    after = {id(p): dict(vars(p)) for p in (parser, *parser._subparsers._group_actions[0].choices.values())}  # type: ignore[union-attr]
    assert after == before
    assert "parse_known_args" not in vars(parser)


def test_runs_on_several_threads_at_once_each_see_their_own_parse(stripepy, consented, clock):
    parser, _ = argparse_program()
    together = threading.Barrier(2, timeout=30)

    @consentry.cli_tool(parser, stripepy, **consented)
    def main(argv: list[str]) -> int:
        parser.parse_args(argv)
        together.wait()  # both runs are under way, each after its own parse
        return 0

    def work(argv: list[str]) -> None:
        for _ in range(20):
            main(argv)

    threads = [
        threading.Thread(target=work, args=(argv,))
        for argv in (["plot", "--plot-type", "contact-map"], ["download", "ENCFF993FGR", "--unit-test"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    main.recorder.flush()
    assert [(item[0], item[1], item[-1]) for item in spans(consented["home"], clock.today())] == [
        ("download", [["name", "ENCFF993FGR"], ["unit-test", True]], 20),
        ("plot", [["plot-type", "contact-map"], ["relative-change-threshold", False]], 20),
    ]
    assert "parse_known_args" not in vars(parser)


def test_a_plain_function_is_a_run_of_the_application(home, environ, clock):
    manifest = loads_manifest(
        textwrap.dedent(
            """
            manifest_version = 1
            [app]
            name = "tiny-tool"
            consent_text = "tiny-tool counts its runs."
            [levels.basic]
            description = "Each run."
            endpoint = "https://telemetry.example.org/v1/reports/basic"
            [[commands]]
            name = "tiny-tool"
            level = "basic"
            purpose = "How often it runs."
            """
        )
    )
    consentry.set_consent(manifest, "on", "basic", home=home, environ=environ, clock=clock)
    options = {"home": home, "environ": environ, "clock": clock, "background": False, "flush_at_exit": False}
    tool = consentry.cli_tool(lambda name="x": len(name), manifest, **options)
    assert tool("seven") == 5
    assert tool.__wrapped__ is not None
    tool.recorder.flush()
    assert spans(home, clock.today(), "tiny-tool") == [["tiny-tool", [], "<1s", 5, None, 1]]
    with pytest.raises(TypeError, match="ArgumentParser"):
        consentry.cli_tool(42, manifest)  # type: ignore[call-overload]


def test_without_consent_the_tool_costs_one_check_and_writes_nothing(program, stripepy, home, environ, clock, capsys):
    tool = program.wrap(stripepy, home=home, environ=environ, clock=clock, background=False, flush_at_exit=False)
    assert not tool.recorder.enabled  # before the first run
    outcome(lambda: program.run(tool, ["plot", "--plot-type", "contact-map"]), capsys)
    assert not tool.recorder.enabled
    assert list(home.iterdir()) == []


def test_shell_completion_is_not_a_run(stripepy, consented, clock, capsys, monkeypatch):
    group = click_program()
    tool = consentry.cli_tool(group, stripepy, **consented)
    monkeypatch.setenv("_STRIPEPY_LIKE_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "stripepy-like ca")
    monkeypatch.setenv("COMP_CWORD", "1")
    assert outcome(lambda: tool([], prog_name=APP), capsys) == outcome(lambda: group.main([], prog_name=APP), capsys)
    assert not tool.recorder.enabled  # not even started
    assert not (consented["home"] / "apps" / APP / "store.sqlite3").exists()
    assert spans(consented["home"], clock.today()) == []


LAZY = textwrap.dedent(
    """
    import sys
    import consentry
    from consentry.otel import OtelTransport

    main = consentry.cli_tool(lambda: 0, "telemetry.toml")
    copy = OtelTransport("https://telemetry.example.org:4318")
    heavy = ("click", "typer", "argparse", "opentelemetry", "consentry._record.spans", "consentry.manifest",
    "consentry._api",
             "consentry.transport", "consentry.wire", "ssl", "sqlite3")
    print(sorted(name for name in heavy if name in sys.modules))
    """
)


def test_wrapping_a_tool_imports_nothing_that_recording_needs():
    # A tool imports consentry._cli_tool.wrap (and an OtelTransport) at every start, consent or not.
    done = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout == "[]\n"


def test_exit_status_is_what_sys_exit_would_make_of_a_return_value():
    assert [exit_status(value) for value in (None, 0, 3, True, "failed", 2.5, [])] == [0, 0, 3, 1, 1, 0, 0]


# ---- hostile input ------------------------------------------------------------------------------------------------
HOSTILE = [
    "x" * 1_000_000,
    os.fsdecode(b"\xff\xfe\x80not-utf8"),  # bytes that are not UTF-8, as the interpreter hands them over
    "hic'; DROP TABLE reports; --",
    "hic\x00",
    "HIC",
    " hic",
    "\u202ehic",
    "../../etc/passwd",
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_are_only_ever_given_and_never_crash_the_host(
    program, stripepy, consented, clock, capsys, value
):
    tool = program.wrap(stripepy, **consented)
    argv = ["call", value, "10000", "--format", value, "--normalization", value, "-p", "4"]
    unwrapped = outcome(lambda: program.run(program.main, argv), capsys)
    assert outcome(lambda: program.run(tool, argv), capsys) == unwrapped  # printing surrogates may fail: as before
    tool.recorder.flush()
    code, exception = expected_status(unwrapped[0])
    given = {"format": True, "resolution": "10000", "nproc": True, "normalization": True}
    assert spans(consented["home"], clock.today()) == [span(stripepy, "call", code, exception, **given)]


def test_a_number_too_long_to_print_is_only_given(stripepy, consented, clock):
    parser = argparse.ArgumentParser(prog=APP)
    commands = parser.add_subparsers(dest="command")
    call = commands.add_parser("call")
    call.add_argument("--nproc", type=lambda text: int(text, 16))  # base 16: no limit on the digits
    call.add_argument("--resolution", type=lambda text: int(text, 16))

    @consentry.cli_tool(parser, stripepy, **consented)
    def main(argv: list[str]) -> int:
        args = parser.parse_args(argv)
        return 0 if args.nproc > 0 else 1

    assert main(["call", "--nproc", "f" * 20_000, "--resolution", "f" * 20_000]) == 0
    main.recorder.flush()
    assert spans(consented["home"], clock.today()) == [span(stripepy, "call", nproc=True, resolution=True)]


# ---- the first run asks, on a terminal only -----------------------------------------------------------------------
def on_terminal(command: list[str], env: dict[str, str], reply: str | None = None) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as stdin, stdout and stderr; answer the prompt with ``reply``."""
    controller, device = pty.openpty()
    process = subprocess.Popen(command, stdin=device, stdout=device, stderr=device, env=env, close_fds=True)
    os.close(device)
    output = b""
    replied = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child has exited and closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if reply is not None and not replied and b"Send usage statistics for" in output:
                os.write(controller, reply.encode())
                replied = True
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        os.close(controller)
    return process.returncode, output.decode("utf-8", "replace").replace("\r\n", "\n")


def example(*argv: str) -> list[str]:
    return [sys.executable, "-m", "consentry_examples.stripepy_like", *argv]


@pytest.fixture
def user(home: Path, tmp_path: Path) -> dict[str, str]:
    """A user's shell: no CI variables, no kill switches, a private Consentry home."""
    env = client_environment(home, tmp_path)
    env.pop("STRIPEPY_LIKE_NO_TELEMETRY", None)
    env.pop("STRIPEPY_LIKE_TELEMETRY", None)
    return env


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")
def test_the_first_interactive_run_asks_and_the_answer_holds(home, tmp_path, user):
    output = tmp_path / "sample.hic"
    code, shown = on_terminal(example("download", "ENCFF993FGR", "--unit-test", "-o", str(output)), user, "y\n")
    assert code == 0
    assert "Send usage statistics for stripepy-like?" in shown
    assert f"wrote {output}" in shown  # the program ran as usual after the answer
    consent = json.loads((home / "apps" / APP / "consent.json").read_text("utf-8"))
    assert (consent["mode"], consent["level"]) == ("on", "basic")
    code, shown = on_terminal(example("call", str(output), "10000"), user, "n\n")
    assert code == 0
    assert "usage statistics" not in shown  # asked once
    today = datetime.date.today()  # noqa: DTZ011 - the tool records on the user's local day
    assert [item[0] for item in spans(home, today)] == ["call", "download"]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")
@pytest.mark.parametrize(
    "variables",
    [{"CI": "true"}, {"GITHUB_ACTIONS": "true"}, {"DO_NOT_TRACK": "1"}, {"STRIPEPY_LIKE_NO_TELEMETRY": "1"}],
    ids=["CI", "GitHub Actions", "DO_NOT_TRACK", "the tool's own switch"],
)
def test_never_asked_in_ci_or_under_a_kill_switch(home, tmp_path, user, variables):
    code, shown = on_terminal(
        example("download", "ENCFF993FGR", "--unit-test", "-o", str(tmp_path / "m")), {**user, **variables}, "y\n"
    )
    assert code == 0
    assert "usage statistics" not in shown
    assert list(home.iterdir()) == []


@pytest.mark.slow
def test_never_asked_without_a_terminal(home, tmp_path, user):
    done = subprocess.run(
        example("download", "ENCFF993FGR", "--unit-test", "-o", str(tmp_path / "m")),
        env=user,
        input="y\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout == f"wrote {tmp_path / 'm'}\n"
    assert done.stderr == ""
    assert list(home.iterdir()) == []


# ---- nothing before consent, seen by an audit hook ----------------------------------------------------------------
AUDITED = textwrap.dedent(
    """
    import json, os, sys
    home = os.environ["CONSENTRY_HOME"]
    seen = []

    WATCHED = {"os.mkdir", "sqlite3.connect", "subprocess.Popen", "os.posix_spawn"}
    WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def audit(event, args):
        if event == "open" and str(args[0]).startswith(home):
            path, mode, flags = args
            if (isinstance(mode, str) and set(mode) & set("wax+")) or (flags or 0) & WRITE:
                seen.append([event, str(path)])
        elif event in WATCHED or event.startswith("socket."):
            seen.append([event, repr(args)[:200]])

    sys.addaudithook(audit)
    from consentry_examples.stripepy_like.cli import main
    runs = (["download", "ENCFF993FGR", "--unit-test", "-o", sys.argv[1]], ["call", sys.argv[1], "5000"])
    codes = [main(argv) for argv in runs]
    print("CODES", json.dumps(codes))
    print("SEEN", json.dumps(seen))
    """
)


@pytest.mark.slow
def test_before_consent_no_file_is_written_and_no_socket_opened(home, tmp_path, user):
    done = subprocess.run(
        [sys.executable, "-c", AUDITED, str(tmp_path / "m.hic")],
        env=user,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("CODES", "SEEN")))
    assert json.loads(lines["CODES"]) == [0, 0]
    assert json.loads(lines["SEEN"]) == []
    assert list(home.iterdir()) == []


def test_the_prompt_is_not_reached_from_pytest(stripepy, home, environ, clock, capsys) -> None:
    # Under pytest, stdout is captured (not a terminal): a tool with prompt=True must run without asking.
    tool = make_program("click").wrap(stripepy, home=home, environ=environ, clock=clock, background=False)
    ended, out, _ = outcome(lambda: tool(["plot", "--plot-type", "x"], prog_name=APP), capsys)
    assert ended == ("exit", 0)
    assert out == "plot x\n"
    assert list(home.iterdir()) == []


@pytest.fixture(autouse=True)
def _restore_excepthook() -> Iterator[None]:
    """typer installs its own sys.excepthook when an application runs; put the interpreter's back."""
    hook = sys.excepthook
    yield
    sys.excepthook = hook
