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

#: Where each public name lives. Everything else is in a public subpackage where users need it
#: (:mod:`consentry.testing`, :mod:`consentry.transport`, :mod:`consentry.wire`, :mod:`consentry.manifest`,
#: :mod:`consentry.qt`, :mod:`consentry.otel`, :mod:`consentry.cli`) or private (the modules under ``_``).
_EXPORTS = {
    "init": "consentry._api",
    "set_consent": "consentry._api",
    "set_plugin_consent": "consentry._api",
    "consent_request": "consentry._consent.asking",
    "cli_tool": "consentry._cli_tool.wrap",
    "Manifest": "consentry.manifest",
    "ManifestError": "consentry.manifest",
    "PluginManifest": "consentry.manifest",
    "load_manifest": "consentry.manifest",
    "load_plugin_manifest": "consentry.manifest",
    "NullRecorder": "consentry._record.null",
    "Recorder": "consentry._record.recorder",
    "UsageEvents": "consentry._record.usage",
}

__all__ = [
    "Manifest",
    "ManifestError",
    "NullRecorder",
    "PluginManifest",
    "Recorder",
    "UsageEvents",
    "__version__",
    "cli_tool",
    "consent_request",
    "init",
    "load_manifest",
    "load_plugin_manifest",
    "set_consent",
    "set_plugin_consent",
]


if not TYPE_CHECKING:  # to a type checker, a module-level __getattr__ would make every name exist
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)

if TYPE_CHECKING:
    from consentry._api import init, set_consent, set_plugin_consent
    from consentry._cli_tool.wrap import cli_tool
    from consentry._consent.asking import consent_request
    from consentry._record.null import NullRecorder
    from consentry._record.recorder import Recorder
    from consentry._record.usage import UsageEvents
    from consentry.manifest import Manifest, ManifestError, PluginManifest, load_manifest, load_plugin_manifest
