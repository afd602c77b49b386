"""Comparing what a seed-format or OTLP upload stored with what the same native report stores.

Such an upload cannot say whether it is an install's first report, so what it stores differs from the native
report's in exactly that: the fact ``first_report = unknown`` and, in the aggregates, new installs unknown
(``None``) and that fact's value row. Everything else must be the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from consentry_server.storage.base import AggregateTables
from consentry_server.storage.rows import FIRST_REPORT_UNKNOWN

__all__ = ["as_first_report_unknown", "first_report_unknown_records"]


def first_report_unknown_records(records: Iterable[dict[str, object]]) -> list[dict[str, object]]:
    """Exported records of native reports as an upload that cannot tell its first report stores them."""
    key, value = FIRST_REPORT_UNKNOWN
    return [
        {**record, "received": None, "facts": {**record["facts"], key: value}}  # type: ignore[dict-item]
        for record in records
    ]


def as_first_report_unknown(tables: AggregateTables) -> AggregateTables:
    """``tables`` without the first-report fact's rows and with every new-installs count unknown."""
    return AggregateTables(
        [dataclasses.replace(row, new_installs=None) for row in tables.installs],
        tables.counters,
        [row for row in tables.values if (row.field, row.value) != FIRST_REPORT_UNKNOWN],
    )
