"""Group commit: one writer thread stores reports in batches, so durability does not cost throughput.

Requests hand their validated report to :meth:`BatchWriter.submit` and wait for its future. The writer thread
takes everything queued (up to ``max_batch``), stores it in one transaction that is durably committed, and then
resolves every future of the batch: a request is answered 2xx only after its report is on disk, and a disk
flush is shared by all the reports that arrived meanwhile. The queue is bounded; when it is full, :meth:`submit`
refuses at once (the endpoint answers 503 with ``Retry-After``) instead of letting requests pile up. Refused
requests are logged in the same way, in batches, without addresses or payloads.
"""

from __future__ import annotations

import collections
import queue
import threading
from concurrent.futures import Future

from consentry_server.commit.batches import MAX_BATCH, Outage, commit, take
from consentry_server.storage.base import Arrival, RequestLog, Storage, StoreOutcome

__all__ = ["BatchWriter", "Overloaded"]


class Overloaded(Exception):  # noqa: N818 - a state, not an error of the server
    """The writer's queue is full: the client should come back later."""


_STOP = object()


class BatchWriter:
    """The single writer of a storage: batches reports (and request logs) into durable transactions."""

    def __init__(self, storage: Storage, *, max_batch: int = MAX_BATCH, max_queue: int = 20_000) -> None:
        self.storage = storage
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[Arrival, Future[StoreOutcome]] | object] = queue.Queue(max_queue)
        self._logs: collections.deque[RequestLog] = collections.deque(maxlen=100_000)
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.batches = 0
        self.stored = 0
        self.start()

    def start(self) -> None:
        """Start the writer thread, if it is not running (an application may be started again after a stop)."""
        with self._guard:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="consentry-writer", daemon=True)
                self._thread.start()

    def submit(self, arrival: Arrival) -> Future[StoreOutcome]:
        """Queue ``arrival``; the future resolves once it is committed. :class:`Overloaded` if the queue is full."""
        future: Future[StoreOutcome] = Future()
        try:
            self._queue.put_nowait((arrival, future))
        except queue.Full:
            raise Overloaded("the write queue is full") from None
        return future

    def log(self, entry: RequestLog) -> None:
        """Queue a line of the request log (written with the next batch, or by :meth:`close`)."""
        self._logs.append(entry)
        if self._queue.empty():
            self._queue.put_nowait(None)  # wake the writer; a None item carries nothing

    def close(self, timeout: float = 10.0) -> None:
        """Store what is queued, then stop (:meth:`start` starts again)."""
        with self._guard:
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout)

    def _run(self) -> None:
        outage = Outage()
        stopping = False
        while not stopping:
            items = take(self._queue.get, self._queue.get_nowait, self.max_batch)
            stopping = any(item is _STOP for item in items)
            work = [item for item in items if isinstance(item, tuple)]
            logs = []
            while self._logs:
                logs.append(self._logs.popleft())
            outcomes = commit(self.storage, [arrival for arrival, _ in work], logs, outage)
            if work:
                self.batches += 1
            for (_, future), outcome in zip(work, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    self.stored += 1
                    future.set_result(outcome)
