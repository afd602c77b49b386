"""Usage events reported through the host, as 3D Slicer's ``logUsageEvent(component, event)`` does.

In such an application the host offers one function, and its modules and extensions call it: the host does not
know their events, the manifests do. :class:`UsageEvents` is that function's body::

    usage = consentry.UsageEvents(telemetry)  # the recorder that consentry.init returned
    usage.add_extension(total_segmentator_manifest, "2025.6.2")  # each installed extension with a manifest
    app.log_usage_event = usage.log_usage_event  # what modules and extensions call

    app.log_usage_event("SegmentEditor", "enter")  # the host's event "SegmentEditor/enter"
    app.log_usage_event("TotalSegmentator", "segmentation/ct/total")  # the extension's own event

A component that is a registered extension (when the host's manifest reports plugins at all) is counted through
that extension's recorder, under its own manifest: only when the extension is public and the user allowed it.
Anything else is counted as the host's event ``component/event``, if the host's manifest declares it. Everything
else is dropped and the drop counted; nothing here ever raises.
"""

from __future__ import annotations

import threading

from consentry._guard import guarded

TYPE_CHECKING = False  # not imported from typing: without consent this module must cost next to nothing
if TYPE_CHECKING:
    from collections.abc import Iterable

    from consentry._record.null import NullPluginRecorder, NullRecorder
    from consentry._record.recorder import PluginRecorder, Recorder
    from consentry.manifest import PluginManifest

__all__ = ["UsageEvents"]


class UsageEvents:
    """The host's ``log_usage_event(component, event)``, counting into ``recorder`` (see the module)."""

    def __init__(
        self,
        recorder: Recorder | NullRecorder,
        extensions: Iterable[tuple[PluginManifest, str]] = (),
    ) -> None:
        self._recorder = recorder
        manifest = getattr(recorder, "manifest", None)
        self._plugins = manifest is not None and manifest.plugins.policy != "none"
        self._extensions: dict[str, PluginRecorder | NullPluginRecorder] = {}
        self._lock = threading.Lock()
        for extension, version in extensions:
            self.add_extension(extension, version)

    @guarded(None)
    def add_extension(self, manifest: PluginManifest, version: str) -> None:
        """Register an installed extension: its events are then counted under its own manifest.

        The extension is listed as installed (by name only if the host's plugin policy makes it public).
        """
        if not self._recorder.enabled:
            return
        extension = self._recorder.plugin(manifest, version)
        with self._lock:
            self._extensions = {**self._extensions, manifest.name: extension}

    @guarded(None)
    def log_usage_event(self, component: str, event: str) -> None:
        """Count one use of ``event`` of ``component``; never raises, drops what no manifest allows."""
        recorder = self._recorder
        if not recorder.enabled:
            return
        if type(component) is not str or type(event) is not str:
            recorder.drop("bad usage event")  # type: ignore[union-attr] # enabled: a Recorder
            return
        extension = self._extensions.get(component) if self._plugins else None
        if extension is not None:
            extension.count(event)
        else:
            recorder.count(f"{component}/{event}")
