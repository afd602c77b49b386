"""Secret files the server makes for itself (the certificate signing key, the dfx batch key).

Each is created once, readable by its owner only, written in full before it appears under its name, and never
replaced: what was derived from it (signatures, reporter ids) must stay valid.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["create_once"]


def create_once(path: Path, content: bytes) -> bool:
    """Create ``path`` holding ``content`` with mode 0600, unless it exists; ``False`` if another was there first.

    The content is written and flushed to disk in a temporary file of the same folder, then linked to ``path``,
    which fails if ``path`` exists: two processes creating it at once cannot both win, nor leave half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
    return True
