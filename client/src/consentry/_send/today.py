"""Today's report so far: for an application's author checking an integration on the day they make it.

Reports are built for completed days only (phase 4 of ``docs/internals/phases.md``), so on the day an author
integrates Consentry, ``consentry preview`` has nothing to show. ``consentry preview APP --today`` builds the
reports of the current day as it stands, and ``consentry upload APP --today`` builds and sends them. They are
*partial*: built into ``partial/`` (never ``pending/``), shown and recorded in the history as partial, sent only
by the command that built them, at once, and never queued, retried or sent by the uploader.

Why this never counts anything twice. The server keeps one report per reporter, level and day: a different report
for the same three *replaces* the earlier one (``"replaced"``, see ``docs/wire-format.md``). A partial report
has the same reporter id (derived from the ISO week of the day it covers, not of the sending), the same level and
the same day as the report of the whole day, and building it marks nothing reported: after midnight the whole day
is reported as usual and replaces the partial one on the server, so the day is counted once, whole. Sending a
partial report again the same day replaces the earlier partial one. This holds only if a partial report never
arrives after its whole day's report, so it is built and sent under ``outbox.lock`` (which the builder of
completed days takes too), only while its day is still today by the clock, and it is never kept for a later try.

Consent rules are the usual ones: nothing is built unless the answer records, nothing is sent unless it may be
sent unasked (mode ``on`` and the whole day recorded under the current answer: a day begun in another mode waits,
as it would tomorrow); the answer and the switches are read again before each report.
"""

from __future__ import annotations

import datetime
import gzip
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from consentry._local.bookkeeping import load_secret, load_state, update_state
from consentry._local.files import exclusive, make_private_dir, write_atomic
from consentry._send.outbox import HistoryEntry
from consentry._send.reports import build_reports, reporter_id
from consentry._send.upload import USER_AGENT, is_configuration_refusal, refusal_reason
from consentry.transport import Request, Response, TransportError
from consentry.wire import encode

if TYPE_CHECKING:
    from consentry._local.session import AppSession
    from consentry.transport import Transport

__all__ = ["PartialReport", "TodayResult", "build_partial", "send_partial", "today_reports"]


@dataclass(frozen=True)
class PartialReport:
    """One level's report of today so far, as written to ``partial/<day>.<level>.json``."""

    path: Path
    day: datetime.date
    level: str
    data: bytes
    epoch: str | None

    @property
    def name(self) -> str:
        """``<day>.<level>``, as pending reports are named."""
        return f"{self.day.isoformat()}.{self.level}"


@dataclass
class TodayResult:
    """What ``--today`` built, and what sending it did."""

    day: datetime.date
    as_of: datetime.datetime
    reports: list[PartialReport] = field(default_factory=list)
    busy: bool = False
    sent: int = 0
    refused: int = 0
    not_sent: int = 0
    messages: list[str] = field(default_factory=list)


def build_partial(session: AppSession) -> list[PartialReport]:
    """Write today's reports so far into ``partial/`` (replacing earlier ones) and return them.

    The caller holds ``outbox.lock`` and has built the completed days first (so the install's first day is
    settled by the earliest day). Marks nothing reported. Raises ``OSError`` or ``StoreError`` when the files or
    the store cannot be used.
    """
    session.merge_journal()
    outbox, paths, manifest = session.outbox, session.paths, session.manifest
    today = session.clock.today()
    outbox.clear_partial()
    record = session.store.read_day(today)
    if record is None:
        return []
    # As for a completed day: the first day is settled before the secret is made (see Session._prepare_reports).
    first_day = load_state(paths).first_day
    if first_day is None:
        first_day = update_state(paths, lambda state: replace(state, first_day=today)).first_day
    secret = load_secret(paths)
    reports = build_reports(
        manifest,
        session.decision.level,
        record,
        reporter=reporter_id(secret, manifest.name, today),
        first_report=first_day == today,
        consent_version=manifest.consent_version,
    )
    make_private_dir(paths.partial)
    built = []
    for report in reports:
        data = encode(report)
        path = paths.partial / f"{today.isoformat()}.{report.level}.json"
        write_atomic(path, data)
        built.append(PartialReport(path, today, report.level, data, record.epoch))
    return built


