"""A real, throwaway PostgreSQL server, from the distribution's binaries, for the tests and the benchmarks.

``initdb`` into a temporary directory, ``pg_ctl start`` on a free port of 127.0.0.1 with its socket in that
directory and ``fsync`` and ``synchronous_commit`` on (a commit is durable, as in production), and at the end
``pg_ctl stop`` and the directory removed. PostgreSQL refuses to run as root, so as root both run as the
``postgres`` user. The fixtures are in :mod:`support.postgres`; ``benchmarks/pgcluster.py`` uses this too.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psycopg

__all__ = ["BINARIES", "PostgresServer", "find_bindir"]

BINARIES = "/usr/lib/postgresql/*/bin/initdb"
_START_ATTEMPTS = 3


def find_bindir() -> Path | None:
    """The ``bin`` directory of the newest PostgreSQL installed from the distribution's packages, if any."""
    found = [Path(initdb).parent for initdb in Path("/").glob(BINARIES.lstrip("/"))]

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))

    return max(found, key=version, default=None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, run by ``pg_ctl``."""

    def __init__(self, bindir: Path, settings: Sequence[str] = ()) -> None:
        self.bindir = bindir
        self.settings = tuple(settings)
        self.directory = Path(tempfile.mkdtemp(prefix="consentry-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.port = 0
        self._options = ""
        self._as_owner: list[str] = []
        self._databases = itertools.count(1)
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
        """``initdb`` and start the server on a free port (another one if that port was taken meanwhile), with a
        database ``consentry``; return that database's URL."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C")
        for attempt in range(_START_ATTEMPTS):
            self.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.directory} "
                "-c fsync=on -c synchronous_commit=on -c max_connections=200"
                + "".join(f" -c {setting}" for setting in self.settings)
            )
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
                self._options = options
                break
            except RuntimeError:
                if attempt == _START_ATTEMPTS - 1:
                    raise
        return self.create_database("consentry")

    def halt(self) -> None:
        """Stop the server as an outage would (it closes its clients' connections), keeping its data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the halted server again, on the same port, with the same data."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", self._options, "start")

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str = "consentry") -> str:
        """The URL of ``database`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, statement: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(statement)  # type: ignore[arg-type] # names generated here, never input

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (named ``test_<n>`` unless ``name`` is given); return its URL."""
        name = name or f"test_{next(self._databases)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still connected."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
