"""Fixtures of the client tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentry._consent.switches import CI_VARIABLES


@pytest.fixture
def cli_home(home: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process environment of a user's shell with a private Consentry home and no switch set."""
    monkeypatch.setenv("CONSENTRY_HOME", str(home))
    monkeypatch.setenv("CONSENTRY_POLICY_FILE", environ["CONSENTRY_POLICY_FILE"])
    for name in (*CI_VARIABLES, "CONSENTRY_DISABLE", "DO_NOT_TRACK"):
        monkeypatch.delenv(name, raising=False)
    for app in ("NAPARI_LIKE", "STRIPEPY_LIKE", "SLICER_LIKE", "AGREED_APP"):
        monkeypatch.delenv(f"{app}_TELEMETRY", raising=False)
        monkeypatch.delenv(f"{app}_NO_TELEMETRY", raising=False)
    return home
