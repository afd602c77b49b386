"""The public store: published aggregates, in a SQLite file of their own.

The public side of the server reads only this file, so it can run in a process (or on a host) that has no
access to raw reports. Publishing writes a complete new file and renames it over the old one: readers see the
previous publication or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from consentry_server.storage.base import AggregateTables, CounterRow, InstallRow, ValueRow

__all__ = [
    "LEDGER_COLUMNS",
    "PUBLIC_FORMAT",
    "PUBLIC_TABLES",
    "AppInfo",
    "LedgerRow",
    "PublicStore",
    "Publication",
    "PublicationCache",
    "safe_name",
]

PUBLIC_FORMAT = 1
_T = TypeVar("_T")
#: The published tables and their columns after ``app`` and ``period``, in order.
PUBLIC_TABLES = {
    "installs": ("start", "level", "reporters", "new_installs"),
    "counters": ("start", "kind", "scope", "name", "total", "reporters"),
    "values": ("start", "field", "value", "reporters"),
}
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE apps (name TEXT PRIMARY KEY, title TEXT NOT NULL, homepage TEXT, manifest TEXT NOT NULL);
CREATE TABLE installs (
    app TEXT NOT NULL, period TEXT NOT NULL, start TEXT NOT NULL, level TEXT NOT NULL,
    reporters INTEGER NOT NULL, new_installs INTEGER,
    PRIMARY KEY (app, period, start, level)
);
CREATE TABLE counters (
    app TEXT NOT NULL, period TEXT NOT NULL, start TEXT NOT NULL, kind TEXT NOT NULL, scope TEXT NOT NULL,
    name TEXT NOT NULL, total INTEGER NOT NULL, reporters INTEGER NOT NULL,
    PRIMARY KEY (app, period, start, kind, scope, name)
);
CREATE TABLE "values" (
    app TEXT NOT NULL, period TEXT NOT NULL, start TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
    reporters INTEGER NOT NULL,
    PRIMARY KEY (app, period, start, field, value)
);
CREATE TABLE ledger (
    publication INTEGER NOT NULL, released_at TEXT NOT NULL, app TEXT NOT NULL, dataset TEXT NOT NULL,
    k INTEGER NOT NULL, mechanism TEXT NOT NULL, epsilon_per_number REAL, numbers INTEGER NOT NULL, epsilon REAL,
    delta REAL, reporter_cap INTEGER NOT NULL, total_cap_per_day INTEGER, cumulative_epsilon REAL,
    PRIMARY KEY (publication, app, dataset)
);
"""


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def safe_name(name: str) -> bool:
    """Whether ``name`` (of an application or plugin) can be a file name as it is, in any folder.

    Manifest and wire names are stricter than this already; writers of files check it all the same.
    """
    return _SAFE_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class AppInfo:
    """A published application: its name, title, homepage and manifest (for the transparency page)."""

    name: str
    title: str
    homepage: str | None
    manifest: dict[str, object]


@dataclass(frozen=True)
class LedgerRow:
    """A row of the published privacy ledger (see :mod:`consentry_server.publish.ledger`).

    A release of one table (``dataset``) of one application: when, at which ``k``, with which noise, how many
    numbers, at what privacy loss, and ``cumulative_epsilon``: the application's loss over every release so far,
    ``None`` once numbers of it were published exact (no finite bound).
    """

    publication: int
    released_at: datetime.datetime
    app: str
    dataset: str
    k: int
    mechanism: str
    epsilon_per_number: float | None
    numbers: int
    epsilon: float | None
    delta: float | None
    reporter_cap: int
    total_cap_per_day: int | None
    cumulative_epsilon: float | None


#: The published ledger's columns, after ``app``, in order.
LEDGER_COLUMNS = tuple(field.name for field in dataclasses.fields(LedgerRow) if field.name != "app")


@dataclass(frozen=True)
class Publication:
    """Everything one publication contains, after privacy protections.

    ``ledger``: the whole privacy ledger so far; ``release``: the ledger's number of the publication whose
    numbers these are (0 before any was recorded).
    """

    apps: Sequence[AppInfo]
    installs: Sequence[InstallRow]
    counters: Sequence[CounterRow]
    values: Sequence[ValueRow]
    threshold: int
    published_at: datetime.datetime
    noise: dict[str, object] | None = None
    ledger: Sequence[LedgerRow] = ()
    release: int = 0


