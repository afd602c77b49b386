"""Fill a Consentry SQLite database with millions of counter rows, fast, exactly as the real store would.

Storing ten million counter rows through ``store_batch`` takes long (each report is encoded, hashed and written
row by row). Instead:

1. a few hundred template reports (``ReportFactory("rich")``) are stored through the real
   ``SQLiteStorage.store_batch``: the names are interned, and the facts and counters written, by the server's code
   (``consentry_server.storage.rows.counter_rows`` and ``fact_rows``);
2. a population of installs is simulated over ``days`` days (installs join over time, are active on about half
   of the days, have one reporter id per ISO week, and send ``first_report`` on their first day); each of their
   reports is a copy of one template for another reporter and day: its ``reports`` row is inserted with
   ``executemany``, and its facts and counters are copied from the template's rows inside SQLite
   (``INSERT ... SELECT``), in one large transaction;
3. every day is marked for aggregation, as ingest marks it.

The rows are exactly those ``store_batch`` writes for the report of the same template, reporter and day, since a
report's facts and counters depend on neither its reporter nor its day: :func:`verify` checks that on a small
database against one filled through ``store_batch`` alone. Only the ``digest`` column (the SHA-256 of the report,
used to recognise duplicates) is a random stand-in of the same size, and ``received`` is the time of the load.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import random
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from consentry.wire import Report
from consentry_server.storage import SQLiteStorage
from consentry_server.storage.base import Arrival, epoch_day, from_epoch_day
from reportgen import ReportFactory, register_examples

__all__ = ["Planned", "fill", "verify"]

COUNTRIES = ("DE", "US", "FR", "GB", "JP", "BR", "IN", "CN", None)
_BATCH = 500


@dataclass(frozen=True)
class Planned:
    """One report of the simulated population: a copy of template ``template`` for ``reporter`` and ``day``."""

    template: int
    reporter: str
    day: datetime.date
    first_report: bool
    country: str | None


def _template_reporter(template: int) -> str:
    return f"{template:032x}"


def _templates(factory: ReportFactory, count: int, day: datetime.date) -> list[Report]:
    return [factory.report(seed, _template_reporter(seed), day) for seed in range(count)]


def _plan(rows_of: list[int], target_rows: int, days: list[datetime.date], seed: int) -> Iterator[Planned]:
    """Reports of a simulated population until their counter rows (with the templates') reach ``target_rows``."""
    rng = random.Random(seed)
    total = sum(rows_of)
    mean = total / len(rows_of)
    installs: list[tuple[int, int]] = []  # (template, first day index)
    expected = float(total)
    while expected < target_rows:
        start = int(len(days) * rng.random() ** 0.7 * 0.9)  # more installs join as time goes on
        installs.append((rng.randrange(len(rows_of)), start))
        expected += 0.5 * (len(days) - start) * mean
    used: set[tuple[int, int]] = set()
    planned = []
    for index in range(len(days)):
        for number, (_, start) in enumerate(installs):
            if index >= start and rng.random() < 0.5:
                used.add((number, index))
                planned.append((number, index))
    total += sum(rows_of[installs[number][0]] for number, _ in planned)
    misses = 0
    while total < target_rows:  # top up with reports of inactive days until the target is reached
        number, index = rng.randrange(len(installs)), rng.randrange(len(days))
        if index < installs[number][1] or (number, index) in used:
            misses += 1
            if misses > 1000:  # every day of every install is taken: one more install
                installs.append((rng.randrange(len(rows_of)), 0))
                misses = 0
            continue
        used.add((number, index))
        planned.append((number, index))
        total += rows_of[installs[number][0]]
    planned.sort(key=lambda item: (item[1], item[0]))  # reports arrive day by day
    first_day: dict[int, int] = {}
    for number, index in planned:
        first_day.setdefault(number, index)
    for number, index in planned:
        year, week, _ = days[index].isocalendar()
        reporter = hashlib.blake2b(f"{seed}/{number}/{year}-{week}".encode(), digest_size=16).hexdigest()
        template = installs[number][0]
        yield Planned(template, reporter, days[index], first_day[number] == index, COUNTRIES[number % len(COUNTRIES)])


def fill(
    path: Path,
    target_rows: int,
    *,
    days: int = 56,
    templates: int = 400,
    seed: int = 1,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Planned]:
    """Create the database ``path`` with at least ``target_rows`` counter rows; return the planned reports."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    day_list = [today - datetime.timedelta(days=offset) for offset in range(days, 0, -1)]
    factory = ReportFactory("rich")
    storage = SQLiteStorage(path)
    storage.migrate()
    register_examples(storage)
    received = datetime.datetime.now(datetime.timezone.utc)
    reports = _templates(factory, templates, day_list[-1])
    for start in range(0, len(reports), _BATCH):
        batch = reports[start : start + _BATCH]
        arrivals = [Arrival(report, received, COUNTRIES[i % len(COUNTRIES)]) for i, report in enumerate(batch, start)]
        for outcome in storage.store_batch(arrivals):
            if isinstance(outcome, Exception):
                raise outcome
    storage.close()
    progress(f"{templates} template reports stored through store_batch")

    db = sqlite3.connect(path, isolation_level=None)
    try:
        ids = {bytes(reporter).hex(): number for number, reporter in db.execute("SELECT id, reporter FROM reports")}
        template_ids = [ids[_template_reporter(seed)] for seed in range(templates)]
        per_report = dict(db.execute("SELECT report_id, COUNT(*) FROM counters GROUP BY report_id").fetchall())
        plan = list(_plan([per_report.get(number, 0) for number in template_ids], target_rows, day_list, seed))
        progress(f"{len(plan):,} reports planned; inserting")
        _copy(db, plan, template_ids, received, seed)
    finally:
        db.close()
    return plan


def _copy(
    db: sqlite3.Connection, plan: list[Planned], template_ids: list[int], received: datetime.datetime, seed: int
) -> None:
    """Insert the planned reports, their facts and counters copied from their templates', in one transaction."""
    columns = {
        number: (app, level, version)
        for number, app, level, version in db.execute("SELECT id, app_id, level_id, app_version_id FROM reports")
    }
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")
    db.execute("PRAGMA temp_store = MEMORY")
    db.execute("BEGIN")
    db.execute("CREATE TEMP TABLE bench_copy (report_id INTEGER PRIMARY KEY, template INTEGER NOT NULL)")
    (last,) = db.execute("SELECT MAX(id) FROM reports").fetchone()
    rng = random.Random(seed)
    when = int(received.timestamp())
    rows = []
    copies = []
    for number, item in enumerate(plan, last + 1):
        template = template_ids[item.template]
        app, level, version = columns[template]
        reporter, day, digest = bytes.fromhex(item.reporter), epoch_day(item.day), rng.randbytes(32)
        rows.append((number, app, level, reporter, day, digest, when, version, int(item.first_report), item.country))
        copies.append((number, template))
    db.executemany(
        "INSERT INTO reports (id, app_id, level_id, reporter, day, digest, received, app_version_id, "
        "first_report, country) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.executemany("INSERT INTO bench_copy VALUES (?, ?)", copies)
    db.execute(
        "INSERT INTO facts SELECT b.report_id, f.key_id, f.value_id FROM bench_copy b "
        "JOIN facts f ON f.report_id = b.template ORDER BY b.report_id, f.key_id"
    )
    db.execute(
        "INSERT INTO counters SELECT b.report_id, c.kind, c.name_id, c.n FROM bench_copy b "
        "JOIN counters c ON c.report_id = b.template ORDER BY b.report_id, c.kind, c.name_id"
    )
    db.execute("INSERT OR REPLACE INTO dirty_days (day) SELECT DISTINCT day FROM reports ORDER BY day")
    db.execute("DROP TABLE bench_copy")
    db.execute("COMMIT")
    db.execute("PRAGMA journal_mode = WAL")


def verify(folder: Path) -> int:
    """Check, on a small database, that :func:`fill` writes exactly what ``store_batch`` writes; return its rows."""
    fast, slow = folder / "verify-fill.sqlite3", folder / "verify-store.sqlite3"
    templates, days = 30, 14
    plan = fill(fast, 5_000, days=days, templates=templates, seed=7)
    factory = ReportFactory("rich")
    today = datetime.datetime.now(datetime.timezone.utc).date()
    template_day = today - datetime.timedelta(days=1)
    storage = SQLiteStorage(slow)
    storage.migrate()
    register_examples(storage)
    received = datetime.datetime.now(datetime.timezone.utc)
    arrivals = [
        Arrival(report, received, COUNTRIES[i % len(COUNTRIES)])
        for i, report in enumerate(_templates(factory, templates, template_day))
    ]
    for item in plan:
        report = factory.report(item.template, item.reporter, item.day)
        arrivals.append(Arrival(dataclasses.replace(report, first_report=item.first_report), received, item.country))
    for start in range(0, len(arrivals), _BATCH):
        for outcome in storage.store_batch(arrivals[start : start + _BATCH]):
            if isinstance(outcome, Exception):
                raise outcome
    expected = _contents(storage)
    storage.close()
    storage = SQLiteStorage(fast)
    actual = _contents(storage)
    counters = storage.statistics()["counters"]
    storage.close()
    if actual != expected:
        raise AssertionError("the bulk-loaded rows differ from those store_batch writes")
    return counters


def _contents(storage: SQLiteStorage) -> list[tuple[object, ...]]:
    rows = []
    for app in storage.apps():
        for row in storage.export(app):
            counters = sorted((c["kind"], c["name"], c["n"]) for c in row["counters"])  # type: ignore[attr-defined]
            facts = sorted(row["facts"].items())  # type: ignore[attr-defined]
            key = (row["app"], row["level"], row["reporter"], row["day"], row["app_version"], row["first_report"])
            rows.append((*key, row["country"], tuple(facts), tuple(counters)))
    return sorted(rows, key=repr)


def days_of(path: Path) -> list[datetime.date]:
    """The days that have reports in the database ``path``."""
    db = sqlite3.connect(path)
    try:
        return [from_epoch_day(day) for (day,) in db.execute("SELECT DISTINCT day FROM reports ORDER BY day")]
    finally:
        db.close()
