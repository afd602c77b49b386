"""Sending pending reports: each to its level's URL, gzip-compressed, within a total time budget.

A report is sent only if the user may be taken to have agreed to it: they approved these very bytes, or the mode
is ``on`` and all of its data was recorded under the current answer
(:meth:`consentry._consent.answers.Decision.sends_unasked`).
The answer is read again before each report, so switching off stops an upload in progress. A pending file that
is not a valid report of the application is moved to quarantine, unsent, and the queue moves on.

Outcomes, per report sent: ``2xx`` sent (recorded in the history, removed); ``408``, ``429``, ``5xx``, a redirect
or no response: kept, and uploads back off (``Retry-After`` is honoured but clamped between a minute and a day);
a refusal about the server's configuration rather than the report (:func:`is_configuration_refusal`: the server
does not know the application or a plugin yet, or the URL is not a report endpoint): kept, recorded in the history
and in ``state.json`` as the reason uploads wait, and uploads back off the same way, so the report goes once the
operator registers the manifest (and expires with the queue's other reports after 14 days if that never happens);
any other ``4xx``: the server refused the report itself for good, so it is dropped and the reason recorded.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import gzip
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from consentry._clock import Clock
from consentry._consent.answers import Decision
from consentry._local.bookkeeping import AppState, load_state, update_state
from consentry._local.files import exclusive
from consentry._local.paths import AppPaths
from consentry._send.outbox import HistoryEntry, Outbox, PendingReport, UnreadableReportError
from consentry.manifest import Manifest
from consentry.transport import Request, Response, Transport, TransportError

__all__ = [
    "CONFIGURATION_CODES",
    "UploadResult",
    "is_configuration_refusal",
    "refusal_reason",
    "retry_delay",
    "upload_pending",
]

MIN_RETRY = datetime.timedelta(minutes=1)
MAX_RETRY = datetime.timedelta(days=1)
USER_AGENT = "consentry/0.1"
#: Refusal codes about what the server was told (its registered manifests), not about the report: the report is
#: kept and tried again, with back-off. ``unknown_app``: the application (or this consent version of it) is not
#: registered there yet; ``unknown_plugin``: a plugin's manifest is not.
CONFIGURATION_CODES = frozenset({"unknown_app", "unknown_plugin"})
#: Statuses that are about the endpoint, whatever the body: authentication in front of it, a URL that is not a
#: report endpoint (a manifest with a wrong path, a proxy not yet set up), a method it does not take.
_CONFIGURATION_STATUSES = frozenset({401, 403, 404, 405})


@dataclass
class UploadResult:
    """What an upload run did."""

    sent: int = 0
    dropped: int = 0
    kept: int = 0
    waiting_approval: int = 0
    quarantined: int = 0
    messages: list[str] = field(default_factory=list)
    retry_after: datetime.datetime | None = None

    @property
    def idle(self) -> bool:
        """Nothing was sent or tried: everything left waits for the user (or there was nothing)."""
        return not (self.sent or self.dropped or self.kept)


def retry_delay(response: Response | None, failures: int, now: datetime.datetime) -> datetime.timedelta:
    """How long to wait after a failure: ``Retry-After`` when given, else exponential backoff; clamped."""
    value = response.header("Retry-After") if response is not None else None
    delay: datetime.timedelta | None = None
    if value:
        value = value.strip()
        if value.isdigit():
            delay = datetime.timedelta(seconds=min(int(value[:9]), int(MAX_RETRY.total_seconds())))
        else:
            try:
                when = email.utils.parsedate_to_datetime(value)
                delay = when - now if when.tzinfo else None
            except (TypeError, ValueError):
                delay = None
    if delay is None:
        base = 60 * 2 ** min(max(failures, 1) - 1, 12)
        delay = datetime.timedelta(seconds=base * random.uniform(0.8, 1.2))
    return min(max(delay, MIN_RETRY), MAX_RETRY)


def _error_code(response: Response) -> str:
    """The machine-readable ``error.code`` of a refusal, or ``""``."""
    try:
        code = json.loads(response.body[:4096]).get("error", {}).get("code", "")
    except (ValueError, AttributeError, RecursionError):
        return ""
    return code[:64] if isinstance(code, str) else ""


def refusal_reason(response: Response) -> str:
    """The server's reason for a refusal, short: ``code: message`` from its JSON, else the start of its body."""
    try:
        document = json.loads(response.body[:4096])
        error = document.get("error", {})
        text = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, AttributeError, RecursionError):
        text = response.body[:200].decode("utf-8", errors="replace")
    return text[:300] or f"HTTP {response.status}"


