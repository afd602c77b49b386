"""Storage: the one place that speaks SQL. ``open_storage`` picks the backend from the database URL."""

from __future__ import annotations

from consentry_server.config import ConfigError, Settings
from consentry_server.storage.base import (
    AggregateTables,
    CounterRow,
    InstallRow,
    Storage,
    StorageUnavailable,
    StoreOutcome,
    ValueRow,
)
from consentry_server.storage.public import PublicStore
from consentry_server.storage.sqlite import SQLiteStorage

__all__ = [
    "AggregateTables",
    "CounterRow",
    "InstallRow",
    "PublicStore",
    "SQLiteStorage",
    "Storage",
    "StorageUnavailable",
    "StoreOutcome",
    "ValueRow",
    "open_storage",
]


def open_storage(settings: Settings) -> Storage:
    """Open and migrate the database named by ``settings.database``: SQLite or PostgreSQL."""
    storage: Storage
    if settings.postgresql_url is not None:
        # Imported here: psycopg is only loaded by servers that use PostgreSQL.
        from consentry_server.storage.postgres import PostgreSQLStorage  # noqa: PLC0415

        storage = PostgreSQLStorage(settings.postgresql_url)
    elif settings.sqlite_path is not None:
        storage = SQLiteStorage(settings.sqlite_path)
    else:
        raise ConfigError(f"unsupported database URL {settings.database!r}")
    try:
        storage.migrate()
    except BaseException:
        storage.close()
        raise
    return storage
