"""Shared fixtures.

Every test runs under ``_no_swallowed_errors``: the client swallows its internal errors so the host never sees
them, and this fixture makes such an error fail the test that caused it. A test that provokes internal
errors on purpose takes the ``swallowed_errors`` fixture and asserts on what it returns.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest

from consentry import Manifest, load_manifest
from consentry._guard import clear_internal_errors, internal_errors
from consentry.testing import FixedClock
from support.paths import NAPARI, SLICER, STRIPEPY

# A real PostgreSQL server for the storage tests: postgres_server, postgres_url, fresh_postgres_url.
pytest_plugins = ["support.postgres"]

#: Set by tests/test_installed_wheels.py to the folder its wheels were installed into: the packages must come from
#: there, never from the source tree.
INSTALLED = "CONSENTRY_TESTS_INSTALLED"


def pytest_sessionstart() -> None:
    """Refuse to run "against the wheels" if the source tree's packages were imported instead."""
    import os

    installed = os.environ.get(INSTALLED)
    if installed:
        import consentry
        import consentry_examples
        import consentry_server

        for package in (consentry, consentry_server, consentry_examples):
            where = Path(package.__file__ or "").resolve()
            if not where.is_relative_to(Path(installed).resolve()):
                raise pytest.UsageError(f"{package.__name__} was imported from {where}, not from {installed}")


class SwallowedErrors:
    """Collects the internal errors the client swallowed during a test that provokes them on purpose."""

    def take(self) -> list[BaseException]:
        errors = internal_errors()
        clear_internal_errors()
        return errors


@pytest.fixture(autouse=True)
def _no_swallowed_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    clear_internal_errors()
    yield
    errors = internal_errors()
    clear_internal_errors()
    if errors and "swallowed_errors" not in request.fixturenames:
        pytest.fail(f"Consentry swallowed internal errors during the test: {errors!r}")


@pytest.fixture
def swallowed_errors() -> SwallowedErrors:
    return SwallowedErrors()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty Consentry home."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """A clean environment for the client: no CI variables, no kill switches, no system policy file."""
    return {"CONSENTRY_POLICY_FILE": str(tmp_path / "no-policy.json")}


@pytest.fixture
def clock() -> FixedClock:
    """Noon UTC on a Wednesday."""
    return FixedClock(datetime.datetime(2026, 11, 18, 12, 0, tzinfo=datetime.timezone.utc))


@pytest.fixture
def napari() -> Manifest:
    return load_manifest(NAPARI)


@pytest.fixture
def stripepy() -> Manifest:
    return load_manifest(STRIPEPY)


@pytest.fixture
def slicer() -> Manifest:
    return load_manifest(SLICER)
