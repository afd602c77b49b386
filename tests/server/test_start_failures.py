"""A data folder the server cannot use ends each command that opens it with one line saying what is wrong and
what to do, and a non-zero exit: never a traceback. Real processes of the ``consentry-server`` console script, on
a damaged database, a folder that cannot be written (immutable, so that root is refused too) and a file where a
folder of the path should be."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from consentry_server.storage import SQLiteStorage
from support.processes import script
from support.readonly import read_only

#: The commands that open the data folder, with what each needs besides --db.
COMMANDS = {
    "serve": ["serve", "--port", "0"],
    "apps list": ["apps", "list"],
    "aggregate": ["aggregate"],
    "publish": ["publish"],
    "retention": ["retention"],
    "export": ["export", "napari-like"],
    "certify": ["certify", "--show-key"],  # writes the signing key into the data folder; never reads the database
}


def run(command: list[str], database: Path) -> subprocess.CompletedProcess[str]:
    argv = [script("consentry-server"), *command, "--db", f"sqlite:///{database}"]
    environ = {key: value for key, value in os.environ.items() if key != "CONSENTRY_ADMIN_TOKEN"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=environ)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one line the failed command wrote, after checking that it failed and wrote nothing else."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("consentry-server: error: ")
    return line


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def existing(data: Path) -> Path:
    """A data folder holding a good database (what a server has after its first start)."""
    storage = SQLiteStorage(data / "consentry.sqlite3")
    storage.migrate()
    storage.close()
    return data / "consentry.sqlite3"


@pytest.fixture
def unwritable(existing: Path) -> Iterator[Path]:
    """The good database, in a folder nothing can be written in (so neither can its -wal and -shm files)."""
    with read_only(existing.parent):
        yield existing


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in COMMANDS if name != "certify"])
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.write_bytes(b"these bytes are not a SQLite database\n" * 200), id="garbage"),
        pytest.param(lambda path: os.truncate(path, 4096), id="truncated"),  # its first page alone
    ],
)
def test_a_damaged_database_is_one_line_naming_it_and_pointing_to_a_backup(existing, name, damage):
    damage(existing)

    line = one_line_error(run(COMMANDS[name], existing))

    assert str(existing) in line
    assert "is not a SQLite database, or is damaged" in line
    assert "restore it from a backup" in line


@pytest.mark.slow
@pytest.mark.parametrize("name", COMMANDS)
def test_a_data_folder_that_cannot_be_written_is_one_line_naming_it(unwritable, name):
    line = one_line_error(run(COMMANDS[name], unwritable))

    assert str(unwritable.parent) in line
    assert "make it writable for the user running consentry-server" in line


@pytest.mark.slow
@pytest.mark.parametrize("name", COMMANDS)
def test_a_file_where_the_data_folder_should_be_is_one_line_naming_it(data, name):
    data.parent.mkdir(exist_ok=True)
    data.write_text("a file, not a folder\n")

    line = one_line_error(run(COMMANDS[name], data / "consentry.sqlite3"))

    assert str(data) in line
    assert "folder" in line


@pytest.mark.slow
def test_a_folder_where_the_database_file_should_be_is_one_line_naming_it(data):
    (data / "consentry.sqlite3").mkdir(parents=True)

    line = one_line_error(run(COMMANDS["serve"], data / "consentry.sqlite3"))

    assert f"{data / 'consentry.sqlite3'} is a folder, not a database file" in line
