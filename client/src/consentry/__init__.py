"""Consentry: opt-in usage telemetry that users can read, control and switch off.

Embedding it takes a manifest (the list of everything the application may collect) and two calls::

    import consentry

    telemetry = consentry.init("my_app/telemetry.toml")   # a no-op recorder until the user says yes
    telemetry.count("file.open")

See ``docs/embedding.md`` for asking for consent, plugins and command-line tools.

Importing this package costs next to nothing: each name below is imported from its module the first time it is
used, so an application that never reaches :func:`init` pays nothing for Consentry.
"""

from __future__ import annotations

from consentry._lazy import lazy_exports

# Not `from typing import TYPE_CHECKING`: importing typing would cost more than the whole package (mypy is told,
# in pyproject.toml, that this name is true).
TYPE_CHECKING = False

__version__ = "0.1.0"

#: Where each public name lives.
_EXPORTS = {
    "init": "consentry.api",
    "set_consent": "consentry.api",
    "set_plugin_consent": "consentry.api",
    "ConsentRequest": "consentry.asking",
    "LevelChoice": "consentry.asking",
    "ask_in_terminal": "consentry.asking",
    "consent_request": "consentry.asking",
    "CommandLineTool": "consentry.commandline",
    "cli_tool": "consentry.commandline",
    "Clock": "consentry.clock",
    "FixedClock": "consentry.clock",
    "SystemClock": "consentry.clock",
    "MODES": "consentry.consent",
    "Consent": "consentry.consent",
    "Decision": "consentry.consent",
    "Manifest": "consentry.manifest",
    "ManifestError": "consentry.manifest",
    "PluginManifest": "consentry.manifest",
    "load_manifest": "consentry.manifest",
    "load_plugin_manifest": "consentry.manifest",
    "NullRecorder": "consentry.recorder",
    "PluginRecorder": "consentry.recorder",
    "Recorder": "consentry.recorder",
    "AppSession": "consentry.session",
    "HttpTransport": "consentry.transport",
    "MemoryTransport": "consentry.transport",
    "Request": "consentry.transport",
    "Response": "consentry.transport",
    "Transport": "consentry.transport",
    "TransportError": "consentry.transport",
    "UsageEvents": "consentry.usage",
    "Report": "consentry.wire",
    "WireError": "consentry.wire",
    "decode": "consentry.wire",
    "encode": "consentry.wire",
}

__all__ = [
    "MODES",
    "AppSession",
    "Clock",
    "CommandLineTool",
    "Consent",
    "ConsentRequest",
    "Decision",
    "FixedClock",
    "HttpTransport",
    "LevelChoice",
    "Manifest",
    "ManifestError",
    "MemoryTransport",
    "NullRecorder",
    "PluginManifest",
    "PluginRecorder",
    "Recorder",
    "Report",
    "Request",
    "Response",
    "SystemClock",
    "Transport",
    "TransportError",
    "UsageEvents",
    "WireError",
    "__version__",
    "ask_in_terminal",
    "cli_tool",
    "consent_request",
    "decode",
    "encode",
    "init",
    "load_manifest",
    "load_plugin_manifest",
    "set_consent",
    "set_plugin_consent",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)

if TYPE_CHECKING:
    from consentry.api import init, set_consent, set_plugin_consent
    from consentry.asking import ConsentRequest, LevelChoice, ask_in_terminal, consent_request
    from consentry.clock import Clock, FixedClock, SystemClock
    from consentry.commandline import CommandLineTool, cli_tool
    from consentry.consent import MODES, Consent, Decision
    from consentry.manifest import Manifest, ManifestError, PluginManifest, load_manifest, load_plugin_manifest
    from consentry.recorder import NullRecorder, PluginRecorder, Recorder
    from consentry.session import AppSession
    from consentry.transport import HttpTransport, MemoryTransport, Request, Response, Transport, TransportError
    from consentry.usage import UsageEvents
    from consentry.wire import Report, WireError, decode, encode