def _outcome(result: TodayResult, report: PartialReport, response: Response | None, error: str) -> tuple[str, int]:
    """The history outcome of one partial report's answer, counted in ``result``; ``("", 0)``: nothing to record."""
    as_of = result.as_of.strftime("%H:%M UTC")
    if response is not None and 200 <= response.status < 300:  # noqa: PLR2004
        result.sent += 1
        return f"sent (partial: {report.day} as of {as_of}; the whole day's report replaces it)", response.status
    if response is not None and 400 <= response.status < 500 and response.status not in (408, 429):  # noqa: PLR2004
        reason = refusal_reason(response)
        result.refused += 1
        if is_configuration_refusal(response):
            reason += "; the server is not set up for this application yet: its operator registers the manifest"
        result.messages.append(f"{report.name}: refused ({response.status}) {reason}")
        return f"partial report refused, not kept: {reason}", response.status
    result.not_sent += 1
    what = f"HTTP {response.status}" if response is not None else f"no response ({error})"
    result.messages.append(f"{report.name}: {what}; not kept (the whole day goes tomorrow as usual)")
    return "", 0


def send_partial(session: AppSession, result: TodayResult, transport: Transport, *, budget: float = 30.0) -> None:
    """Send the partial reports of ``result`` that may be sent unasked, once each, and delete them.

    The caller holds ``outbox.lock``. A report is sent only while its day is still today, and only if the
    answer as it is now sends it unasked; whatever happens, it is not kept for a later try.
    """
    clock, outbox = session.clock, session.outbox
    started = clock.monotonic()
    try:
        for report in result.reports:
            decision = session.current_decision()
            if not decision.send:
                result.not_sent += 1
                result.messages.append(f"{report.name}: not sent: {decision.reason}")
                continue
            if not decision.sends_unasked(report.epoch):
                result.not_sent += 1
                result.messages.append(f"{report.name}: not sent: {_waits_because(decision.ask_mode)}")
                continue
            if clock.today() != report.day:
                result.not_sent += 1
                result.messages.append(f"{report.name}: not sent: the day ended; it is reported whole, as usual")
                continue
            remaining = budget - (clock.monotonic() - started)
            if remaining <= 0:
                result.not_sent += 1
                result.messages.append(f"{report.name}: not sent: out of time")
                continue
            url = session.manifest.level(report.level).endpoint or ""
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip", "User-Agent": USER_AGENT}
            request = Request(url, gzip.compress(report.data, mtime=0), headers, timeout=min(remaining, 10.0))
            response: Response | None = None
            error = ""
            try:
                response = transport.send(request)
            except TransportError as failure:
                error = str(failure)
            outcome, status = _outcome(result, report, response, error)
            if outcome:
                text = report.data.decode("utf-8")  # encoded by us: ASCII
                outbox.record(HistoryEntry(clock.now().isoformat(), url, status, outcome, text))
        if result.sent:
            update_state(session.paths, lambda state: replace(state, sent_ever=True))  # for `consentry disable`
    finally:
        outbox.clear_partial()


def today_reports(
    session: AppSession, transport: Transport | None = None, *, send: bool = False, budget: float = 30.0
) -> TodayResult:
    """Build today's partial reports of ``session`` (and, with ``send``, send them once).

    Under the outbox lock, after the completed days have been built; ``busy`` when another process holds it.
    Nothing is built when the answer does not record. Raises ``OSError`` or ``StoreError``.
    """
    from consentry.transport import HttpTransport  # noqa: PLC0415 - only a send needs it

    result = TodayResult(session.clock.today(), session.clock.now())
    if not session.decision.record:
        return result
    with exclusive(session.paths.outbox_lock) as held:
        if not held:
            result.busy = True
            return result
        session.prepare_reports_locked()
        result.reports = build_partial(session)
        if send:
            send_partial(session, result, transport or HttpTransport(), budget=budget)
    return result


def _waits_because(ask_mode: bool) -> str:  # noqa: FBT001 - private
    if ask_mode:
        return (
            "in mode 'ask' a report goes only once you approve it, and today's cannot be approved before the day "
            "ends (`consentry approve` tomorrow); `consentry enable` sends without asking"
        )
    return (
        "part of today was recorded before your current answer, so the day waits for your approval "
        "(`consentry approve` tomorrow)"
    )
