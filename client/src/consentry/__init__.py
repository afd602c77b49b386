"""Consentry: opt-in usage telemetry that users can read, control and switch off.

Embedding it takes a manifest (the list of everything the application may collect) and two calls::

    import consentry

    telemetry = consentry.init("my_app/telemetry.toml")   # a no-op recorder until the user says yes
    telemetry.count("file.open")

See ``docs/embedding.md`` for asking for consent, plugins and command-line tools.
"""

from consentry.api import init, set_consent, set_plugin_consent
from consentry.clock import Clock, FixedClock, SystemClock
from consentry.consent import MODES, Consent, Decision
from consentry.manifest import Manifest, ManifestError, PluginManifest, load_manifest, load_plugin_manifest
from consentry.recorder import NullRecorder, PluginRecorder, Recorder
from consentry.session import AppSession
from consentry.transport import HttpTransport, MemoryTransport, Request, Response, Transport, TransportError
from consentry.wire import Report, WireError, decode, encode

__version__ = "0.1.0"

__all__ = [
    "MODES",
    "AppSession",
    "Clock",
    "Consent",
    "Decision",
    "FixedClock",
    "HttpTransport",
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
    "WireError",
    "__version__",
    "decode",
    "encode",
    "init",
    "load_manifest",
    "load_plugin_manifest",
    "set_consent",
    "set_plugin_consent",
]
