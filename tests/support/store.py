"""Reading what the client recorded, as its next run (or the CLI) would: the journal merged, then the store."""

from __future__ import annotations

import datetime
from pathlib import Path

from consentry._local.counts import DayRecord, Store, merge_journal
from consentry._local.paths import Paths


def recorded_day(home: Path, app: str, day: datetime.date) -> DayRecord | None:
    """Everything recorded for ``day``: processes that exited left their last counts in the journal."""
    paths = Paths(home).app(app)
    if paths.root.exists():
        merge_journal(paths)
    return Store(paths.store).read_day(day)
