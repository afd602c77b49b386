"""A real, throwaway PostgreSQL server for the tests, and a fresh database for each test that asks for one.

The server (:class:`support.pgserver.PostgresServer`) is started once per test session from the distribution's
binaries (``/usr/lib/postgresql/<version>``; ``scripts/test.sh`` installs them when they are missing).

Fixtures (registered for every test through ``pytest_plugins`` in ``tests/conftest.py``):

- ``postgres_server``: the running :class:`PostgresServer` (session);
- ``postgres_url``: the URL of the database ``consentry`` created on it (session);
- ``fresh_postgres_url``: the URL of a new, empty database, dropped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.pgserver import BINARIES, PostgresServer, find_bindir

__all__ = ["PostgresServer", "find_bindir", "fresh_postgres_url", "postgres_server", "postgres_url"]

MISSING = (
    "PostgreSQL server binaries not found ({pattern}): the storage tests need a real PostgreSQL server. "
    "Run the suite with scripts/test.sh, which installs them, or install them yourself (apt-get install postgresql)."
)
#: How long a blocked transaction waits before PostgreSQL looks for a deadlock (1 s by default): the tests that
#: provoke deadlocks on purpose would spend most of their time waiting.
SETTINGS = ("deadlock_timeout=50ms",)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session; fails (never skips) when PostgreSQL is not installed."""
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(MISSING.format(pattern=BINARIES), pytrace=False)
    server = PostgresServer(bindir, SETTINGS)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of the session's database ``consentry``."""
    return postgres_server.url("consentry")


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database of its own, dropped after the test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url.rsplit("/", 1)[1])
