"""The recorders without consent: every method is a cheap no-op, and nothing touches the disk or the network.

Kept apart from :mod:`consentry._record.recorder` so that :func:`consentry.init` imports almost nothing when it returns
one.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not imported from typing: this module must stay cheap to import (see pyproject.toml)
if TYPE_CHECKING:
    from collections.abc import Mapping

    from consentry._record.spans import CommandSpan
    from consentry.manifest import PluginManifest

__all__ = ["NullPluginRecorder", "NullRecorder"]


class NullPluginRecorder:
    """A plugin recorder that does nothing."""

    enabled = False

    def count(self, event: str, n: int = 1) -> None:
        """Do nothing."""


class NullRecorder:
    """The recorder without consent: every method is a cheap no-op and nothing touches the disk."""

    enabled = False

    def __init__(self, reason: str = "telemetry is off") -> None:
        self.reason = reason

    def count(self, event: str, n: int = 1) -> None:
        """Do nothing."""

    def flush(self) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""

    def plugin(self, manifest: PluginManifest, version: str) -> NullPluginRecorder:  # noqa: ARG002 - same signature as Recorder.plugin
        """A plugin recorder that does nothing."""
        return NullPluginRecorder()

    @property
    def drops(self) -> dict[str, int]:
        """Nothing is dropped when nothing is recorded."""
        return {}

    def command(self, name: str, **params: object) -> CommandSpan:
        """A span that records nothing; the block's exceptions still propagate."""
        from consentry._record.spans import CommandSpan  # noqa: PLC0415 - see the imports

        return CommandSpan(None, name, params)

    def record_command(
        self,
        name: str,
        params: Mapping[str, object],
        *,
        duration: float,
        exit_code: int = 0,
        exception: str | None = None,
    ) -> None:
        """Do nothing."""

    def data(self, kind: str, data: object) -> None:
        """Do nothing."""

    def mark_active(self) -> None:
        """Do nothing."""

    def supply_system(self, **values: str) -> None:
        """Do nothing."""

    def supply_screens(self, count: int, width: int | None = None, scale: float | None = None) -> None:
        """Do nothing."""
