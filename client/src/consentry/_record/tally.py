"""Counting without locks: each thread adds to its own dictionary, the flusher takes differences.

A thread's counts only ever grow, and only that thread writes them, so no increment is lost whatever the
threads do. :meth:`Tallies.take` copies each thread's counts (an atomic copy) and returns what was added since
the previous take. Counters of threads that ended are taken one last time and forgotten.

Keys are event names (``str``) for the application's own events, the hot path, and ``(kind, key)`` pairs for
everything else (plugin events, commands, data categories, exceptions, runs and active time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

__all__ = ["Key", "Tallies"]

Key = str | tuple[str, str]


class Tallies:
    """The per-thread counters of one recorder."""

    def __init__(self, prefill: Iterable[str] = ()) -> None:
        self._prefill: dict[Key, int] = dict.fromkeys(prefill, 0)
        self.local = threading.local()
        self._lock = threading.Lock()
        # One entry per thread that counted: the thread, its counts, and what was already taken from them.
        self._threads: list[tuple[threading.Thread, dict[Key, int], dict[Key, int]]] = []
        self._on_first_use: Callable[[], None] | None = None

    def mine(self) -> dict[Key, int]:
        """The calling thread's counts, created on first use."""
        try:
            counts: dict[Key, int] = self.local.counts
        except AttributeError:
            counts = dict(self._prefill)
            self.local.counts = counts
            with self._lock:
                self._threads.append((threading.current_thread(), counts, {}))
                hook, self._on_first_use = self._on_first_use, None
            if hook is not None:
                hook()
        return counts

    def add(self, key: Key, n: int) -> None:
        """Add ``n`` to ``key`` in the calling thread's counts (the slow path: any key)."""
        counts = self.mine()
        counts[key] = counts.get(key, 0) + n

    def take(self) -> dict[Key, int]:
        """What every thread added since the last take, summed; zero differences are left out."""
        added: dict[Key, int] = {}
        with self._lock:
            alive = []
            for thread, counts, taken in self._threads:
                running = thread.is_alive()  # before the copy: an ended thread's copy is final
                snapshot = counts.copy()
                for key, value in snapshot.items():
                    delta = value - taken.get(key, 0)
                    if delta:
                        added[key] = added.get(key, 0) + delta
                if running:
                    alive.append((thread, counts, snapshot))
            self._threads = alive
        return added

    def reset(self, on_first_use: Callable[[], None] | None = None) -> None:
        """Forget everything (in a forked child: the parent's counts are the parent's to flush).

        The lock is replaced, not taken: the child may have inherited it held by a thread it does not have.
        ``on_first_use`` is called once, by the first thread to count afterwards.
        """
        self._lock = threading.Lock()
        self._threads = []
        self.local = threading.local()
        self._on_first_use = on_first_use
