"""The group-commit loop both storers run: take everything queued, store it in one durable transaction.

A batch is the first item queued and whatever else is already waiting, up to a limit (:func:`take`); the
request-log lines and reports it holds are written together (:func:`commit`): one disk flush for every report that
arrived meanwhile. Each report then learns its own outcome. A failed transaction fails every report of the batch
(the clients get 503 and send again); losing request-log lines never loses reports.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Sequence
from typing import TypeVar

from consentry_server.storage.base import Arrival, RequestLog, Storage, StorageUnavailable, StoreOutcome

__all__ = ["MAX_BATCH", "Outage", "commit", "take"]

logger = logging.getLogger("consentry_server")

#: Reports stored in one transaction at most.
MAX_BATCH = 512

_Item = TypeVar("_Item")


def take(get: Callable[[], _Item], get_nowait: Callable[[], _Item], limit: int = MAX_BATCH) -> list[_Item]:
    """The next item (waiting for it), and every item already queued after it, up to ``limit`` in all."""
    items = [get()]
    while len(items) < limit:
        try:
            items.append(get_nowait())
        except queue.Empty:
            break
    return items


class Outage:
    """Says once that the database is unavailable, and once that it is back: not a line at each batch meanwhile."""

    def __init__(self) -> None:
        self.down = False

    def failed(self, error: StorageUnavailable) -> None:
        """The database could not be reached for this batch."""
        if not self.down:
            logger.warning("%s; reports are answered 503 and request-log lines lost until it is back", error)
        self.down = True

    def ended(self) -> None:
        """A batch was stored."""
        if self.down:
            logger.warning("the database is available again")
        self.down = False


def commit(
    storage: Storage, arrivals: Sequence[Arrival], logs: Sequence[RequestLog], outage: Outage
) -> list[StoreOutcome | Exception]:
    """Write ``logs``, then store ``arrivals`` in one transaction: each arrival's outcome, or the error for all."""
    if logs:
        try:
            storage.log_requests(logs)
        except StorageUnavailable as error:
            outage.failed(error)
        except Exception:  # losing log lines must not lose reports
            logger.exception("writing the request log failed")
    if not arrivals:
        return []
    try:
        outcomes: list[StoreOutcome | Exception] = storage.store_batch(arrivals)
    except StorageUnavailable as error:  # each report's 503 is logged where the request is answered
        outage.failed(error)
        return [error] * len(arrivals)
    except Exception as error:  # the whole transaction failed: every request learns it
        logger.exception("storing a batch of reports failed")
        return [error] * len(arrivals)
    outage.ended()
    return outcomes
