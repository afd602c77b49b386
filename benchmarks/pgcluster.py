"""A throwaway PostgreSQL cluster for the benchmarks, on 127.0.0.1: the test suite's (``tests/support/pgserver.py``).

``fsync`` and ``synchronous_commit`` are on (a commit is durable, as in production), with :data:`SETTINGS`
on top; ``PostgresServer(bindir, SETTINGS).start()`` starts one and returns its URL, ``stop()`` removes it.
``unavailable()`` says why a cluster cannot be had here, or returns ``None``.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.pgserver import PostgresServer, find_bindir

__all__ = ["SETTINGS", "PostgresServer", "find_bindir", "unavailable"]

#: More shared memory than PostgreSQL's default, as a server that ingests for real would have.
SETTINGS = ("shared_buffers=256MB",)


def unavailable() -> str | None:
    """Why the PostgreSQL figures cannot be measured here, or ``None`` when they can."""
    for module, what in (
        ("psycopg", "the psycopg package"),
        ("psycopg_pool", "the psycopg_pool package"),
        ("consentry_server.storage.postgres", "the PostgreSQL backend (consentry_server.storage.postgres)"),
    ):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            return f"{what} is not installed"
    if find_bindir() is None:
        return "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install -y postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None
