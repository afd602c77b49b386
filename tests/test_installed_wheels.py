"""Tests against the installed wheels, not only the editable source tree.

The wheels of the client, the server and the examples are built and installed into a folder of their own; then a
part of the suite runs in a fresh interpreter whose packages come from that folder (``tests/conftest.py`` refuses
to run if they come from anywhere else). A module or data file missing from a wheel fails here: the public API's
tests compare the installed modules with the source tree's, the invariant tests run the client as installed, and
the end-to-end tests start the installed ``consentry-server`` and serve its dashboard files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from support.wheels import build_wheel

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

#: Run against the wheels: the pinned public API (and every module the source tree has), the client's privacy
#: invariants, the command line, ingest through a real server, and the dashboard's files and pages.
SUITE = [
    "tests/test_public_api.py",
    "tests/client/test_invariants.py",
    "tests/client/test_testing_module.py",
    "tests/client/test_cli.py",
    "tests/server/test_ingest.py",
    "tests/server/test_http_api.py",
    "tests/e2e/test_end_to_end.py",
]


def _without_coverage(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without the coverage measurement of the outer run: the installed copies are not the source."""
    return {key: value for key, value in environ.items() if not key.startswith(("COV_CORE_", "COVERAGE_"))}


def test_the_installed_wheels_pass_the_core_of_the_suite(tmp_path: Path) -> None:
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    wheels.mkdir()
    for project in ("client", "server", "examples"):
        build_wheel(project, wheels)
    built = sorted(wheels.glob("*.whl"))
    assert [wheel.name.split("-")[0] for wheel in built] == ["consentry", "consentry_examples", "consentry_server"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            *map(str, built),
        ],
        check=True,
        timeout=300,
    )
    env = {**_without_coverage(os.environ), "PYTHONPATH": str(site), "CONSENTRY_TESTS_INSTALLED": str(site)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]


def test_the_guard_refuses_a_run_against_the_source_tree(tmp_path: Path) -> None:
    env = {**_without_coverage(os.environ), "CONSENTRY_TESTS_INSTALLED": str(tmp_path)}  # nothing installed there
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_public_api.py", "-k", "versions"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode != 0
    assert "was imported from" in done.stdout + done.stderr
