"""A cache of the registered manifests, so ingest does not read them from the database for every report.

Manifests can be registered by another process (``consentry-server apps add``), so an entry is refreshed
after a while, and at once (at most once a second per application) when a report names a consent version
the cached entry does not have.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from consentry_server.ingest.catalog import Catalog
from consentry_server.storage.base import Storage

__all__ = ["MAX_ENTRIES", "Registry"]

MAX_ENTRIES = 10_000


class Registry:
    """Catalogs by application name, refreshed from storage."""

    def __init__(self, storage: Storage, *, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._storage = storage
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Catalog | None]] = {}

    def get(self, app: str, consent_version: str | None = None) -> Catalog | None:
        """The catalog of ``app``, or ``None`` if it is not registered."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(app)
        if entry is not None:
            loaded, catalog = entry
            age = now - loaded
            known = catalog is not None and (consent_version is None or consent_version in catalog.versions)
            if age < self._ttl and (known or age < 1.0):
                return catalog
        catalog = self._storage.catalog(app)
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:  # names sent by strangers must not grow the cache forever
                self._entries.clear()
            self._entries[app] = (now, catalog)
        return catalog

    def invalidate(self, app: str | None = None) -> None:
        """Forget the cached catalog of ``app`` (or of all)."""
        with self._lock:
            if app is None:
                self._entries.clear()
            else:
                self._entries.pop(app, None)
