"""The storage interface shared by the SQLite and PostgreSQL backends, and the values that cross it.

Both backends store the same rows (see :mod:`consentry_server.storage.rows`), aggregate with the same meaning,
and are tested by the same tests. Semantics every backend keeps:

- one raw row per (application, level, reporter, day): an identical report is stored once (``duplicate``), a
  different one for the same key replaces the earlier (``replaced``);
- :meth:`Storage.store_batch` writes a batch in one transaction, each report under its own savepoint so that one
  failure does not take the others with it, and returns only once the transaction is durably committed;
- no network address is ever stored: an arrival carries at most a country code;
- raw rows and request logs expire (:meth:`Storage.apply_retention`); aggregates are kept forever;
- aggregation is incremental (only periods whose days changed) and idempotent.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from consentry.manifest import Manifest, PluginManifest
from consentry.wire import Report
from consentry_server.ingest.catalog import Catalog
from consentry_server.storage.rows import COUNTER_KINDS, FIRST_REPORT_UNKNOWN, KIND_NAMES

__all__ = [
    "CONTRIBUTION_CAP",
    "COUNTER_KINDS",
    "PERIODS",
    "AggregateTables",
    "Arrival",
    "CounterRow",
    "InstallRow",
    "LedgerEntry",
    "Progress",
    "RawRow",
    "RequestLog",
    "RetentionResult",
    "Storage",
    "StorageUnavailable",
    "StoreOutcome",
    "ValueRow",
    "counter_aggregates",
    "epoch_day",
    "export_record",
    "from_epoch_day",
    "period_start",
    "store_report",
    "unknown_new_installs",
]

#: Aggregation periods. Day and ISO week counts of distinct reporters are exact (reporter ids are stable within
#: an ISO week); a month's count of distinct reporters is the largest weekly count among its weeks, a lower bound
#: of the installs active that month, since an install has a new reporter id every week.
PERIODS = ("day", "week", "month")
#: Most one reporter adds to one counter in one day when totals are aggregated, so a runaway install cannot
#: skew a total; it is also the sensitivity of a day's total when noise is added. The one definition: the
#: aggregation SQL of both backends, the noise and the privacy ledger all read it from here.
CONTRIBUTION_CAP = 10_000
Progress = Callable[[str, int, int], None]
_EPOCH = datetime.date(1970, 1, 1).toordinal()


def epoch_day(day: datetime.date) -> int:
    """Days since 1970-01-01: how days are stored."""
    return day.toordinal() - _EPOCH


def from_epoch_day(number: int) -> datetime.date:
    """The inverse of :func:`epoch_day`."""
    return datetime.date.fromordinal(number + _EPOCH)


def period_start(period: str, day: datetime.date) -> datetime.date:
    """The first day of the ``period`` that contains ``day``: itself, its ISO week's Monday, its month's first."""
    if period == "week":
        return day - datetime.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


class StorageUnavailable(Exception):  # noqa: N818 - a state of the database, not an error of the server
    """The database cannot be opened or reached: a damaged file, a folder that cannot be written, PostgreSQL down.

    Its message says what is wrong and what to do, in one line: the command line prints it as it is, ingest
    answers 503 with ``Retry-After`` and logs it as one line. Nothing here is a fault of the server's code.
    """


@dataclass(frozen=True)
class Arrival:
    """A validated report as it arrived: when, and the country it came from (``None``: unknown or not looked up).

    ``first_report_known`` is false for a report made from what cannot tell an install's first report from its
    others (an OTLP export): it is stored with the fact :data:`~.rows.FIRST_REPORT_UNKNOWN`, and the new installs
    of the periods it falls in are unknown (:func:`unknown_new_installs`).
    """

    report: Report
    received: datetime.datetime
    country: str | None = None
    first_report_known: bool = True


@dataclass(frozen=True)
class StoreOutcome:
    """What storing a report did: ``stored`` (new), ``duplicate`` (identical, nothing changed) or ``replaced``."""

    status: Literal["stored", "duplicate", "replaced"]
    days: int


@dataclass(frozen=True)
class RequestLog:
    """One line of the request log: never an address, never a payload.

    A refused request is one line (its status and code). An accepted upload that dropped items (a seed format's
    rows, records or parameters the manifest does not declare, or that are not valid) adds one line per reason:
    status 2xx, the reason as ``code``, the application as ``app`` and how many items as ``dropped``.
    """

    time: datetime.datetime
    route: str
    status: int
    code: str
    size: int
    app: str | None = None
    dropped: int = 0


@dataclass(frozen=True)
class RetentionResult:
    """What one retention run removed."""

    raw_rows: int
    log_rows: int
    partitions: int = 0


@dataclass(frozen=True)
class InstallRow:
    """Distinct reporters (installs) of an application at a level in a period, and how many were new.

    ``new_installs`` is ``None`` where it is unknown (:func:`unknown_new_installs`), and once published if it had
    to be hidden: it is a count of reporters too.
    """

    app: str
    period: str
    start: datetime.date
    level: str
    reporters: int
    new_installs: int | None


@dataclass(frozen=True)
class CounterRow:
    """The total of a counter and how many distinct reporters contributed, in a period.

    ``scope`` is the plugin for plugin events, else ``""``; ``name`` is as described in :mod:`.rows`.
    """

    app: str
    period: str
    start: datetime.date
    kind: str
    scope: str
    name: str
    total: int
    reporters: int


@dataclass(frozen=True)
class ValueRow:
    """How many distinct reporters had ``field`` equal to ``value`` in a period.

    Fields: ``app_version``, ``country``, ``system.<field>``, ``dependency.<name>``, ``plugin.<name>``.
    """

    app: str
    period: str
    start: datetime.date
    field: str
    value: str
    reporters: int


@dataclass(frozen=True)
class AggregateTables:
    """Everything aggregation produced, before privacy protections are applied for publishing."""

    installs: Sequence[InstallRow]
    counters: Sequence[CounterRow]
    values: Sequence[ValueRow]


@dataclass(frozen=True)
class LedgerEntry:
    """One release of one published table (``dataset``) of an application: a row of the privacy ledger.

    No raw data: the parameters of the release, how many numbers it released, and (kept private, to tell a
    repeat from a new release) a digest of the rows as published and the aggregation run they came from.
    ``epsilon`` is ``epsilon_per_number`` times ``numbers`` (basic sequential composition), ``None`` when the
    numbers were published exact; ``delta`` is ``None`` for pure differential privacy. ``reporter_cap``: how
    many times one reporter may count in a number of reporters; ``total_cap_per_day``: how much one reporter may
    add to one counter's total in one day (``None`` for tables without totals).
    See :mod:`consentry_server.publish.ledger`.
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
    digest: str
    aggregation: int


