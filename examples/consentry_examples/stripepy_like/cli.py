"""The stripepy-like command line: one command span per run, from one call to :func:`consentry.cli_tool`.

::

    stripepy-like download ENCFF993FGR                  # writes ENCFF993FGR.hic (synthetic: nothing is downloaded)
    stripepy-like call ENCFF993FGR.hic 10000 -p 4       # finds its stripes: ENCFF993FGR.hic.stripes.json
    stripepy-like plot ENCFF993FGR.hic.stripes.json stripe-hist
    stripepy-like view ENCFF993FGR.hic.stripes.json --with-biodescriptors

(or ``python -m consentry_examples.stripepy_like ...``). The first run on a terminal asks whether it may send
usage statistics; with a yes, each run is recorded as its manifest allows: the subcommand, the input format,
resolution and normalization, whether other options were given, the exit status, the duration in broad ranges.
``STRIPEPY_LIKE_NO_TELEMETRY=1`` switches it off.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import consentry
from consentry_examples.stripepy_like import EXAMPLE
from consentry_examples.stripepy_like import stripes as science

__all__ = ["PARSER", "main"]

#: The sample datasets ``download`` knows, with their formats.
SAMPLES = {"4DNFI3RFZLZ5": "mcool", "4DNFI6HDY7WZ": "mcool", "ENCFF018NLB": "hic", "ENCFF993FGR": "hic"}
FORMATS = ("hic", "cool", "mcool")
_SHADES = " .:-=+*#%@"


def _shade(value: float, top: float) -> str:
    return _SHADES[min(len(_SHADES) - 1, int(value / (top or 1.0) * (len(_SHADES) - 1)))]


def run_download(args: argparse.Namespace) -> int:
    """Write a sample contact matrix."""
    output: Path = args.output or Path(f"{args.name}.{SAMPLES[args.name]}")
    science.write_matrix(output, science.sample_matrix(args.name, 24 if args.unit_test else 120))
    print(f"wrote {output}")
    return 0


def run_call(args: argparse.Namespace) -> int:
    """Find the stripes of a contact matrix and write them as JSON."""
    output: Path = args.output or args.matrix.with_name(args.matrix.name + ".stripes.json")
    if output.exists() and not args.force:
        print(f"stripepy-like: error: {output} exists (use --force to overwrite it)", file=sys.stderr)
        return 1
    matrix = science.normalize(science.read_matrix(args.matrix), args.normalization)
    found = science.find_stripes(matrix, threads=args.nproc or 1)
    result = {
        "resolution": args.resolution,
        "normalization": args.normalization,
        "stripes": found,
        "pseudodistribution": science.pseudodistribution(matrix),
        "map": science.coarse(matrix),
    }
    output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"{len(found)} stripes in {args.matrix.name} ({args.format}, {args.resolution} bp bins): wrote {output}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    """Draw a result on the terminal."""
    result = json.loads(args.result.read_text("utf-8"))
    if args.plot_type == "contact-map":
        cells = [value for row in result["map"] for value in row]
        for row in result["map"]:
            print("".join(_shade(value, max(cells)) * 2 for value in row))
    elif args.plot_type == "pseudodistribution":
        print("".join(_shade(value, 1.0) for value in result["pseudodistribution"]))
    else:
        strengths = [s["strength"] for s in result["stripes"] if s["strength"] >= (args.relative_change_threshold or 0)]
        for low in sorted({int(strength * 2) / 2 for strength in strengths}):
            print(f"{low:5.1f} {'#' * sum(1 for strength in strengths if low <= strength < low + 0.5)}")
    return 0


def run_view(args: argparse.Namespace) -> int:
    """List the stripes of a result."""
    result = json.loads(args.result.read_text("utf-8"))
    print("column  start (bp)  strength" + ("  rank" if args.with_biodescriptors else ""))
    for rank, stripe in enumerate(result["stripes"], 1):
        start = stripe["column"] * result["resolution"]
        extra = f"  {rank:4d}" if args.with_biodescriptors else ""
        print(f"{stripe['column']:6d}  {start:10d}  {stripe['strength']:8.3f}{extra}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line, as StripePy's (a few of its options)."""
    parser = argparse.ArgumentParser(prog="stripepy-like", description="Find stripes in (synthetic) contact maps.")
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    download = commands.add_parser("download", help="write a sample contact matrix (nothing is downloaded)")
    download.add_argument("name", choices=sorted(SAMPLES), help="the sample")
    download.add_argument("-o", "--output", type=Path, help="where to write it (default: NAME.FORMAT)")
    download.add_argument("--unit-test", action="store_true", help="a tiny matrix, for tests")
    download.set_defaults(run=run_download)

    call = commands.add_parser("call", help="find the stripes in a contact matrix")
    call.add_argument("matrix", type=Path, help="the contact matrix")
    call.add_argument("resolution", type=int, help="its bin size, in base pairs")
    call.add_argument("--format", choices=FORMATS, help="the matrix's format (default: from its name)")
    call.add_argument("-p", "--nproc", type=int, help="threads to use (default: 1)")
    call.add_argument("--force", action="store_true", help="overwrite the output")
    call.add_argument("--normalization", choices=("NONE", "VC", "VC_SQRT", "KR", "ICE"), default="NONE")
    call.add_argument("-o", "--output", type=Path, help="where to write the stripes (default: MATRIX.stripes.json)")
    call.set_defaults(run=run_call)

    plot = commands.add_parser("plot", help="draw a result on the terminal")
    plot.add_argument("result", type=Path, help="a result of call")
    plot.add_argument("plot_type", choices=("contact-map", "pseudodistribution", "stripe-hist"), metavar="PLOT_TYPE")
    plot.add_argument("--relative-change-threshold", type=float, help="leave out weaker stripes")
    plot.set_defaults(run=run_plot)

    view = commands.add_parser("view", help="list the stripes of a result")
    view.add_argument("result", type=Path, help="a result of call")
    view.add_argument("--with-biodescriptors", action="store_true", help="add their ranks")
    view.set_defaults(run=run_view)
    return parser


PARSER = build_parser()


@consentry.cli_tool(PARSER, EXAMPLE.manifest)
def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return its exit status."""
    args = PARSER.parse_args(argv)
    if args.command == "call" and args.format is None:  # what the run used is what the span reports
        suffix = args.matrix.suffix.lstrip(".")
        args.format = suffix if suffix in FORMATS else "hic"
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except OSError as error:
        print(f"stripepy-like: error: {error.strerror or error}: {error.filename}", file=sys.stderr)
        return 1
