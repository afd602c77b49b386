"""The start-up cache: what each start with consent would otherwise work out again, kept in ``startup.cache``.

A command-line tool starts many times a day. With consent, each start would read and validate its manifest (a
TOML parser, the wire schema's patterns) and look up the application's installed version (``importlib.metadata``):
together several times the start of the tool itself. :func:`consentry.init` keeps both in the application's
folder once the user has agreed to recording, and uses them at the next start while they still hold:

- the manifest: the document of the validated manifest, beside the exact bytes of the file it was read from; used
  only while the file holds exactly those bytes (a manifest is small: it is read in full and compared);
- the version of the distribution: beside the folder of its metadata (``<name>-<version>.dist-info``) with the time
  that folder last changed, and the time it was looked up; used only for the same distribution while that folder
  is unchanged (installing, upgrading or removing the distribution replaces it), and for a day at most. A version
  not found ("unknown": the application is not installed) is kept beside each folder on ``sys.path`` instead, and
  used while none of them changed.

The file is a line ``consentry-startup <format> <CRC-32 of the rest>`` and a JSON document. It is written only
after consent to record, atomically, and only when it changed. A file that cannot be read, is too large, damaged
(its CRC), of another format or of another shape is ignored as if absent, and replaced by the next start that
records. It holds nothing that the manifest file and the installed packages do not say, and it is trusted as the
answer beside it is: the CRC tells damage, not someone who can write the application's folder (who could write
the answer too).
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # not imported from typing: see pyproject.toml
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from consentry._local.paths import AppPaths
    from consentry.manifest import Manifest

__all__ = ["FORMAT", "MAX_BYTES", "StartupCache"]

FORMAT = 1
_MAGIC = "consentry-startup"
#: A manifest is at most 1 MiB, and the cache holds it twice: anything much larger is not ours.
MAX_BYTES = 4 * 1024 * 1024
#: The most a version looked up is used for (seconds).
VERSION_AGE = 24 * 3600.0


class StartupCache:
    """One start's use of the cache: what it read from the file, and what it will write back."""

    def __init__(self, file: Path | None, content: Mapping[str, object] | None = None) -> None:
        self.file = file
        self._content = dict(content or {})
        self._learnt = False  # something to write back

    @classmethod
    def open(
        cls, manifest: Manifest | str | os.PathLike[str], home: str | Path | None, environ: Mapping[str, str] | None
    ) -> StartupCache:
        """The cache of ``manifest``'s application (a manifest file's is found by a look at the name in it)."""
        from pathlib import Path  # noqa: PLC0415 - see the imports

        from consentry._consent.quick import is_app_name, peek_name  # noqa: PLC0415
        from consentry._local.paths import Paths  # noqa: PLC0415

        name = peek_name(os.fspath(manifest)) if isinstance(manifest, (str, os.PathLike)) else manifest.name
        if name is None or not is_app_name(name):
            return cls(None)
        paths = Paths(Path(home)) if home is not None else Paths.from_environment(environ)
        file = paths.app(name).startup_cache
        return cls(file, _load(file))

    def manifest(self, manifest: Manifest | str | os.PathLike[str]) -> Manifest:
        """``manifest`` itself, or the manifest in that file: from the cache if the file is unchanged, else read."""
        from pathlib import Path  # noqa: PLC0415 - see the imports

        from consentry.manifest.model import Manifest, from_checked  # noqa: PLC0415

        if isinstance(manifest, Manifest):
            return manifest
        source = os.fspath(manifest)
        try:
            with open(source, "rb") as file:  # noqa: PTH123 - see the imports
                raw = file.read(MAX_BYTES + 1)
        except OSError:
            raw = None
        cached = self._content.get("manifest")
        if raw is not None and isinstance(cached, dict) and _same(cached.get("text"), raw):
            try:
                kept = from_checked(cached["document"], str(Path(source)))  # the source as load_manifest names it
            except (KeyError, TypeError, ValueError):
                kept = None  # an entry of another shape: read the file again
            if kept is not None and self.file is not None and kept.name == self.file.parent.name:
                return kept
        from consentry.manifest.parse import load_manifest, manifest_from_bytes  # noqa: PLC0415

        if raw is None:
            return load_manifest(source)  # which says why the file cannot be read
        parsed = manifest_from_bytes(raw, source)
        self._content["manifest"] = {"text": raw.decode("utf-8"), "document": parsed.to_document()}
        self._learnt = True
        return parsed

    def version(self, distribution: str) -> str:
        """The installed version of ``distribution`` (``unknown`` if it is not installed)."""
        cached = self._content.get("version")
        now = time.time()
        if (
            isinstance(cached, dict)
            and cached.get("distribution") == distribution
            and isinstance(cached.get("value"), str)
            and isinstance(cached.get("checked"), (int, float))
            and 0 <= now - cached["checked"] < VERSION_AGE
            and cached.get("where")  # empty: not kept
            and cached.get("where") == _where(cached.get("where"))
        ):
            return str(cached["value"])
        value, where = _installed_version(distribution)
        self._content["version"] = {"distribution": distribution, "value": value, "checked": now, "where": where}
        self._learnt = True
        return value

    def save(self, paths: AppPaths) -> None:
        """Keep what this start learnt, in ``paths``'s folder: only after consent to record, only when it changed."""
        import json  # noqa: PLC0415 - see the imports
        import zlib  # noqa: PLC0415

        from consentry._local.files import write_atomic  # noqa: PLC0415

        if not self._learnt:
            return
        body = json.dumps(self._content, separators=(",", ":")).encode("utf-8")  # the order of levels is meaningful
        header = f"{_MAGIC} {FORMAT} {zlib.crc32(body):08x}\n".encode("ascii")
        try:
            write_atomic(paths.startup_cache, header + body)
        except OSError:  # a cache: the next start works it out again
            return


