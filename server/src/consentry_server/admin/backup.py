"""``consentry-server backup``: a consistent copy of the database, taken while the server runs.

- SQLite: SQLite's online backup API (:meth:`~consentry_server.storage.SQLiteStorage.backup`). Every report
  answered 2xx before the backup starts is in the copy, including those still only in the write-ahead log
  (``consentry.sqlite3-wal``), which copying the database file would miss. The copy is one SQLite file, checked.
- PostgreSQL: ``pg_dump --format=custom`` when it is installed (the password, if the URL has one, passed in the
  environment, never on the command line), else what to run where it is.

A backup never replaces a file: DEST is a new file, or a folder to write a time-stamped file into.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from consentry_server.config import Settings
from consentry_server.storage import SQLiteStorage

__all__ = ["Backup", "BackupError", "backup_database", "destination"]


class BackupError(Exception):
    """No backup was written; the message says why and what to do, in one line."""


@dataclass(frozen=True)
class Backup:
    """A backup written: where, its size, and how many (report, day) rows it holds (``None``: not counted)."""

    path: Path
    size: int
    reports: int | None


def destination(target: Path, suffix: str, now: datetime.datetime | None = None) -> Path:
    """The file to write: ``target`` if it does not exist, a time-stamped name inside it if it is a folder."""
    if target.is_dir():
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return target / f"consentry-{now:%Y%m%dT%H%M%SZ}{suffix}"
    if target.exists() or target.is_symlink():
        raise BackupError(f"{target} exists: a backup never replaces a file; name a new file, or a folder")
    return target


def backup_database(settings: Settings, target: Path) -> Backup:
    """Back up the database of ``settings`` to ``target`` (see the module's docstring)."""
    if settings.postgresql_url is not None:
        return _pg_dump(settings.postgresql_url, destination(target, ".dump"))
    if settings.sqlite_path is None:  # settings name either PostgreSQL or SQLite
        raise BackupError(f"cannot back up {settings.database!r}: neither SQLite nor PostgreSQL")
    return _sqlite(settings.sqlite_path, destination(target, ".sqlite3"))


def _sqlite(source: Path, target: Path) -> Backup:
    if not source.is_file():
        raise BackupError(f"there is no database at {source} to back up: check --db, or the config file's database")
    storage = SQLiteStorage(source)  # not open_storage: a backup migrates nothing (it may be the one before an upgrade)
    try:
        reports = storage.backup(target)
    finally:
        storage.close()
    return Backup(target, target.stat().st_size, reports)


def _pg_dump(url: str, target: Path) -> Backup:
    parts = urllib.parse.urlsplit(url)
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    user = f"{parts.username}@" if parts.username else ""
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    shown = urllib.parse.urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, parts.query, ""))
    program = shutil.which("pg_dump")
    if program is None:
        raise BackupError(
            "pg_dump is not installed here: install PostgreSQL's client programs (of the server's version or later), "
            f"or run where they are: pg_dump --format=custom --file={target} '{shown}' (restore with pg_restore)"
        )
    environ = dict(os.environ)
    if password is not None:
        environ["PGPASSWORD"] = password
    partial = target.with_name(f".{target.name}.partial")
    command = [program, "--format=custom", f"--file={partial}", f"--dbname={shown}"]
    result = subprocess.run(command, env=environ, capture_output=True, text=True, check=False)  # noqa: S603 - ours
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        said = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise BackupError(f"pg_dump failed: {said}")
    partial.replace(target)
    return Backup(target, target.stat().st_size, None)