def is_configuration_refusal(response: Response) -> bool:
    """Whether a ``4xx`` answer is about the server's configuration rather than the report (so it is kept)."""
    return response.status in _CONFIGURATION_STATUSES or _error_code(response) in CONFIGURATION_CODES


class _Run:
    """One upload run over the pending reports, carrying the bookkeeping as it goes."""

    def __init__(
        self,
        manifest: Manifest,
        decision: Decision,
        outbox: Outbox,
        transport: Transport,
        clock: Clock,
        *,
        budget: float,
        recheck: Callable[[], Decision] | None = None,
    ) -> None:
        self.manifest = manifest
        self.decision = decision
        self.outbox = outbox
        self.transport = transport
        self.clock = clock
        self.budget = budget
        self.recheck = recheck
        self.started = clock.monotonic()
        self.now = clock.now()
        self.state = load_state(outbox.paths, repair=False)
        self.drops: dict[str, int] = {}
        self.allowed = {level.name for level in manifest.levels_upto(decision.level)}
        self.result = UploadResult()

    def drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def run(self, pending: list[PendingReport]) -> None:
        for index, report in enumerate(pending):
            if not self.one(report):
                self.result.kept += len(pending) - index
                return

    def settle(self, current: AppState) -> AppState:
        """This run's outcome applied to the bookkeeping as it is now (other processes may have changed it)."""
        state = replace(
            current,
            sent_ever=current.sent_ever or self.state.sent_ever,
            last_attempt=self.state.last_attempt or current.last_attempt,
            last_success=self.state.last_success or current.last_success,
            retry_after=self.state.retry_after,
            failures=self.state.failures,
            waiting=self.state.waiting,
            idle_day=self.clock.today() if self.result.idle else current.idle_day,
        )
        return state.with_drops(self.drops)

    def one(self, report: PendingReport) -> bool:
        """Send one report; ``False`` means stop here (out of time, or the server wants us to back off)."""
        if self.recheck is not None:
            self.decision = self.recheck()
            if not self.decision.send:
                self.result.messages.append(f"nothing more is sent: {self.decision.reason}")
                return False
        if report.level not in self.allowed:
            self.outbox.remove(report)
            self.drop("level no longer consented")
            self.result.dropped += 1
            return True
        try:
            data = self.outbox.check(report, self.manifest.name)
        except UnreadableReportError as error:  # set aside whether or not it would be sent now: it never can be
            where = self.outbox.quarantine(report)
            self.drop("unreadable pending report")
            self.result.quarantined += 1
            self.result.messages.append(f"{error}; moved to {where}, not sent")
            return True
        except OSError:
            return True
        if not report.approved and not self.decision.sends_unasked(report.epoch):
            self.result.waiting_approval += 1
            return True
        remaining = self.budget - (self.clock.monotonic() - self.started)
        if remaining <= 0:
            self.result.messages.append("time budget used up; the rest waits for the next upload")
            return False
        url = self.manifest.level(report.level).endpoint or ""
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip", "User-Agent": USER_AGENT}
        request = Request(url, gzip.compress(data, mtime=0), headers, timeout=min(remaining, 10.0))
        try:
            response: Response | None = self.transport.send(request)
        except TransportError as error:
            response = None
            self.result.messages.append(f"{url}: no response ({error})")
        self.state = replace(self.state, last_attempt=self.now)
        return self.conclude(report, url, data.decode("utf-8"), response)  # checked: a valid report is UTF-8

    def conclude(self, report: PendingReport, url: str, text: str, response: Response | None) -> bool:
        """Act on the server's answer to one report; ``False`` means stop here (back off)."""
        if response is not None and 200 <= response.status < 300:  # noqa: PLR2004
            self.outbox.record(HistoryEntry(self.now.isoformat(), url, response.status, "sent", text))
            self.outbox.remove(report)
            self.state = replace(
                self.state, sent_ever=True, last_success=self.now, failures=0, retry_after=None, waiting=None
            )
            self.result.sent += 1
            return True
        if response is not None and 400 <= response.status < 500 and is_configuration_refusal(response):  # noqa: PLR2004
            return self.wait_for_configuration(url, text, response)
        if response is not None and 400 <= response.status < 500 and response.status not in (408, 429):  # noqa: PLR2004
            reason = refusal_reason(response)
            self.outbox.record(HistoryEntry(self.now.isoformat(), url, response.status, f"refused: {reason}", text))
            self.outbox.remove(report)
            self.drop(f"refused by the server (HTTP {response.status})")
            self.result.dropped += 1
            self.result.messages.append(f"{url}: refused ({response.status}) {reason}")
            return True
        # Try again later: the server is busy, failing, redirecting, or unreachable.
        failures = self.state.failures + 1
        retry = self.now + retry_delay(response, failures, self.now)
        self.state = replace(self.state, failures=failures, retry_after=retry)
        if response is not None:
            self.result.messages.append(f"{url}: HTTP {response.status}; will retry after {retry.isoformat()}")
        self.result.retry_after = retry
        return False

    def wait_for_configuration(self, url: str, text: str, response: Response) -> bool:
        """Keep a report the server refused for its own configuration, say why, and back off; ``False``: stop."""
        failures = self.state.failures + 1
        retry = self.now + retry_delay(response, failures, self.now)
        reason = refusal_reason(response)
        why = f"the server is not set up for this report yet ({reason}), HTTP {response.status} from {url}"
        outcome = f"kept, will retry after {retry.isoformat()}: {why}"
        self.outbox.record(HistoryEntry(self.now.isoformat(), url, response.status, outcome, text))
        self.state = replace(self.state, failures=failures, retry_after=retry, waiting=why)
        self.result.messages.append(
            f"{url}: refused ({response.status}) {reason}; kept: the server is not set up for it yet, "
            f"will retry after {retry.isoformat()}"
        )
        self.result.retry_after = retry
        return False


