"""The journal: what one flush took from memory, kept as one small file until it is merged into the local store.

A flush writes its counts here, never straight into SQLite, because a flush must

- never wait on another process: eight copies of a tool exiting together each write a file of their own, while a
  shared SQLite file would make all but one wait (or give up and lose their counts);
- never lose what it took from memory: the file is complete (written to a temporary name, flushed to disk and
  renamed) before the flush returns, so an interpreter that ends mid-flush loses nothing that was taken;
- never touch SQLite in a forked child, which may have inherited SQLite's locks held by a thread it does not have.

Merging a file into the store is :meth:`consentry._local.counts.Store.merge`: one transaction that adds the counts and
records the file's name, so a file left behind by a crash between that commit and the file's removal is never
added twice. A file that cannot be read back is moved aside as ``<name>.corrupt`` and counted as dropped.

Every file carries the *epoch* of the consent under which its counts were recorded (:attr:`Batch.epoch`): data
recorded under one answer never becomes sendable under another (see :mod:`consentry._consent.answers`).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import time
from dataclasses import dataclass, field

from consentry._local.files import make_private_dir, move_aside, write_atomic

TYPE_CHECKING = False  # not imported from typing: see pyproject.toml
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["FORMAT", "KINDS", "Batch", "CounterKey", "DamagedJournalError", "DayMeta", "Journal"]

#: The version of the journal file format.
FORMAT = 1
#: event: an event name; plugin: [plugin, event, level]; exception: a class name; command: [name, params, duration,
#: exit code, exception]; data: [kind, class, dtype, ndim, size]; runs and active_minutes: "".
KINDS = ("event", "plugin", "exception", "command", "data", "runs", "active_minutes")
CounterKey = tuple[datetime.date, str, str]
_NAME = re.compile(r"^[0-9]{20}-[0-9]{1,10}-[0-9a-f]{8}\.json$")
#: A journal file is a few kilobytes; anything much larger is not ours.
MAX_FILE_BYTES = 8 * 1024 * 1024


class DamagedJournalError(ValueError):
    """A journal file that is not a whole, well-formed batch (cut short, edited, or not ours)."""


@dataclass(frozen=True)
class DayMeta:
    """What was true of the install on a day: the application version and the binned system snapshot."""

    app_version: str
    system: Mapping[str, str] = field(default_factory=dict)
    dependencies: Mapping[str, str] = field(default_factory=dict)
    plugins: Mapping[str, str] = field(default_factory=dict)

    def to_document(self) -> dict[str, object]:
        """Everything but the version, as a JSON document."""
        return {"system": dict(self.system), "dependencies": dict(self.dependencies), "plugins": dict(self.plugins)}

    def to_json(self) -> str:
        """Canonical JSON of everything but the version."""
        return json.dumps(self.to_document(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_row(cls, app_version: str, meta: str) -> DayMeta:
        """Inverse of :meth:`to_json`; tolerant of damage (a damaged snapshot reads as empty)."""
        try:
            document = json.loads(meta)
            return cls(
                app_version,
                _str_map(document.get("system")),
                _str_map(document.get("dependencies")),
                _str_map(document.get("plugins")),
            )
        except (ValueError, AttributeError, RecursionError):
            return cls(app_version)


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


@dataclass(frozen=True)
class Batch:
    """The counts of one flush: per day, the install's snapshot and the counters added, under one consent epoch."""

    epoch: str
    metas: Mapping[datetime.date, DayMeta] = field(default_factory=dict)
    counters: Mapping[CounterKey, int] = field(default_factory=dict)

    @property
    def days(self) -> list[datetime.date]:
        """Every day the batch touches, in order."""
        return sorted(set(self.metas) | {day for day, _, _ in self.counters})

    def __bool__(self) -> bool:
        return bool(self.metas or self.counters)

    def to_bytes(self) -> bytes:
        """The journal file's content."""
        days: dict[str, dict[str, object]] = {}
        for day in self.days:
            meta = self.metas.get(day)
            days[day.isoformat()] = {
                "meta": None if meta is None else {"app_version": meta.app_version, **meta.to_document()},
                "counters": [[kind, key, n] for (d, kind, key), n in sorted(self.counters.items()) if d == day],
            }
        document = {"format": FORMAT, "epoch": self.epoch, "days": days}
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Batch:
        """Read a journal file's content; :class:`DamagedJournalError` if it is not a whole, well-formed batch."""
        try:
            document = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as error:
            raise DamagedJournalError(str(error)) from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise DamagedJournalError("not a journal file of this format")
        epoch, days = document.get("epoch"), document.get("days")
        if not isinstance(epoch, str) or not isinstance(days, dict):
            raise DamagedJournalError("no epoch or no days")
        metas: dict[datetime.date, DayMeta] = {}
        counters: dict[CounterKey, int] = {}
        for text, entry in days.items():
            try:
                day = datetime.date.fromisoformat(text)
            except ValueError:
                raise DamagedJournalError(f"{text!r} is not a day") from None
            if not isinstance(entry, dict) or not isinstance(entry.get("counters"), list):
                raise DamagedJournalError(f"a damaged day {text}")
            meta = entry.get("meta")
            if meta is not None:
                if not isinstance(meta, dict) or not isinstance(meta.get("app_version"), str):
                    raise DamagedJournalError(f"a damaged snapshot for {text}")
                metas[day] = DayMeta(
                    meta["app_version"],
                    _str_map(meta.get("system")),
                    _str_map(meta.get("dependencies")),
                    _str_map(meta.get("plugins")),
                )
            for item in entry["counters"]:
                if not (isinstance(item, list) and len(item) == 3):  # noqa: PLR2004 - kind, key, n
                    raise DamagedJournalError(f"a damaged counter on {text}")
                kind, key, n = item
                if kind not in KINDS or not isinstance(key, str) or type(n) is not int or n < 1:
                    raise DamagedJournalError(f"a damaged counter on {text}")
                counters[(day, kind, key)] = counters.get((day, kind, key), 0) + n
        return cls(epoch, metas, counters)


class Journal:
    """The journal folder of one application. Writing never waits on anyone; reading never changes anything."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, batch: Batch) -> Path:
        """Write ``batch`` as a new file, atomically (complete or absent, never partial); return its path."""
        make_private_dir(self.folder)
        name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(4).hex()}.json"
        path = self.folder / name
        write_atomic(path, batch.to_bytes())
        return path

    def files(self) -> list[Path]:
        """The journal files waiting to be merged, oldest first."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.folder) if _NAME.match(entry.name))
        except OSError:
            return []
        return [self.folder / name for name in names]

    def read(self, path: Path) -> Batch:
        """The batch in ``path``: :class:`DamagedJournalError` if it is damaged, ``OSError`` if it cannot be read."""
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise DamagedJournalError("too large to be a journal file")
        return Batch.from_bytes(data)

    @staticmethod
    def discard(path: Path) -> None:
        """Remove a merged file (a failure only leaves it to be recognised as merged next time)."""
        with contextlib.suppress(OSError):
            path.unlink()

    @staticmethod
    def set_aside(path: Path) -> None:
        """Keep a damaged file for inspection as ``<name>.corrupt``, out of the way of merges."""
        move_aside(path)

    def clear(self) -> int:
        """Delete every file, merged or not (telemetry switched off); return how many there were."""
        files = self.files()
        for path in files:
            self.discard(path)
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.folder):
                if entry.name.endswith((".corrupt", ".tmp")):
                    os.unlink(entry.path)  # noqa: PTH108 - os.scandir gives paths as text
        return len(files)
