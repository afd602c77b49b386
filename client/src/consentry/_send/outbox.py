"""Reports on disk: the pending folder (what will be sent, byte for byte) and the upload history.

A pending report is a file ``pending/<day>.<level>.json`` holding exactly the bytes that will be uploaded;
``consentry preview`` prints those bytes. Beside it, ``<name>.meta`` records the epoch of the consent its data
was recorded under and whether the user approved it, both tied to the SHA-256 of the bytes they were given for:
a report whose bytes changed since (a late flush rebuilt it, a crash came between the two writes) has neither,
so it waits for the user rather than being sent on an answer given for something else.

The queue is bounded in count and bytes, and reports that could not be sent for 14 days expire. A pending file
that cannot be read back as a report of this application is moved to ``quarantine/`` instead of being sent.
Every upload attempt that reaches a conclusion, and every report the user rejects, is appended to
``history.jsonl`` with the time, the URL, the status and the exact bytes; the history is bounded too.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from consentry._local.files import make_private_dir, read_json, write_atomic, write_json
from consentry._local.paths import AppPaths
from consentry.wire import Report, WireError, decode, encode
from consentry.wire.schema import MAX_REPORT_BYTES

__all__ = ["HistoryEntry", "Outbox", "PendingReport", "UnreadableReportError"]

_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.([a-z][a-z0-9_]{0,31})\.json$")
MAX_PENDING_FILES = 500
MAX_PENDING_BYTES = 50 * 1024 * 1024
MAX_AGE = datetime.timedelta(days=14)
MAX_HISTORY_BYTES = 2 * 1024 * 1024


class UnreadableReportError(ValueError):
    """A pending file that is not a valid report of this application (damaged, edited, or not ours)."""


@dataclass(frozen=True)
class PendingReport:
    """A report waiting to be sent.

    ``epoch`` is the consent its data was recorded under and ``approved`` whether the user approved these bytes
    (both ``None``/``False`` when the file changed since they were recorded).
    """

    path: Path
    day: datetime.date
    level: str
    approved: bool
    epoch: str | None = None

    @property
    def name(self) -> str:
        """How the user names it on the command line: ``<day>.<level>``."""
        return f"{self.day.isoformat()}.{self.level}"

    def read(self) -> bytes:
        """The exact bytes that will be uploaded."""
        return self.path.read_bytes()


@dataclass(frozen=True)
class HistoryEntry:
    """One concluded upload attempt (sent, or refused and dropped), or a report the user rejected."""

    time: str
    url: str
    status: int
    outcome: str
    report: str

    def to_json(self) -> str:
        """One line of ``history.jsonl``."""
        return json.dumps(
            {"time": self.time, "url": self.url, "status": self.status, "outcome": self.outcome, "report": self.report},
            sort_keys=True,
        )


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Outbox:
    """The pending folder and the history file of one application."""

    def __init__(self, paths: AppPaths) -> None:
        self.paths = paths

    # ---- pending ------------------------------------------------------------------------------------------
    @staticmethod
    def _meta(path: Path) -> Path:
        return path.with_name(path.name + ".meta")

    def _read_meta(self, path: Path, data: bytes) -> tuple[str | None, bool]:
        """The epoch and approval recorded for exactly ``data``; nothing when they were given for other bytes."""
        meta = read_json(self._meta(path)) or {}
        if meta.get("sha256") != _digest(data):
            return None, False
        epoch = meta.get("epoch")
        return (epoch if isinstance(epoch, str) else None), meta.get("approved") is True

    def put(self, report: Report, *, epoch: str | None) -> Path:
        """Write ``report`` as its pending file, replacing an older one for the same day and level.

        ``epoch`` is the consent its data was recorded under. The user's approval is kept only if the bytes are
        unchanged.
        """
        data = encode(report)
        path = self.paths.pending / f"{report.days[0].isoformat()}.{report.level}.json"
        try:
            old = path.read_bytes()
        except OSError:
            old = None
        approved = old == data and self._read_meta(path, data)[1]
        if old != data:
            write_atomic(path, data)
        write_json(self._meta(path), {"epoch": epoch, "sha256": _digest(data), "approved": approved})
        return path

    def pending(self) -> list[PendingReport]:
        """Pending reports, oldest day first; files that are not ours are ignored."""
        try:
            names = sorted(entry.name for entry in self.paths.pending.iterdir())
        except OSError:
            return []
        out = []
        for name in names:
            match = _NAME.match(name)
            if not match:
                continue
            try:
                day = datetime.date.fromisoformat(match.group(1))
            except ValueError:
                continue
            path = self.paths.pending / name
            try:
                epoch, approved = self._read_meta(path, path.read_bytes())
            except OSError:
                continue
            out.append(PendingReport(path, day, match.group(2), approved, epoch))
        return out

    def select(self, names: list[str]) -> tuple[list[PendingReport], list[str]]:
        """The pending reports named ``<day>.<level>``, ``<day>`` (every level of the day) or by file name.

        Returns the reports found and the names that matched none. No names: every pending report.
        """
        pending = self.pending()
        if not names:
            return pending, []
        chosen: list[PendingReport] = []
        unknown = []
        for name in names:
            key = Path(name).name.removesuffix(".json")
            found = [report for report in pending if key in (report.name, report.day.isoformat())]
            if not found:
                unknown.append(name)
            chosen.extend(report for report in found if report not in chosen)
        return chosen, unknown

    def approve(self, report: PendingReport, data: bytes | None = None) -> None:
        """Record the user's approval of ``report``: of the bytes ``data`` they were shown (by default, its own)."""
        if data is None:
            data = report.read()
        epoch, _ = self._read_meta(report.path, data)
        write_json(self._meta(report.path), {"epoch": epoch, "sha256": _digest(data), "approved": True})

    def check(self, report: PendingReport, app: str) -> bytes:
        """The report's bytes if they are a valid report of ``app`` for its day and level.

        Raises :class:`UnreadableReportError` otherwise (not UTF-8, not a valid report, another application,
        day or level than its name says), and ``OSError`` when the file cannot be read.
        """
        with report.path.open("rb") as file:
            data = file.read(MAX_REPORT_BYTES + 1)
        if len(data) > MAX_REPORT_BYTES:
            raise UnreadableReportError(f"{report.path.name} is too large to be a report")
        try:
            decoded = decode(data)
        except WireError as error:
            raise UnreadableReportError(f"{report.path.name} is not a valid report: {error}") from None
        if decoded.app != app or decoded.level != report.level or decoded.days[0] != report.day:
            raise UnreadableReportError(f"{report.path.name} is not this application's report for its day and level")
        return data

    def quarantine(self, report: PendingReport) -> Path:
        """Move an unreadable report to the quarantine folder, unsent; return where it went."""
        make_private_dir(self.paths.quarantine)
        target = self.paths.quarantine / report.path.name
        report.path.replace(target)
        self._meta(report.path).unlink(missing_ok=True)
        return target

    def remove(self, report: PendingReport) -> None:
        """Delete a pending report and what is recorded beside it."""
        report.path.unlink(missing_ok=True)
        self._meta(report.path).unlink(missing_ok=True)
        report.path.with_name(report.path.name + ".approved").unlink(missing_ok=True)  # before the .meta files

    def clear(self) -> int:
        """Delete every pending report (and today's partial reports); return how many pending there were."""
        self.clear_partial()
        reports = self.pending()
        for report in reports:
            self.remove(report)
        with contextlib.suppress(OSError):
            for stray in self.paths.pending.iterdir():  # approvals of reports already gone, temporary files
                if stray.name.endswith((".meta", ".approved", ".tmp")):
                    stray.unlink()
        return len(reports)

    def clear_partial(self) -> None:
        """Delete today's partial reports (``consentry preview/upload APP --today``), and anything else there."""
        with contextlib.suppress(OSError):
            for entry in self.paths.partial.iterdir():
                with contextlib.suppress(OSError):
                    entry.unlink()  # a link is removed, never followed; a folder planted there stays

    def trim(self, today: datetime.date) -> list[PendingReport]:
        """Drop reports older than 14 days and, past the count or byte bound, the oldest; return the dropped."""
        reports = self.pending()
        dropped = [report for report in reports if today - report.day > MAX_AGE]
        kept = [report for report in reports if report not in dropped]
        sizes = {}
        for report in kept:
            with contextlib.suppress(OSError):
                sizes[report.path] = report.path.stat().st_size
        while kept and (len(kept) > MAX_PENDING_FILES or sum(sizes.get(r.path, 0) for r in kept) > MAX_PENDING_BYTES):
            dropped.append(kept.pop(0))
        for report in dropped:
            self.remove(report)
        return dropped

    # ---- history ------------------------------------------------------------------------------------------
    def record(self, entry: HistoryEntry) -> None:
        """Append ``entry`` to the history, keeping the file under its size bound (oldest entries go first)."""
        make_private_dir(self.paths.root)
        line = (entry.to_json() + "\n").encode("utf-8")
        try:
            size = self.paths.history.stat().st_size
        except OSError:
            size = 0
        if size + len(line) > MAX_HISTORY_BYTES:
            lines = self.paths.history.read_bytes().splitlines(keepends=True)
            while lines and sum(map(len, lines)) + len(line) > MAX_HISTORY_BYTES // 2:
                lines.pop(0)
            write_atomic(self.paths.history, b"".join(lines) + line)
            return
        with self.paths.history.open("ab") as file:
            file.write(line)

    def history(self) -> list[HistoryEntry]:
        """Every recorded upload, oldest first; damaged lines are skipped."""
        try:
            lines = self.paths.history.read_text("utf-8", errors="replace").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                item = json.loads(line)
                out.append(
                    HistoryEntry(
                        str(item["time"]),
                        str(item["url"]),
                        int(item["status"]),
                        str(item["outcome"]),
                        str(item["report"]),
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue
        return out
