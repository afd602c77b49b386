"""Storage: the one place that speaks SQL. ``open_storage`` picks the backend from the database URL."""

from __future__ import annotations

from consentry_server.config import ConfigError, Settings
from consentry_server.storage.base import AggregateTables, CounterRow, InstallRow, Storage, StoreOutcome, ValueRow
from consentry_server.storage.public import PublicStore
from consentry_server.storage.sqlite import SQLiteStorage

__all__ = [
    "AggregateTables",
    "CounterRow",
    "InstallRow",
    "PublicStore",
    "SQLiteStorage",
    "Storage",
    "StoreOutcome",
    "ValueRow",
    "open_storage",
]


def open_storage(settings: Settings) -> SQLiteStorage:
    """Open and migrate the database named by ``settings.database``."""
    path = settings.sqlite_path
    if path is None:
        raise ConfigError(f"unsupported database URL {settings.database!r}")
    storage = SQLiteStorage(path)
    storage.migrate()
    return storage