def upload_pending(
    manifest: Manifest,
    decision: Decision,
    paths: AppPaths,
    transport: Transport,
    clock: Clock,
    *,
    budget: float = 30.0,
    force: bool = False,
    recheck: Callable[[], Decision] | None = None,
) -> UploadResult:
    """Send what may be sent now. ``force`` ignores a back-off in progress (for ``consentry upload``).

    ``recheck`` gives the decision as it is now; it is called before each report, so that an answer changed
    during the upload (``consentry disable``) stops it.
    """
    outbox = Outbox(paths)
    pending = outbox.pending()
    if not decision.send:
        return UploadResult(kept=len(pending))
    if not pending:
        with contextlib.suppress(OSError):  # remembered so that no uploader is started again today for nothing
            update_state(paths, lambda state: replace(state, idle_day=clock.today()))
        return UploadResult()
    with exclusive(paths.outbox_lock) as held:
        if not held:
            return UploadResult(kept=len(pending), messages=["another process is building or sending reports"])
        run = _Run(manifest, decision, outbox, transport, clock, budget=budget, recheck=recheck)
        retry_after = run.state.retry_after
        if not force and retry_after is not None and run.now < retry_after:
            message = f"waiting until {retry_after.isoformat()} before trying again"
            if run.state.waiting:
                message += f": {run.state.waiting}"
            return UploadResult(kept=len(pending), retry_after=retry_after, messages=[message])
        run.run(outbox.pending())
        update_state(paths, run.settle)
        return run.result
