"""Fixtures of the server tests: settings on ``tmp_path``, a migrated SQLite storage holding the example
manifests, an in-process client of the ASGI application, a report factory and a dump of the raw tables.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx2
import pytest
from starlette.testclient import TestClient

from consentry.manifest import Manifest, PluginManifest, load_plugin_manifest
from consentry.wire import Report, encode
from consentry_server.app import create_app
from consentry_server.config import Settings
from consentry_server.storage import SQLiteStorage, open_storage

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "consentry_examples"
NAPARI_PLUGINS = sorted((EXAMPLES / "napari_like" / "plugins").glob("*.toml"))
SLICER_EXTENSIONS = sorted((EXAMPLES / "slicer_like" / "extensions").glob("*.toml"))
ADMIN_TOKEN = "server-tests-admin-token"  # noqa: S105 - a throwaway token for throwaway servers
RAW_TABLES = ("reports", "counters", "facts")

ReportFactory = Callable[..., Report]
Dump = Callable[[], dict[str, list[tuple[object, ...]]]]


def utc_today() -> datetime.date:
    """The server's idea of today (ingest uses the UTC date)."""
    return datetime.datetime.now(datetime.timezone.utc).date()


def reporter_id(number: int) -> str:
    """A valid reporter id, distinct for each ``number``."""
    return f"{number:032x}"


def dump_tables(path: Path, tables: tuple[str, ...] = RAW_TABLES) -> dict[str, list[tuple[object, ...]]]:
    """Every row of ``tables`` in the SQLite file at ``path``, sorted, through a connection of its own."""
    db = sqlite3.connect(path)
    try:
        return {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall()) for table in tables}  # noqa: S608
    finally:
        db.close()


@pytest.fixture
def today() -> datetime.date:
    return utc_today()


@pytest.fixture
def napari_plugins(napari: Manifest) -> dict[str, PluginManifest]:
    return {plugin.name: plugin for plugin in (load_plugin_manifest(path, napari) for path in NAPARI_PLUGINS)}


@pytest.fixture
def slicer_extensions(slicer: Manifest) -> dict[str, PluginManifest]:
    return {plugin.name: plugin for plugin in (load_plugin_manifest(path, slicer) for path in SLICER_EXTENSIONS)}


@pytest.fixture
def manifests(napari: Manifest, stripepy: Manifest, slicer: Manifest) -> dict[str, Manifest]:
    return {manifest.name: manifest for manifest in (napari, stripepy, slicer)}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with the databases in ``tmp_path`` and an admin token."""
    return Settings(
        database=f"sqlite:///{tmp_path / 'data' / 'consentry.sqlite3'}",
        public_database=str(tmp_path / "data" / "public.sqlite3"),
        admin_token=ADMIN_TOKEN,
        reporter_threshold=1,
    )


@pytest.fixture
def empty_storage(settings: Settings) -> Iterator[SQLiteStorage]:
    """A migrated storage with nothing registered."""
    storage = open_storage(settings)
    try:
        yield storage
    finally:
        storage.close()


@pytest.fixture
def storage(
    empty_storage: SQLiteStorage,
    manifests: dict[str, Manifest],
    napari_plugins: dict[str, PluginManifest],
    slicer_extensions: dict[str, PluginManifest],
) -> SQLiteStorage:
    """A migrated storage with the example applications and their plugins registered."""
    for manifest in [*manifests.values(), *napari_plugins.values(), *slicer_extensions.values()]:
        assert empty_storage.register_manifest(manifest)
    return empty_storage


@pytest.fixture
def app_client() -> Callable[[Settings, SQLiteStorage], TestClient]:
    """``with app_client(settings, storage) as client:`` the application, called in-process."""
    return lambda settings, storage: TestClient(create_app(settings, storage))


@pytest.fixture
def client(settings: Settings, storage: SQLiteStorage) -> Iterator[TestClient]:
    """The application over ``storage``, called in-process, with its lifespan running."""
    with TestClient(create_app(settings, storage)) as test_client:
        yield test_client


@pytest.fixture
def make_report(manifests: dict[str, Manifest], today: datetime.date) -> ReportFactory:
    """``make_report(level="basic", app="napari-like", reporter=0, days=(yesterday,), **fields)``: a valid report.

    ``reporter`` is a number (see :func:`reporter_id`) or a ready id; ``fields`` replace any other field.
    """

    def make(
        level: str = "basic",
        *,
        app: str = "napari-like",
        reporter: int | str = 0,
        days: tuple[datetime.date, ...] | None = None,
        **fields: object,
    ) -> Report:
        manifest = manifests[app]
        report = Report(
            app=app,
            app_version="1.0.0",
            level=level,
            consent_version=manifest.consent_version,
            reporter=reporter if isinstance(reporter, str) else reporter_id(reporter),
            first_report=False,
            days=days or (today - datetime.timedelta(days=1),),
        )
        return replace(report, **fields)  # type: ignore[arg-type]

    return make


@pytest.fixture
def post(client: TestClient) -> Callable[..., httpx2.Response]:
    """``post(report_or_bytes, level=None, headers=None)``: send a report to ``/v1/reports/<level>``."""

    def send(body: Report | bytes, level: str | None = None, headers: dict[str, str] | None = None) -> httpx2.Response:
        if isinstance(body, Report):
            level = level or body.level
            body = encode(body)
        return client.post(
            f"/v1/reports/{level}", content=body, headers={"content-type": "application/json", **(headers or {})}
        )

    return send


@pytest.fixture
def dump(storage: SQLiteStorage) -> Dump:
    """A snapshot of the raw tables (reports, counters, facts) of ``storage``."""
    return lambda: dump_tables(storage.path)