class PublicStore:
    """Reads and (re)writes the public SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, publication: Publication) -> None:
        """Replace the published data with ``publication`` in one atomic rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".public-", suffix=".sqlite3", dir=self.path.parent)
        os.close(fd)
        try:
            db = sqlite3.connect(temporary, isolation_level=None)
            try:
                db.executescript(_SCHEMA)
                db.execute("BEGIN")
                meta = {
                    "format": str(PUBLIC_FORMAT),
                    "threshold": str(publication.threshold),
                    "published_at": publication.published_at.isoformat(),
                    "suppression": "fewer than threshold reporters, and complementary cells",
                    "noise": json.dumps(publication.noise, sort_keys=True) if publication.noise else "none",
                    "publication": str(publication.release),
                }
                db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
                db.executemany(
                    "INSERT INTO apps VALUES (?, ?, ?, ?)",
                    [(a.name, a.title, a.homepage, json.dumps(a.manifest)) for a in publication.apps],
                )
                db.executemany(
                    "INSERT INTO installs VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (r.app, r.period, r.start.isoformat(), r.level, r.reporters, r.new_installs)
                        for r in publication.installs
                    ],
                )
                db.executemany(
                    "INSERT INTO counters VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (r.app, r.period, r.start.isoformat(), r.kind, r.scope, r.name, r.total, r.reporters)
                        for r in publication.counters
                    ],
                )
                db.executemany(
                    'INSERT INTO "values" VALUES (?, ?, ?, ?, ?, ?)',
                    [(r.app, r.period, r.start.isoformat(), r.field, r.value, r.reporters) for r in publication.values],
                )
                db.executemany(
                    f"INSERT INTO ledger VALUES ({', '.join('?' * (len(LEDGER_COLUMNS) + 1))})",  # noqa: S608
                    [_ledger_values(row) for row in publication.ledger],
                )
                db.execute("COMMIT")
            finally:
                db.close()
            Path(temporary).replace(self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(temporary).unlink()
            raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        if not self.path.exists():
            yield None
            return
        db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            yield db
        finally:
            db.close()

    def meta(self) -> dict[str, str]:
        """Format, threshold, publication time, noise, ledger number; empty before the first publication."""
        with self._read() as db:
            return dict(db.execute("SELECT key, value FROM meta").fetchall()) if db else {}

    def apps(self) -> list[AppInfo]:
        """Published applications."""
        with self._read() as db:
            rows = db.execute("SELECT name, title, homepage, manifest FROM apps ORDER BY name").fetchall() if db else []
        return [AppInfo(name, title, homepage, json.loads(manifest)) for name, title, homepage, manifest in rows]

    def version(self) -> tuple[int, int, int] | None:
        """What identifies the current publication (publishing renames a new file over the old one)."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def app_names(self) -> set[str]:
        """Names of the published applications."""
        with self._read() as db:
            return {name for (name,) in db.execute("SELECT name FROM apps")} if db else set()

    def plugins(self, app: str) -> list[str]:
        """Plugins that appear in the published data of ``app`` (their installs or their events)."""
        sql = (
            "SELECT substr(field, 8) FROM \"values\" WHERE app = ? AND field LIKE 'plugin.%' "
            "UNION SELECT scope FROM counters WHERE app = ? AND kind = 'plugin_event' AND scope != '' ORDER BY 1"
        )
        with self._read() as db:
            return [name for (name,) in db.execute(sql, (app, app))] if db else []

    def table(self, table: str, app: str, period: str) -> tuple[tuple[str, ...], list[tuple[object, ...]]]:
        """The columns of a published table (see :data:`PUBLIC_TABLES`) and its rows for ``app`` and ``period``."""
        columns = PUBLIC_TABLES[table]
        keys = columns[: columns.index("reporters" if table != "counters" else "total")]
        sql = (
            f'SELECT {", ".join(columns)} FROM "{table}" WHERE app = ? AND period = ? '  # noqa: S608 - fixed names
            f"ORDER BY {', '.join(keys)}"
        )
        with self._read() as db:
            return columns, db.execute(sql, (app, period)).fetchall() if db else []

    def _select(
        self, table: str, app: str, period: str, *, where: dict[str, str | None], since: str | None, until: str | None
    ) -> list[dict[str, object]]:
        """Rows of a published table for ``app`` and ``period`` as dictionaries.

        Filtered on the non-``None`` ``where`` columns, and on ``since <= start <= until`` (ISO dates) where given.
        """
        columns = PUBLIC_TABLES[table]
        keys = columns[: columns.index("reporters" if table != "counters" else "total")]
        conditions = ["app = ?", "period = ?", *(f"{column} = ?" for column, value in where.items() if value)]
        params = [app, period, *(value for value in where.values() if value)]
        for condition, bound in (("start >= ?", since), ("start <= ?", until)):
            if bound:
                conditions.append(condition)
                params.append(bound)
        sql = (
            f'SELECT {", ".join(columns)} FROM "{table}" WHERE {" AND ".join(conditions)} '  # noqa: S608 - fixed names
            f"ORDER BY {', '.join(keys)}"
        )
        with self._read() as db:
            rows = db.execute(sql, params).fetchall() if db else []
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def installs(
        self, app: str, period: str, level: str | None = None, *, since: str | None = None, until: str | None = None
    ) -> list[dict[str, object]]:
        """Published install counts of ``app`` per ``period``."""
        return self._select("installs", app, period, where={"level": level}, since=since, until=until)

    def counters(
        self, app: str, period: str, kind: str | None = None, *, since: str | None = None, until: str | None = None
    ) -> list[dict[str, object]]:
        """Published counter totals of ``app`` per ``period``."""
        return self._select("counters", app, period, where={"kind": kind}, since=since, until=until)

    def values(
        self, app: str, period: str, field: str | None = None, *, since: str | None = None, until: str | None = None
    ) -> list[dict[str, object]]:
        """Published distributions of ``app`` per ``period``."""
        return self._select("values", app, period, where={"field": field}, since=since, until=until)

    def ledger(self, app: str) -> list[tuple[object, ...]]:
        """The privacy ledger's rows of ``app`` (columns: :data:`LEDGER_COLUMNS`), in the order of publication.

        Empty for a store written before the ledger was published.
        """
        with self._read() as db:
            if db is None or not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'ledger'").fetchone():
                return []
            sql = f"SELECT {', '.join(LEDGER_COLUMNS)} FROM ledger WHERE app = ? ORDER BY publication, dataset"  # noqa: S608
            return db.execute(sql, (app,)).fetchall()

    def published_tables(self) -> AggregateTables:
        """Every published number, as the tables publishing wrote (to publish the same numbers again)."""
        with self._read() as db:
            if db is None:
                return AggregateTables([], [], [])
            day = datetime.date.fromisoformat
            installs = [
                InstallRow(app, period, day(start), *rest)
                for app, period, start, *rest in db.execute("SELECT * FROM installs ORDER BY 1, 2, 3, 4")
            ]
            counters = [
                CounterRow(app, period, day(start), *rest)
                for app, period, start, *rest in db.execute("SELECT * FROM counters ORDER BY 1, 2, 3, 4, 5, 6")
            ]
            values = [
                ValueRow(app, period, day(start), *rest)
                for app, period, start, *rest in db.execute('SELECT * FROM "values" ORDER BY 1, 2, 3, 4, 5')
            ]
        return AggregateTables(installs, counters, values)


def _ledger_values(row: LedgerRow) -> tuple[object, ...]:
    values = dataclasses.astuple(row)
    return (*values[:1], row.released_at.astimezone(datetime.timezone.utc).isoformat(), *values[2:])


class PublicationCache(Generic[_T]):
    """What was computed from the current publication of a store, by key, forgotten when a new one appears.

    Published data changes only when it is published again, so whatever a public route renders from it can be
    kept until then. At most ``limit`` entries (keys chosen by strangers must not grow it without bound).
    """

    def __init__(self, store: PublicStore, limit: int = 1_000) -> None:
        self.store = store
        self.limit = limit
        self._lock = threading.Lock()
        self._version: tuple[int, int, int] | None = None
        self._entries: dict[str, _T] = {}

    def get(self, key: str, compute: Callable[[], _T]) -> _T:
        """The value kept for ``key`` in the current publication, computed (and kept) if there is none."""
        version = self.store.version()
        with self._lock:
            if version != self._version:
                self._version, self._entries = version, {}
            if key in self._entries:
                return self._entries[key]
        value = compute()
        with self._lock:
            if self._version == version and len(self._entries) < self.limit:
                self._entries[key] = value
        return value
