"""A throwaway PostgreSQL cluster for the benchmarks, from the distribution's binaries, on 127.0.0.1.

``initdb`` into a temporary directory, ``pg_ctl start`` on a free port with ``fsync`` and ``synchronous_commit``
on (a commit is durable, as in production), and at the end ``pg_ctl stop`` and the directory removed.
PostgreSQL refuses to run as root, so as root both run as the ``postgres`` user. ``unavailable()`` says why a
cluster cannot be had here, or returns ``None``.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["Cluster", "find_bindir", "unavailable"]


def find_bindir() -> Path | None:
    """The ``bin`` folder of the newest PostgreSQL installed from the distribution's packages, if any."""
    found = [Path(initdb).parent for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb")]

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))

    return max(found, key=version, default=None)


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """One PostgreSQL cluster in a temporary directory."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.directory = Path(tempfile.mkdtemp(prefix="consentry-bench-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.port = 0
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as_owner = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [*self._as_owner, str(self.bindir / command[0]), *command[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr.strip()}\n{log}")

    def start(self) -> str:
        """Create and start the cluster and a database ``consentry``; return that database's URL."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C")
        self.port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.directory} "
            "-c fsync=on -c synchronous_commit=on -c max_connections=200 -c shared_buffers=256MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
        self._run(
            "psql", "-h", str(self.directory), "-p", str(self.port), "-U", "postgres", "-c", "CREATE DATABASE consentry"
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/consentry"

    def stop(self) -> None:
        """Stop the cluster and remove its directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
