"""Reports on disk: the pending folder (what will be sent, byte for byte) and the upload history.

A pending report is a file ``pending/<day>.<level>.json`` holding exactly the bytes that will be uploaded;
``consentry preview`` prints those bytes. In ``ask`` mode a report waits until the user approves it, which
leaves a marker file ``<name>.approved`` beside it. The queue is bounded in count and bytes, and reports that
could not be sent for 14 days expire. Every upload attempt that reaches a conclusion is appended to
``history.jsonl`` with the time, the URL, the status and the exact bytes sent; the history is bounded too.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
from dataclasses import dataclass
from pathlib import Path

from consentry._files import make_private_dir, write_atomic
from consentry.paths import AppPaths
from consentry.wire import Report, encode

__all__ = ["HistoryEntry", "Outbox", "PendingReport"]

_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.([a-z][a-z0-9_]{0,31})\.json$")
MAX_PENDING_FILES = 500
MAX_PENDING_BYTES = 50 * 1024 * 1024
MAX_AGE = datetime.timedelta(days=14)
MAX_HISTORY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class PendingReport:
    """A report waiting to be sent."""

    path: Path
    day: datetime.date
    level: str
    approved: bool

    def read(self) -> bytes:
        """The exact bytes that will be uploaded."""
        return self.path.read_bytes()


@dataclass(frozen=True)
class HistoryEntry:
    """One concluded upload attempt (sent, or refused and dropped)."""

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


class Outbox:
    """The pending folder and the history file of one application."""

    def __init__(self, paths: AppPaths) -> None:
        self.paths = paths

    # ---- pending ------------------------------------------------------------------------------------------
    def put(self, report: Report) -> Path:
        """Write ``report`` as its pending file, replacing an older one for the same day and level."""
        data = encode(report)
        path = self.paths.pending / f"{report.days[0].isoformat()}.{report.level}.json"
        try:
            unchanged = path.read_bytes() == data
        except OSError:
            unchanged = False
        if not unchanged:
            write_atomic(path, data)
            self._marker(path).unlink(missing_ok=True)  # a changed report needs a new approval
        return path

    @staticmethod
    def _marker(path: Path) -> Path:
        return path.with_name(path.name + ".approved")

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
            out.append(PendingReport(path, day, match.group(2), self._marker(path).exists()))
        return out

    def approve(self, report: PendingReport) -> None:
        """Record the user's approval of ``report`` (``ask`` mode)."""
        write_atomic(self._marker(report.path), b"")

    def remove(self, report: PendingReport) -> None:
        """Delete a pending report and its approval."""
        report.path.unlink(missing_ok=True)
        self._marker(report.path).unlink(missing_ok=True)

    def clear(self) -> int:
        """Delete every pending report; return how many there were."""
        reports = self.pending()
        for report in reports:
            self.remove(report)
        return len(reports)

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
