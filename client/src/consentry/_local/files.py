"""Small, careful file primitives: atomic replacement, tolerant JSON reads, private permissions."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

TYPE_CHECKING = False  # not imported from typing: see pyproject.toml
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO

# Imported here, not when a lock is first taken: a forked child must never import a module for the first time
# (see Recorder.prepare_for_fork).
if os.name == "nt":  # pragma: no cover - Windows
    import msvcrt
else:
    import fcntl

__all__ = [
    "MAX_STATE_BYTES",
    "LockTimeoutError",
    "exclusive",
    "locked",
    "make_private_dir",
    "move_aside",
    "read_json",
    "write_atomic",
    "write_json",
]

#: State files are tiny; anything larger is not ours and is treated as corrupt.
MAX_STATE_BYTES = 1024 * 1024


def make_private_dir(path: Path) -> None:
    """Create ``path`` and its parents, readable by the user only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new content, never a mix.

    The bytes go to a temporary file in the same folder, are flushed to disk, and replace ``path`` in one
    rename. A crash at any point leaves either the old file or the new one (and at worst a stray temporary).
    """
    make_private_dir(path.parent)
    # A name of our own rather than tempfile's: importing tempfile (random, shutil...) costs a short-lived tool
    # more than the whole write. O_EXCL makes sure the file is new, and ours.
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def write_json(path: Path, document: object, *, sort_keys: bool = True) -> None:
    """Atomically write ``document`` as indented JSON (keep ``sort_keys`` off where order means something)."""
    write_atomic(path, (json.dumps(document, indent=2, sort_keys=sort_keys) + "\n").encode("utf-8"))


def read_json(path: Path, *, repair: bool = False) -> dict[str, object] | None:
    """Read a JSON object; ``None`` if the file is absent, unreadable, too large, or not a JSON object.

    With ``repair``, a damaged file is moved aside (kept for inspection as ``<name>.corrupt``) so that it is
    not read again; without it (the default, used before consent) reading never changes anything on disk.
    """
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_STATE_BYTES + 1)
    except OSError:
        return None
    document: object = None
    if len(raw) <= MAX_STATE_BYTES:
        try:
            document = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            document = None
    if not isinstance(document, dict):
        if repair:
            move_aside(path)
        return None
    return document


def move_aside(path: Path) -> None:
    """Rename a damaged file to ``<name>.corrupt`` (replacing an older one); ignore failures."""
    with contextlib.suppress(OSError):
        path.replace(path.with_name(path.name + ".corrupt"))


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` if nobody else does; yields whether it is held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as file:
        held = _lock(file)
        try:
            yield held
        finally:
            if held:
                _unlock(file)


class LockTimeoutError(OSError):
    """A lock was held by someone else for longer than the caller would wait."""


@contextlib.contextmanager
def locked(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive lock on ``path``, waiting at most ``timeout`` seconds; raises :class:`LockTimeoutError`.

    For short read-modify-write sections shared by processes (and threads: each holder opens the file anew).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    pause = 0.001
    with path.open("a+b") as file:
        while not _lock(file):
            if time.monotonic() >= deadline:
                raise LockTimeoutError(f"{path} is locked by another process")
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        try:
            yield
        finally:
            _unlock(file)


def _lock(file: IO[bytes]) -> bool:
    try:
        if os.name == "nt":
            msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        else:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(file: IO[bytes]) -> None:
    with contextlib.suppress(OSError):
        if os.name == "nt":
            msvcrt.locking(file.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        else:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
