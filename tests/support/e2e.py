"""The small application of the end-to-end tests, and helpers to drive it."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

from consentry.testing import FixedClock

__all__ = ["EXTRA_EVENT", "manifest_file", "run", "two_level_manifest", "yesterday_noon"]


def two_level_manifest(app: str, url: str, *, basic: str = "", full: str = "", events: str = "") -> str:
    """The manifest of a small test application sending to ``url``: levels basic and full, one event each.

    ``basic`` and ``full`` are more lines of those levels (``activity = true``...), ``events`` more events.
    """
    return f"""
manifest_version = 1

[app]
name = "{app}"
consent_text = "The {app} test application counts two kinds of events."

[levels.basic]
description = "Operating system and Python version, and how often files are opened."
endpoint = "{url}/v1/reports/basic"
system = ["os", "python"]
{basic}
[levels.full]
description = "Everything in basic, plus which export formats are used."
endpoint = "{url}/v1/reports/full"
{full}
[[events]]
name = "file.open"
level = "basic"
purpose = "How often files are opened."

[[events]]
name = "export.png"
level = "full"
purpose = "How often PNG export is used."
{events}"""


EXTRA_EVENT = """
[[events]]
name = "export.gif"
level = "basic"
purpose = "How often GIF export is used (added in a later release)."
"""


def manifest_file(tmp_path: Path, url: str, *, extra: str = "", name: str = "manifest.toml") -> Path:
    path = tmp_path / name
    path.write_text(two_level_manifest("e2e-app", url, events=extra), encoding="utf-8")
    return path


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)


def yesterday_noon() -> FixedClock:
    day = datetime.date.today() - datetime.timedelta(days=1)  # noqa: DTZ011 - reports cover the user's local days
    return FixedClock(datetime.datetime.combine(day, datetime.time(12), datetime.timezone.utc))


#: Server settings that lift the per-source and per-reporter rate limits: the load of a test comes from 127.0.0.1.
NO_RATE_LIMITS = """
source_rate_per_minute = 1000000
source_burst = 1000000
reporter_rate_per_minute = 1000000
reporter_burst = 1000000
"""


def utc_yesterday() -> datetime.date:
    """The server's yesterday (UTC): the newest day a report about a complete day can cover."""
    return datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1)
