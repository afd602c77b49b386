"""Write docs/cli.md from the --help of both command-line interfaces: python scripts/cli_reference.py.

A test fails when docs/cli.md is not what this script writes, so the reference never drifts from the code.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from consentry.cli import build_parser as client_parser
from consentry_server.cli import build_parser as server_parser

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001 - argparse keeps subcommands there
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def _section(parser: argparse.ArgumentParser, level: str) -> list[str]:
    lines = [f"{level} `{parser.prog}`", "", "```", parser.format_help().rstrip(), "```", ""]
    for child in _subparsers(parser).values():
        lines += _section(child, level + "#")
    return lines


def reference() -> str:
    """The whole reference, as Markdown."""
    os.environ["COLUMNS"] = "110"  # argparse wraps to the terminal's width: fix it, for a stable file
    lines = [
        "# Command-line reference",
        "",
        "Generated from `--help` by `python scripts/cli_reference.py`; a test keeps it current.",
        "",
    ]
    for parser in (client_parser(), server_parser()):
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        lines += _section(parser, "##")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    DOCS.write_text(reference(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOCS}\n")
