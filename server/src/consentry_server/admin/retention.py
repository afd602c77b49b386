"""Retention, enforced by the server itself: raw reports and request logs expire, aggregates do not.

The running server applies it every ``retention_interval_hours`` (a background task of the application), and
``consentry-server retention`` applies it once, for operators who prefer to see it happen.
"""

from __future__ import annotations

import asyncio
import datetime
import logging

from starlette.concurrency import run_in_threadpool

from consentry_server.config import Settings
from consentry_server.storage.base import RetentionResult, Storage

__all__ = ["apply_retention", "retention_loop"]

logger = logging.getLogger("consentry_server")


def apply_retention(storage: Storage, settings: Settings, now: datetime.datetime | None = None) -> RetentionResult:
    """Delete raw reports older than ``raw_retention_days`` and log lines older than ``log_retention_days``."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    raw_before = now.date() - datetime.timedelta(days=settings.raw_retention_days)
    logs_before = now - datetime.timedelta(days=settings.log_retention_days)
    return storage.apply_retention(raw_before=raw_before, logs_before=logs_before)


async def retention_loop(storage: Storage, settings: Settings) -> None:
    """Apply retention now and every ``retention_interval_hours``, until cancelled."""
    while True:
        try:
            result = await run_in_threadpool(apply_retention, storage, settings)
            logger.info("retention: %d raw rows and %d log lines deleted", result.raw_rows, result.log_rows)
        except Exception:  # a failed run is retried at the next interval
            logger.exception("retention failed")
        await asyncio.sleep(settings.retention_interval_hours * 3600)
