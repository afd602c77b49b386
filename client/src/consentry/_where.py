"""Finding the manifest file an application names: relative to the application's package, not only the directory.

``consentry.init("my_app/telemetry.toml")`` is written in ``my_app``'s code, and its author means the file shipped
in that package, wherever the user starts the program from. A relative path is looked for, in order:

1. beside the module that called (``init("telemetry.toml")`` in ``my_app/cli.py``);
2. under the folder that holds the caller's top-level package (``init("my_app/telemetry.toml")``: the folder
   of ``site-packages`` or of the source checkout that holds ``my_app``);
3. in the current directory (what a relative path means to Python, and what it meant here before).

The first file that exists is taken. When none does (or an absolute path names no file), exactly one warning
names every path tried, because telemetry then stays off and the author should know it before their users do.
The caller is the first frame outside Consentry, so ``QtTelemetry`` and ``cli_tool`` resolve for their own caller.
Everything here is cheap (a frame walk and a few ``stat`` calls, no pathlib) and never raises.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not imported from typing: see consentry/_consent/quick.py
if TYPE_CHECKING:
    from types import FrameType
    from typing import TypeVar

    T = TypeVar("T")

__all__ = ["ManifestNotFoundWarning", "find_manifest_file", "warn_not_found"]


class ManifestNotFoundWarning(UserWarning):
    """The manifest file given to :func:`consentry.init` (or ``cli_tool``, ``QtTelemetry``) does not exist."""


def _caller() -> FrameType | None:
    """The innermost frame whose module is not part of Consentry."""
    frame: FrameType | None = sys._getframe(1)  # noqa: SLF001 - the cheap way to the caller's module
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if not (isinstance(name, str) and (name == "consentry" or name.startswith("consentry."))):
            return frame
        frame = frame.f_back
    return None


def _package_folders(frame: FrameType | None) -> list[str]:
    """The caller's own folder, then the folder holding its top-level package (when it has a file)."""
    if frame is None:
        return []
    file = frame.f_globals.get("__file__")
    if not isinstance(file, str) or not file:
        return []
    here = os.path.dirname(os.path.abspath(file))  # noqa: PTH100, PTH120 - os.path: see the module's docstring
    spec = frame.f_globals.get("__spec__")
    package = getattr(spec, "parent", None) if spec is not None else frame.f_globals.get("__package__")
    root = here
    if isinstance(package, str) and package:
        for _ in package.split("."):
            root = os.path.dirname(root)  # noqa: PTH120
    return [here] if root == here else [here, root]


def find_manifest_file(manifest: T) -> tuple[T | str, list[str]]:
    """``manifest`` itself if it is not a path or names an existing file, else the file it means; and what was tried.

    Returns ``(found, [])`` when a file was found (``found`` absolute for a relative path found away from the
    current directory), and ``(manifest, tried)`` when none exists. Never raises.
    """
    try:
        if not isinstance(manifest, (str, os.PathLike)):
            return manifest, []
        path: str | bytes = os.fspath(manifest)  # type: ignore[arg-type]  # checked just above
        if not isinstance(path, str) or not path:
            return manifest, []
        if os.path.isabs(path):  # noqa: PTH117
            return (manifest, []) if os.path.isfile(path) else (manifest, [path])  # noqa: PTH113
        tried = []
        for folder in _package_folders(_caller()):
            candidate = os.path.join(folder, path)  # noqa: PTH118
            if os.path.isfile(candidate):  # noqa: PTH113
                return candidate, []
            tried.append(candidate)
        if os.path.isfile(path):  # noqa: PTH113
            return manifest, []
        tried.append(os.path.abspath(path))  # noqa: PTH100
    except Exception:  # noqa: BLE001 - finding the file is a convenience: the caller goes on with what it was given
        return manifest, []
    return manifest, tried


def warn_not_found(manifest: object, tried: list[str]) -> str:
    """Warn once, at the caller's line, that no manifest file was found; return the reason telemetry is off."""
    reason = f"no manifest file {os.fspath(manifest)!r} (tried {', '.join(tried)}); telemetry is off"  # type: ignore[call-overload]
    message = (
        f"consentry: {reason}. Give a path that exists wherever the program starts, for example "
        "importlib.resources.files(__package__) / 'telemetry.toml' (see docs/embedding.md)"
    )
    try:
        import warnings  # noqa: PLC0415 - only when something is wrong

        frame = _caller()
        if frame is None:
            warnings.warn(message, ManifestNotFoundWarning, stacklevel=2)
        else:
            registry = frame.f_globals.setdefault("__warningregistry__", {})
            module = frame.f_globals.get("__name__", "")
            warnings.warn_explicit(
                message, ManifestNotFoundWarning, frame.f_code.co_filename, frame.f_lineno, module, registry
            )
    except Exception:  # noqa: BLE001, S110 - even a warning made an error (`-W error`) must not reach the host
        pass
    return reason
