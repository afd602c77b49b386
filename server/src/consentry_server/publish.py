"""Publishing: the privacy protections of :mod:`consentry_server.privacy`, then the public store.

Nothing leaves for the public store unless at least ``k`` distinct reporters stand behind it, and nothing it
holds can be subtracted from another published number to reveal less than that.
"""

from __future__ import annotations

import datetime

from consentry_server.privacy import add_noise, noise_parameters, protect
from consentry_server.storage.base import AggregateTables, Storage
from consentry_server.storage.public import AppInfo, Publication, PublicStore

__all__ = ["CONTRIBUTION_CAP", "publish", "suppress"]

#: Most one reporter adds to one counter in one day (applied when aggregating): the sensitivity of totals.
CONTRIBUTION_CAP = 10_000


def suppress(tables: AggregateTables, threshold: int) -> AggregateTables:
    """Primary and complementary suppression (kept under this name for callers of the first version)."""
    return protect(tables, threshold)


def publish(
    storage: Storage,
    public: PublicStore,
    *,
    threshold: int,
    now: datetime.datetime | None = None,
    noise_epsilon: float | None = None,
) -> Publication:
    """Write the current aggregates, protected at ``threshold``, to ``public``; return what was written."""
    tables = protect(storage.aggregates(), threshold)
    noise = None
    if noise_epsilon is not None:
        tables = add_noise(tables, noise_epsilon, CONTRIBUTION_CAP)
        noise = noise_parameters(noise_epsilon, CONTRIBUTION_CAP)
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
        noise=noise,
    )
    public.write(publication)
    return publication
