"""The distributions as users install them: built into wheels and inspected."""

from __future__ import annotations

import email.parser
import zipfile
from pathlib import Path

import pytest

import support.wheels

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def build_wheel(project: str, destination: Path) -> zipfile.ZipFile:
    return zipfile.ZipFile(support.wheels.build_wheel(project, destination))


def metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    [name] = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    return email.parser.Parser().parsestr(wheel.read(name).decode())


def entry_points(wheel: zipfile.ZipFile) -> str:
    [name] = [name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt")]
    return wheel.read(name).decode()


def test_client_wheel_declares_no_dependencies_and_ships_types_and_schema(tmp_path: Path) -> None:
    with build_wheel("client", tmp_path) as wheel:
        meta = metadata(wheel)
        names = wheel.namelist()
        scripts = entry_points(wheel)
    assert meta["Name"] == "consentry"
    # Nothing is required; the extras: `verify` adds what `consentry verify` checks signatures with, `qt` the qtpy
    # that consentry.qt (the Qt consent dialog) is written against, `otel` the OpenTelemetry SDK and exporter that
    # consentry.otel copies sent reports to a collector with.
    assert meta.get_all("Requires-Dist") == [
        "opentelemetry-exporter-otlp-proto-http>=1.27; extra == 'otel'",
        "opentelemetry-sdk>=1.27; extra == 'otel'",
        "qtpy>=2.4; extra == 'qt'",
        "cryptography>=42; extra == 'verify'",
    ]
    assert meta.get_all("Provides-Extra") == ["otel", "qt", "verify"]
    assert meta["Requires-Python"] == ">=3.10"
    assert "consentry/py.typed" in names
    assert "consentry/wire/report-v1.schema.json" in names
    assert "consentry = consentry.cli:main" in scripts
    assert not any(name.startswith(("tests/", "consentry_server/")) for name in names)


def test_server_wheel_depends_on_the_client_and_its_chosen_libraries(tmp_path: Path) -> None:
    with build_wheel("server", tmp_path) as wheel:
        meta = metadata(wheel)
        scripts = entry_points(wheel)
        names = wheel.namelist()
    requirements: dict[str, set[str]] = {}
    for requirement in meta.get_all("Requires-Dist"):
        spec, _, marker = requirement.partition(";")
        extra = marker.split("==")[1].strip().strip("'\"") if "extra" in marker else ""
        requirements.setdefault(extra, set()).add(spec.split(">")[0].split("=")[0].strip())
    # Each dependency is chosen and explained in server/pyproject.toml; a new one must be added here on purpose.
    assert requirements == {
        "": {
            "consentry",
            "starlette",
            "uvicorn",
            "uvloop",
            "httptools",
            "iptocc",
            "psycopg[binary]",
            "psycopg-pool",
            "cryptography",
            "opentelemetry-proto",
        },
        "noise": {"opendp"},
    }
    assert meta.get_all("Provides-Extra") == ["noise"]
    assert "consentry-server = consentry_server.cli:main" in scripts
    assert "consentry_server/py.typed" in names
