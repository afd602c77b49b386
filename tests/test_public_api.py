"""The public API of both packages is pinned: adding, removing or moving a name is a deliberate change.

A module is public unless a part of its dotted name starts with ``_``; a name is public unless it starts with ``_``.
Every public module lists its public names in ``__all__``, and every public name of every public module is written
in ``tests/public_names.txt``: a new public name fails here until it is added there (or made private).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PINNED_FILE = Path(__file__).with_name("public_names.txt")
SOURCES = {"consentry": ROOT / "client" / "src", "consentry_server": ROOT / "server" / "src"}

#: What ``import consentry`` offers: what an application embedding Consentry needs, and nothing else.
CONSENTRY = [
    "Manifest",
    "ManifestError",
    "NullRecorder",
    "PluginManifest",
    "Recorder",
    "UsageEvents",
    "__version__",
    "cli_tool",
    "consent_request",
    "init",
    "load_manifest",
    "load_plugin_manifest",
    "set_consent",
    "set_plugin_consent",
]
CONSENTRY_SERVER = ["ConfigError", "Settings", "__version__", "create_app", "load_settings"]
#: Public subpackages of the client: the only places, besides ``consentry`` itself, a user imports from.
CLIENT_PUBLIC = ("testing", "transport", "wire", "manifest", "qt", "otel", "cli")


def modules(package: str) -> list[tuple[str, Path]]:
    """Every module of ``package``, by dotted name, with its source file (from the source tree, not imported)."""
    root = SOURCES[package]
    found = []
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append((".".join(parts), path))
    return found


def is_public(module: str) -> bool:
    return not any(part.startswith("_") for part in module.split("."))


def defined_names(path: Path) -> set[str]:
    """The names a module defines at its top level (functions, classes, assignments), not those it imports."""
    names = set()
    for node in ast.parse(path.read_text("utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_") and name not in ("TYPE_CHECKING", "logger")}


def public_names() -> dict[str, list[str]]:
    """Each public module's ``__all__``, as imported."""
    found = {}
    for package in SOURCES:
        for module, _ in modules(package):
            if is_public(module) and not module.endswith("__main__"):
                found[module] = sorted(getattr(importlib.import_module(module), "__all__", ()))
    return found


def pinned() -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for line in PINNED_FILE.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            module, _, names = line.partition(":")
            table[module.strip()] = sorted(names.split())
    return table


def test_the_top_level_packages_offer_exactly_their_documented_names() -> None:
    import consentry
    import consentry_server

    assert sorted(consentry.__all__) == sorted(CONSENTRY)
    assert sorted(consentry_server.__all__) == sorted(CONSENTRY_SERVER)
    for name in consentry.__all__:  # each resolves (they are imported on first use)
        assert getattr(consentry, name) is not None


@pytest.mark.parametrize("package", sorted(SOURCES))
def test_every_public_module_lists_each_name_it_defines_in_all(package: str) -> None:
    missing = {}
    for module, path in modules(package):
        if not is_public(module) or module.endswith("__main__"):
            continue
        listed = set(getattr(importlib.import_module(module), "__all__", ()))
        unlisted = defined_names(path) - listed
        if unlisted:
            missing[module] = sorted(unlisted)
    assert missing == {}, "public names not in __all__ (list them, or start them with _)"


def test_public_names_are_pinned() -> None:
    """A change to the public API shows in this file's diff; regenerate the file's lines from the failure."""
    actual, expected = public_names(), pinned()
    added = {module: sorted(set(names) - set(expected.get(module, ()))) for module, names in actual.items()}
    removed = {module: sorted(set(names) - set(actual.get(module, ()))) for module, names in expected.items()}
    assert {module: names for module, names in added.items() if names} == {}, "new public names"
    assert {module: names for module, names in removed.items() if names} == {}, "public names gone"


def test_the_client_has_only_its_listed_public_subpackages() -> None:
    public = {module.split(".")[1] for module, _ in modules("consentry") if is_public(module) and "." in module}
    assert public == set(CLIENT_PUBLIC)


@pytest.mark.parametrize("module_name", ["consentry", "consentry_server"])
def test_every_public_function_and_class_has_a_docstring(module_name: str) -> None:
    undocumented = []
    for module in public_names():
        if module.split(".")[0] != module_name:
            continue
        imported = importlib.import_module(module)
        for name in imported.__all__:
            value = getattr(imported, name)
            if (inspect.isfunction(value) or inspect.isclass(value)) and not (value.__doc__ or "").strip():
                undocumented.append(f"{module}.{name}")
    assert undocumented == []


def client_imports(path: Path) -> list[tuple[str, str]]:
    """Each ``(module, name)`` the file imports from the client (``name`` empty for ``import module``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "consentry":
                found.extend((node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((alias.name, "") for alias in node.names if alias.name.split(".")[0] == "consentry")
    return found


def test_the_server_imports_only_the_clients_public_wire_and_manifest_apis() -> None:
    allowed_top = set(CONSENTRY)
    wrong = []
    for _, path in modules("consentry_server"):
        for module, name in client_imports(path):
            parts = module.split(".")
            if module == "consentry":
                ok = name in allowed_top
            else:
                ok = parts[1] in ("wire", "manifest") and is_public(module) and not name.startswith("_")
            if not ok:
                wrong.append(f"{path.relative_to(ROOT)}: {module} {name}".strip())
    assert wrong == []


def test_the_rule_above_catches_an_import_of_a_private_module(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from consentry._record.spans import CommandSpan\nimport consentry._local.paths\n")
    assert client_imports(bad) == [("consentry._record.spans", "CommandSpan"), ("consentry._local.paths", "")]
    assert not is_public("consentry._record.spans")


def test_a_null_recorder_imports_none_of_the_recording_machinery() -> None:
    code = (
        "import sys, consentry\n"
        "recorder = consentry.NullRecorder()\n"
        "recorder.count('x')\n"
        "with recorder.command('y'):\n"
        "    pass\n"
        "machinery = ('consentry._record.recorder', 'consentry._record.worker', 'consentry._local', 'consentry._send',"
        " 'consentry.transport', 'consentry.wire.codec')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(machinery))\n"
        "assert loaded == [], loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_pinned_file_names_only_modules_that_exist() -> None:
    existing = {module for package in SOURCES for module, _ in modules(package)}
    assert set(pinned()) <= existing


def test_versions_agree() -> None:
    import consentry
    import consentry_server

    assert consentry.__version__ == consentry_server.__version__


def test_the_module_walk_sees_what_pkgutil_sees() -> None:
    import consentry

    walked = {info.name for info in pkgutil.walk_packages(consentry.__path__, "consentry.")}
    assert walked <= {module for module, _ in modules("consentry")}


def string_constants(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_only_paths_py_spells_a_file_name_of_the_clients_home() -> None:
    paths = SOURCES["consentry"] / "consentry" / "_local" / "paths.py"
    names = {text for text in string_constants(paths) if re.fullmatch(r"[a-z_]+\.[a-z0-9]+", text)}
    assert {"consent.json", "state.json", "store.sqlite3", "history.jsonl", "startup.cache", "policy.json"} <= names
    spelled = {
        f"{path.relative_to(ROOT)}: {sorted(found)}"
        for _, path in modules("consentry")
        if path != paths and (found := names & string_constants(path))
    }
    assert spelled == set()
