"""Publishing: the privacy protections of :mod:`consentry_server.publish.privacy`, then the public store.

Nothing leaves for the public store unless at least ``k`` distinct reporters stand behind it, and nothing it
holds can be subtracted from another published number to reveal less than that. With ``noise_epsilon``, every
published number gets calibrated noise, and the privacy ledger (:mod:`consentry_server.publish.ledger`) records what
each publication spent; the ledger is published beside the data.
"""

from __future__ import annotations

import datetime

from consentry_server.config import ConfigError, Settings
from consentry_server.publish import ledger
from consentry_server.publish.privacy import add_noise, noise_parameters, protect
from consentry_server.storage.base import CONTRIBUTION_CAP, AggregateTables, Storage
from consentry_server.storage.public import AppInfo, Publication, PublicStore

__all__ = ["CONTRIBUTION_CAP", "publish", "publish_as_configured"]


def publish_as_configured(storage: Storage, settings: Settings, *, now: datetime.datetime | None = None) -> Publication:
    """Publish as ``settings`` say: into ``public_database``, at ``reporter_threshold``, with ``noise_epsilon``.

    Every command that publishes (``publish``, ``demo``) goes through here, so none can leave a setting out.
    """
    return publish(
        storage,
        PublicStore(settings.public_path),
        threshold=settings.reporter_threshold,
        noise_epsilon=settings.noise_epsilon,
        now=now,
    )


def publish(
    storage: Storage,
    public: PublicStore,
    *,
    threshold: int,
    now: datetime.datetime | None = None,
    noise_epsilon: float | None = None,
) -> Publication:
    """Write the current aggregates, protected at ``threshold`` (and noisy at ``noise_epsilon``), to ``public``.

    The releases are recorded in the privacy ledger before the public store is written: a publication that
    fails half-way is counted, never one that is not. Returns what was written.
    """
    released_at = now or datetime.datetime.now(datetime.timezone.utc)
    previous = storage.ledger()
    aggregation = storage.aggregation_runs()
    held = int(public.meta().get("publication", "0") or 0)
    fresh = False
    if ledger.reusable(previous, held, k=threshold, epsilon=noise_epsilon, aggregation=aggregation):
        tables = public.published_tables()  # the numbers of the last release again: nothing more is released
    else:
        tables = protect(storage.aggregates(), threshold)
        if noise_epsilon is not None:
            tables = _noisy(tables, noise_epsilon)
            fresh = True
    apps = []
    for name in storage.apps():
        catalog = storage.catalog(name)
        if catalog is not None:
            manifest = catalog.latest
            apps.append(AppInfo(name, manifest.title, manifest.homepage, manifest.to_document()))
    number = max((entry.publication for entry in previous), default=0) + 1
    made = ledger.entries(
        previous,
        tables,
        [app.name for app in apps],
        publication=number,
        released_at=released_at,
        k=threshold,
        epsilon=noise_epsilon,
        fresh=fresh,
        aggregation=aggregation,
    )
    storage.record_release(made)
    publication = Publication(
        apps=apps,
        installs=tables.installs,
        counters=tables.counters,
        values=tables.values,
        threshold=threshold,
        published_at=released_at,
        noise=None if noise_epsilon is None else noise_parameters(noise_epsilon, CONTRIBUTION_CAP),
        ledger=ledger.published([*previous, *made]),
        release=number if made else max((entry.publication for entry in previous), default=0),
    )
    public.write(publication)
    return publication


def _noisy(tables: AggregateTables, epsilon: float) -> AggregateTables:
    try:
        return add_noise(tables, epsilon, CONTRIBUTION_CAP)
    except ImportError:
        raise ConfigError(
            "noise_epsilon needs OpenDP, which is not installed: pip install 'consentry-server[noise]'"
        ) from None
