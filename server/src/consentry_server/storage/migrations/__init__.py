"""Schema changes as named, recorded steps: one registry, and the steps of each dialect in its own module.

Each backend lists its migrations in order (:data:`.sqlite.SQLITE`, :data:`.postgres.POSTGRESQL`); :func:`pending`
tells which are not yet recorded in the ``migrations`` table. A step is applied and recorded in one transaction, so
a crash leaves either both or neither. Steps are never edited once released: a change is a new step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Migration", "pending"]


@dataclass(frozen=True)
class Migration:
    """One named schema change."""

    name: str
    sql: str


def pending(migrations: Sequence[Migration], applied: set[str]) -> list[Migration]:
    """The migrations not yet applied, in order."""
    return [migration for migration in migrations if migration.name not in applied]
