"""Publishing: privacy protections applied to the aggregates, then written to the public store.

Nothing leaves for the public store unless at least ``k`` distinct reporters stand behind it: every install
count, counter and distribution row below the threshold is suppressed.
"""

from __future__ import annotations

import datetime
from dataclasses import replace

from consentry_server.storage.base import AggregateTables, Storage
from consentry_server.storage.public import AppInfo, Publication, PublicStore

__all__ = ["publish", "suppress"]


def suppress(tables: AggregateTables, threshold: int) -> AggregateTables:
    """Drop every row that rests on fewer than ``threshold`` distinct reporters.

    A published install row also hides its count of new installs when between 1 and ``threshold - 1`` were new.
    """
    installs = [
        row if not row.new_installs or row.new_installs >= threshold else replace(row, new_installs=None)
        for row in tables.installs
        if row.reporters >= threshold
    ]
    return replace(
        tables,
        installs=installs,
        counters=[row for row in tables.counters if row.reporters >= threshold],
        values=[row for row in tables.values if row.reporters >= threshold],
    )


def publish(
    storage: Storage, public: PublicStore, *, threshold: int, now: datetime.datetime | None = None
) -> Publication:
    """Write the current aggregates, suppressed below ``threshold``, to ``public``; return what was written."""
    tables = suppress(storage.aggregates(), threshold)
    apps = []
    for name in storage.apps():
        catalog = storage.catalog(name)
        if catalog is not None:
            manifest = catalog.latest
            apps.append(AppInfo(name, manifest.title, manifest.homepage, manifest.to_document()))
    publication = Publication(
        apps=apps,
        installs=tables.installs,
        counters=tables.counters,
        values=tables.values,
        threshold=threshold,
        published_at=now or datetime.datetime.now(datetime.timezone.utc),
    )
    public.write(publication)
    return publication
