"""Folders that cannot be written, whoever runs the tests: for the tests of failures an operator or user can fix."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["read_only"]


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` and everything in it read-only for this process, whoever runs the tests (root too).

    Root ignores permissions, so the files are made immutable (``chattr +i``, ext4 and most Linux file systems);
    another user gets ordinary permissions. Skips where neither is possible.
    """
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [folder, *folder.rglob("*")]}
        for path in modes:
            path.chmod(0o500 if path.is_dir() else 0o400)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "-R", "+i", str(folder)], capture_output=True, check=False).returncode:
        pytest.skip("running as root on a file system without immutable files: no way to make a folder read-only")
    try:
        probe = folder / "probe"
        with pytest.raises(PermissionError):
            probe.write_bytes(b"")
        yield
    finally:
        subprocess.run([chattr, "-R", "-i", str(folder)], check=True)