class Storage(Protocol):
    """Raw reports, registered manifests, request logs and aggregates. Only modules under ``storage/`` speak SQL."""

    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names of those applied now."""
        ...

    def register_manifest(self, manifest: Manifest | PluginManifest) -> bool:
        """Keep ``manifest`` (every version is kept); ``False`` if this exact version was already registered."""
        ...

    def apps(self) -> list[str]:
        """Names of the registered applications."""
        ...

    def catalog(self, app: str) -> Catalog | None:
        """The registered manifests of ``app``, or ``None``."""
        ...

    def store_batch(self, arrivals: Sequence[Arrival]) -> list[StoreOutcome | Exception]:
        """Store validated reports in one durable transaction; an outcome (or the exception) per arrival."""
        ...

    def delete_reporters(self, app: str, reporters: Sequence[str]) -> int:
        """Delete every stored report of ``app`` from ``reporters`` (hex ids); return how many rows went."""
        ...

    def report_count(self) -> int:
        """How many (report, day) rows are stored."""
        ...

    def log_requests(self, entries: Sequence[RequestLog]) -> None:
        """Append to the request log."""
        ...

    def apply_retention(self, *, raw_before: datetime.date, logs_before: datetime.datetime) -> RetentionResult:
        """Delete raw rows of days before ``raw_before`` and log lines before ``logs_before``."""
        ...

    def export(
        self, app: str, *, since: datetime.date | None = None, until: datetime.date | None = None
    ) -> Iterator[dict[str, object]]:
        """The raw rows of ``app`` (days from ``since`` to ``until``, inclusive), as JSON-compatible dicts."""
        ...

    def statistics(self) -> dict[str, int]:
        """Row counts per table, for operators."""
        ...

    def dropped(self) -> dict[str, dict[str, int]]:
        """What accepted uploads dropped, per application and reason, summed over the request log kept."""
        ...

    def aggregate(self, progress: Progress | None = None) -> AggregateTables:
        """Roll the changed days up per day, ISO week and month; return every aggregate."""
        ...

    def aggregates(self) -> AggregateTables:
        """The stored aggregates, as the last aggregation left them."""
        ...

    def aggregation_runs(self) -> int:
        """How many aggregations have run to completion (each counts, whatever it changed)."""
        ...

    def ledger(self) -> list[LedgerEntry]:
        """The privacy ledger: every release recorded so far, by publication, application and dataset."""
        ...

    def record_release(self, entries: Sequence[LedgerEntry]) -> None:
        """Add the entries of one publication to the ledger, durably and in one transaction.

        A publication number that is already recorded (another publication ran meanwhile) is refused with
        :class:`ValueError`, and nothing is added.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def store_report(
    storage: Storage,
    report: Report,
    *,
    received: datetime.datetime,
    country: str | None = None,
    first_report_known: bool = True,
) -> StoreOutcome:
    """Store one report through :meth:`Storage.store_batch`; raise what storing it raised."""
    [outcome] = storage.store_batch([Arrival(report, received, country, first_report_known)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def unknown_new_installs(installs: Iterable[InstallRow], values: Iterable[ValueRow]) -> list[InstallRow]:
    """``installs``, with ``new_installs`` ``None`` in the periods where it is unknown.

    That is where some reporter of the application could not tell whether it was new: the ``values`` hold a
    :data:`~.rows.FIRST_REPORT_UNKNOWN` row for the period (every level of it: the row is the application's).
    Counting only the reporters that could tell would be a number too small, shown as if it were the count.
    """
    unknown = {
        (row.app, row.period, row.start)
        for row in values
        if (row.field, row.value) == FIRST_REPORT_UNKNOWN and row.reporters > 0
    }
    return [
        dataclasses.replace(row, new_installs=None) if (row.app, row.period, row.start) in unknown else row
        for row in installs
    ]


def counter_aggregates(rows: Iterable[tuple[str, str, int, int, str, int, int]]) -> Iterator[CounterRow]:
    """Rows ``(app, period, start, kind, name, total, reporters)`` as read from a backend, as :class:`CounterRow`."""
    for app, period, start, kind, name, total, reporters in rows:
        kind_name = KIND_NAMES.get(kind, "unknown")
        scope = ""
        if kind_name == "plugin_event":
            scope, name = json.loads(name)  # noqa: PLW2901 - split the stored [plugin, event] pair
        yield CounterRow(app, period, from_epoch_day(start), kind_name, scope, name, total, reporters)


@dataclass(frozen=True)
class RawRow:
    """One stored (report, day) row as a backend read it back, for :func:`export_record`."""

    app: str
    level: str
    reporter: bytes
    day: int
    received: int
    app_version: str
    first_report: bool
    country: str | None


def export_record(row: RawRow, facts: Mapping[str, str], counters: Iterable[tuple[int, str, int]]) -> dict[str, object]:
    """The exported form of a raw row, the same from every backend: facts by key, counters by kind and name."""
    return {
        "app": row.app,
        "level": row.level,
        "reporter": row.reporter.hex(),
        "day": from_epoch_day(row.day).isoformat(),
        "received": datetime.datetime.fromtimestamp(row.received, datetime.timezone.utc).isoformat(),
        "app_version": row.app_version,
        "first_report": row.first_report,
        "country": row.country,
        "facts": dict(sorted(facts.items())),
        "counters": [
            {"kind": KIND_NAMES.get(kind, "unknown"), "name": name, "n": n} for kind, name, n in sorted(counters)
        ],
    }
