"""The baseline: a naive ingest server as NAP-8 proposes it, "a simple FastAPI server storing into SQLite".

What it does, per request, on the same route as Consentry (``POST /v1/reports/{level}``):

- FastAPI parses the JSON body and validates it against pydantic models of the whole report (wire format v1:
  every field, type, pattern, enumeration and range of the schema; unknown fields refused), as a FastAPI
  service would;
- checks that the level in the path is the report's;
- inserts the validated report, as JSON, into one SQLite table and commits: one durable transaction per
  request (WAL journal, ``synchronous=FULL``, the same durability as Consentry's), so a 200 means the report
  is on disk. ``create_app(path, wal=False)`` keeps SQLite's default rollback journal instead, as code that
  never sets a journal mode does (each commit then flushes the journal and the database file).

It is not crippled: the endpoint is a plain ``def`` that FastAPI runs in its thread pool, so the event loop keeps
parsing and validating other requests while one waits for its commit; one connection is shared under a lock
(no busy-wait sleeps between competing writers); the statement is prepared once and cached by ``sqlite3``.
It does less than Consentry: no manifest check, no rate limits, no idempotency, no country lookup, no
per-counter rows (one JSON blob per report, which aggregation would then have to parse).

Run by ``benchmarks/server.py`` (``serve_bench.py naive``); ``create_app(path)`` builds the application.
"""

from __future__ import annotations

import datetime
import sqlite3
import threading
import time
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["ReportModel", "create_app"]

MAX_COUNT = 1_000_000_000

AppName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$", max_length=64)]
LevelName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$", max_length=32)]
EventName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$", max_length=128)]
PackageName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$", max_length=100)
]
Version = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}$", max_length=64)]
ParamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", max_length=64)]
ParamValue = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:/+-]{1,64}$", max_length=64)]
ExceptionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$", max_length=100)]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Counts = Annotated[dict[datetime.date, Annotated[dict[EventName, Count], Field(max_length=5000)]], Field(max_length=31)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SystemModel(_Strict):
    """Binned system fields."""

    os: Literal["linux", "macos", "windows", "freebsd", "other"] | None = None
    os_version: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,31}$")] | None = None
    arch: Literal["x86_64", "arm64", "x86", "arm", "ppc64le", "s390x", "riscv64", "other"] | None = None
    python: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,2}\.[0-9]{1,3}$")] | None = None
    python_impl: Literal["cpython", "pypy", "graalpy", "other"] | None = None
    cpus: Literal["1", "2", "3-4", "5-8", "9-16", "17-32", "33-64", "65+"] | None = None
    memory: Literal["<2GB", "2-4GB", "4-8GB", "8-16GB", "16-32GB", "32-64GB", "64-128GB", "128GB+"] | None = None
    gpu: Literal["nvidia", "amd", "intel", "apple", "other", "none"] | None = None
    screens: Literal["0", "1", "2", "3+"] | None = None
    screen_size: Literal["<1280", "1280-1919", "1920-2559", "2560-3839", "3840+"] | None = None
    screen_scale: Literal["1", "1.25", "1.5", "2", "3+"] | None = None
    installer: Literal["pip", "conda", "uv", "pipx", "system", "bundle", "other"] | None = None
    interface: Literal["gui", "terminal", "jupyter", "script", "other"] | None = None


class ActivityModel(_Strict):
    """Runs and active minutes of one day."""

    runs: Annotated[int, Field(ge=0, le=MAX_COUNT)]
    active_minutes: Annotated[int, Field(ge=0, le=100_000, multiple_of=10)]


class PluginModel(_Strict):
    """An installed plugin."""

    name: PackageName
    version: Version
    counts: Counts = {}


class CommandModel(_Strict):
    """Identical runs of a command on one day."""

    day: datetime.date
    name: EventName
    params: Annotated[dict[ParamName, ParamValue | bool], Field(max_length=64)] = {}
    duration: Literal["<1s", "1-10s", "10-60s", "1-10min", "10-60min", "1h+"]
    exit_code: Annotated[int, Field(ge=0, le=255)]
    exception: ExceptionName | None = None
    count: Count


class DataModel(_Strict):
    """A data category seen on one day."""

    day: datetime.date
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    class_: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")] = Field(alias="class")
    dtype: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_<>|=\[\]]{1,32}$")]
    ndim: Annotated[int, Field(ge=0, le=64)]
    size: Literal["SMALL", "MEDIUM", "LARGE", "VERY_LARGE"]
    count: Count


class ReportModel(_Strict):
    """A report, wire format v1."""

    schema_: Literal[1] = Field(alias="schema")
    app: AppName
    app_version: Version
    level: LevelName
    consent_version: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
    reporter: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    first_report: bool
    days: Annotated[list[datetime.date], Field(min_length=1, max_length=31)]
    system: SystemModel = SystemModel()
    dependencies: Annotated[dict[PackageName, Version], Field(max_length=64)] = {}
    counts: Counts = {}
    activity: Annotated[dict[datetime.date, ActivityModel], Field(max_length=31)] = {}
    exceptions: Counts = {}
    plugins: Annotated[list[PluginModel], Field(max_length=1000)] = []
    commands: Annotated[list[CommandModel], Field(max_length=10_000)] = []
    data: Annotated[list[DataModel], Field(max_length=10_000)] = []


def create_app(path: str | Path, *, wal: bool = True) -> FastAPI:
    """The naive server, storing into the SQLite file ``path`` (``wal=False``: SQLite's default rollback journal)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute(f"PRAGMA journal_mode = {'WAL' if wal else 'DELETE'}")
    db.execute("PRAGMA synchronous = FULL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS reports (id INTEGER PRIMARY KEY, received REAL NOT NULL, app TEXT NOT NULL, "
        "level TEXT NOT NULL, reporter TEXT NOT NULL, report TEXT NOT NULL)"
    )
    lock = threading.Lock()
    app = FastAPI(title="naive NAP-8 ingest")

    @app.post("/v1/reports/{level}")
    def ingest(level: str, report: ReportModel) -> dict[str, str]:
        if report.level != level:
            raise HTTPException(400, "the report's level is not the endpoint's")
        document = report.model_dump_json(by_alias=True)
        with lock:  # one commit per request: the transaction ends, durably, before the answer
            db.execute("BEGIN")
            db.execute(
                "INSERT INTO reports (received, app, level, reporter, report) VALUES (?, ?, ?, ?, ?)",
                (time.time(), report.app, report.level, report.reporter, document),
            )
            db.execute("COMMIT")
        return {"status": "stored"}

    return app
