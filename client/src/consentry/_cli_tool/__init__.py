"""Command-line tools (private): :func:`consentry.cli_tool` wraps an argparse, click or typer program."""