def _load(file: Path) -> dict[str, object] | None:
    """The content of a cache file; ``None`` if it is absent, unreadable, too large, damaged or not ours."""
    import json  # noqa: PLC0415 - see the imports
    import zlib  # noqa: PLC0415

    try:
        with file.open("rb") as opened:
            raw = opened.read(MAX_BYTES + 1)
        header, _, body = raw.partition(b"\n")
        if len(raw) > MAX_BYTES or header != f"{_MAGIC} {FORMAT} {zlib.crc32(body):08x}".encode("ascii"):
            return None
        content = json.loads(body)
    except (OSError, ValueError, RecursionError):
        return None
    return content if isinstance(content, dict) else None


def _same(text: object, raw: bytes) -> bool:
    """Whether ``text`` is the UTF-8 text of exactly ``raw``."""
    try:
        return isinstance(text, str) and text.encode("utf-8") == raw
    except UnicodeEncodeError:  # a lone surrogate: not the text of any file
        return False


def _changed(folder: object) -> int | None:
    """When ``folder`` last changed (its modification time in nanoseconds); ``None`` if it cannot be told."""
    if not isinstance(folder, str):  # os.stat would take a number for a file descriptor
        return None
    try:
        return os.stat(folder or ".").st_mtime_ns  # noqa: PTH116 - see the imports
    except (OSError, ValueError):
        return None


def _where(cached: object) -> list[list[object]] | None:
    """What ``cached`` (folders a version was found by, each with the time it changed) says now; ``None`` if odd."""
    if not isinstance(cached, list) or not all(isinstance(item, list) and len(item) == 2 for item in cached):  # noqa: PLR2004
        return None
    if not all(isinstance(folder, str) for folder, _ in cached):
        return None
    return [[folder, _changed(folder)] for folder, _ in cached]


def _installed_version(distribution: str) -> tuple[str, list[list[object]]]:
    """The version of ``distribution``, and the folders that tell whether it is still the one installed."""
    import importlib.metadata  # noqa: PLC0415 - the cost this cache saves

    where: list[list[object]]
    try:
        found = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        where = [[entry, _changed(entry)] for entry in sys.path]
        return "unknown", where
    folder = getattr(found, "_path", None)  # its dist-info or egg-info folder; not public, so maybe not there
    where = [[str(folder), _changed(str(folder))]] if folder is not None else []
    return found.version, where
