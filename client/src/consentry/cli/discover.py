"""Finding an application's manifest from the command line.

In order: the file given with ``--manifest``; the manifest an installed application advertises through the
``consentry.manifests`` entry-point group (the current one); the copy kept when the user last answered. An
entry point names an object that is a :class:`~consentry.manifest.Manifest` or the path of a manifest file (a
``str``, a ``Path`` or an ``importlib.resources`` traversable).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from consentry._consent.quick import peek_name
from consentry._local.paths import Paths
from consentry._local.session import load_saved_manifest
from consentry.manifest import Manifest, ManifestError, load_manifest, loads_manifest

__all__ = ["ENTRY_POINT_GROUP", "UnknownAppError", "find_manifest", "known_apps", "manifest_candidates"]

ENTRY_POINT_GROUP = "consentry.manifests"
#: The most files of an installed package looked at for a manifest of an unknown application.
_MAX_LOOKED_AT = 200


class UnknownAppError(LookupError):
    """No manifest could be found for an application."""


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _from_entry_point(entry_point: importlib.metadata.EntryPoint) -> Manifest:
    target = entry_point.load()
    if isinstance(target, Manifest):
        return target
    if isinstance(target, (str, Path)):
        return load_manifest(target)
    if hasattr(target, "read_text") and hasattr(target, "name"):  # importlib.resources Traversable
        fmt = "json" if str(target.name).endswith(".json") else "toml"
        return loads_manifest(target.read_text("utf-8"), fmt=fmt, source=f"{entry_point.value} ({target.name})")
    raise ManifestError(entry_point.value, [("(entry point)", f"names a {type(target).__name__}, not a manifest")])


def find_manifest(app: str, paths: Paths, manifest_file: str | None = None) -> Manifest:
    """The manifest of ``app``; raises :class:`UnknownAppError` or :class:`ManifestError`."""
    if manifest_file is not None:
        manifest = load_manifest(manifest_file)
        if manifest.name != app:
            raise UnknownAppError(f"{manifest_file} is the manifest of {manifest.name!r}, not {app!r}")
        return manifest
    installed = {entry_point.name: entry_point for entry_point in _entry_points()}
    if app in installed:
        return _from_entry_point(installed[app])
    saved = load_saved_manifest(paths.app(app))
    if saved is not None and saved.name == app:
        return saved
    raise UnknownAppError(f"no manifest found for {app!r}")


def known_apps(paths: Paths) -> dict[str, str]:
    """Applications known on this machine, with where each was found."""
    found: dict[str, str] = {}
    try:
        folders = sorted(entry.name for entry in paths.apps.iterdir() if entry.is_dir())
    except OSError:
        folders = []
    for name in folders:
        if (paths.app(name).manifest).exists():
            found[name] = f"answered ({paths.app(name).root})"
    for entry_point in _entry_points():
        found.setdefault(entry_point.name, f"installed ({entry_point.value})")
    return found


def manifest_candidates(app: str) -> list[Path]:
    """Manifest files of ``app`` shipped inside an installed package of the same name, for a hint.

    The package (``my-app`` is looked for as ``my_app`` too) is found without importing it; its folder and their
    subfolders one level down are searched for ``.toml`` and ``.json`` files whose ``[app] name`` is ``app``.
    Never raises: anything that cannot be read is no candidate.
    """
    found: list[Path] = []
    for module in dict.fromkeys((app.replace("-", "_").replace(".", "_"), app)):
        if not module.isidentifier():
            continue
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        folders = list(spec.submodule_search_locations or []) if spec is not None else []
        looked_at = 0
        for folder in map(Path, folders):
            try:
                files = [*folder.glob("*.toml"), *folder.glob("*.json"), *folder.glob("*/*.toml")]
            except OSError:
                continue
            for file in sorted(files):
                looked_at += 1
                if looked_at > _MAX_LOOKED_AT:
                    break
                if file not in found and peek_name(str(file)) == app:
                    found.append(file)
    return found
