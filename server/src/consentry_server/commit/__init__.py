"""Commit: accepted reports become durable, many per transaction (group commit).

One loop (:mod:`.batches`) takes what is queued and stores it in one transaction; it runs in a thread of the serving
process (:class:`.storer.ThreadStorer`) or in a storing process of its own beside it (:mod:`.process`).
"""

__all__: list[str] = []
