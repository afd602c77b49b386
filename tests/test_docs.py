"""The documentation is kept honest: its examples run, its settings table is complete, its commands are real."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest

import consentry
import consentry.wire
from consentry.manifest import loads_manifest, loads_plugin_manifest
from consentry_server.config import Settings
from consentry_server.ingest.otlp.spans import command_name

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SERVER = ROOT / "server" / "src" / "consentry_server"


def blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text("utf-8"), flags=re.DOTALL)


def test_readme_opens_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text("utf-8").splitlines()
    fence = lines.index("```")
    assert fence < 8, "the commands must come in the README's first lines"
    assert lines[fence + 1 : fence + 4] == [
        "pip install ./client ./server ./examples && consentry-server demo",
        "bash scripts/test.sh",
        "```",
    ]


def test_ci_runs_the_readme_test_command() -> None:
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert commands[-1] == "bash scripts/test.sh"


def test_wire_format_example_is_a_valid_canonical_report() -> None:
    [example] = blocks(DOCS / "wire-format.md", "json")
    report = consentry.wire.decode(example.encode())
    assert consentry.wire.encode(report) == example.encode()
    assert report.app == "stripepy-like"


@pytest.mark.parametrize("example", blocks(DOCS / "manifest.md", "toml")[:2], ids=["application", "plugin"])
def test_manifest_examples_parse(example: str) -> None:
    if "[plugin]" in example:
        assert loads_plugin_manifest(example).events
    else:
        manifest = loads_manifest(example)
        assert manifest.commands["call"].params["format"] == ("hic", "cool", "mcool")


def test_the_otlp_page_declares_stripepys_spans_as_it_says() -> None:
    [example] = blocks(DOCS / "otlp.md", "toml")
    manifest = loads_manifest(example)
    for span in ("call", "plot", "plot cm", "plot contact-map"):
        assert command_name(span) in manifest.commands, span
    assert manifest.commands["call"].params["low_memory"] == ("true", "false")


def test_every_server_setting_is_documented() -> None:
    text = (DOCS / "server.md").read_text("utf-8")
    documented = set(re.findall(r"^\| `(\w+)` \|", text, flags=re.MULTILINE))
    assert {field.name for field in dataclasses.fields(Settings)} <= documented


def _reads_of_settings(tree: ast.AST) -> set[str]:
    """Attributes read from an object called ``settings`` (``settings.x``, ``self.settings.x``, ...) in ``tree``."""
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Load)
        and (
            (isinstance(node.value, ast.Name) and node.value.id == "settings")
            or (isinstance(node.value, ast.Attribute) and node.value.attr == "settings")
        )
    }


def _derived_settings() -> dict[str, set[str]]:
    """The properties of ``Settings`` and the fields each reads (``self.x``): ``public_path`` reads
    ``public_database`` and ``database``..."""
    tree = ast.parse((SERVER / "config.py").read_text("utf-8"))
    [settings] = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Settings"]
    return {
        node.name: {
            read.attr
            for read in ast.walk(node)
            if isinstance(read, ast.Attribute) and isinstance(read.value, ast.Name) and read.value.id == "self"
        }
        for node in settings.body
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(decorator, ast.Name) and decorator.id == "property" for decorator in node.decorator_list)
    }


def test_every_server_setting_is_read_by_the_server() -> None:
    # Parsed, validated and documented is not enough: a setting nothing reads is a promise the server breaks
    # (noise_epsilon was one). Read means: as settings.<name> somewhere in the server's code outside config.py,
    # directly or through a property of Settings (settings.public_path reads public_database).
    reads: set[str] = set()
    for path in SERVER.rglob("*.py"):
        if path.name != "config.py" or path.parent != SERVER:
            reads |= _reads_of_settings(ast.parse(path.read_text("utf-8"), str(path)))
    for name, fields in _derived_settings().items():
        if name in reads:
            reads |= fields
    names = {field.name for field in dataclasses.fields(Settings)}
    assert {"public_path", "sqlite_path"} <= reads, "the scan finds the reads it must find"
    assert names - reads == set(), "settings the server never reads"


def test_the_cli_reference_is_generated_from_the_current_help() -> None:
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (DOCS / "cli.md").read_text("utf-8") == module.reference(), "run: python scripts/cli_reference.py"


def test_python_examples_in_the_docs_are_valid_python() -> None:
    for page in DOCS.glob("*.md"):
        for index, example in enumerate(blocks(page, "python")):
            compile(example, f"{page.name} example {index + 1}", "exec")


def test_docs_links_point_to_files_that_exist() -> None:
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text("utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
