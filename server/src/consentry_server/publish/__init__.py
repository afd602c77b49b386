"""Publish: from stored reports to the figures anyone may read.

Aggregation is storage's (SQL); here are the privacy protections applied before anything leaves (pure functions),
the release into the public store with its privacy ledger, and signed usage certificates.
"""

__all__: list[str] = []
