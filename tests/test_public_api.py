"""The public API of both packages is pinned: adding or removing a name is a deliberate change to this list."""

from __future__ import annotations

import importlib

import pytest

PINNED = {
    "consentry": [
        "AppSession",
        "Clock",
        "CommandLineTool",
        "Consent",
        "ConsentRequest",
        "Decision",
        "FixedClock",
        "HttpTransport",
        "LevelChoice",
        "MODES",
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
    ],
    "consentry.wire": [
        "Activity",
        "Command",
        "DATA_SIZES",
        "DURATIONS",
        "DataCategory",
        "MAX_COUNT",
        "MAX_REPORT_BYTES",
        "OTHER",
        "Plugin",
        "Report",
        "SCHEMA_VERSION",
        "SYSTEM_FIELDS",
        "WireError",
        "decode",
        "encode",
        "from_checked",
        "from_json",
        "json_schema",
        "to_json",
    ],
    "consentry.certificates": [
        "ALGORITHM",
        "BadKeyError",
        "CERTIFICATE_FORMAT",
        "CertificateError",
        "INSTALL_HINT",
        "NotAuthenticError",
        "UnreadableCertificateError",
        "VerifierMissingError",
        "canonical_bytes",
        "encode_key",
        "key_document",
        "key_id",
        "parse_public_key",
        "read_certificate",
        "verify_certificate",
    ],
    "consentry.manifest": [
        "CommandSpec",
        "EventSpec",
        "Level",
        "MANIFEST_VERSION",
        "Manifest",
        "ManifestError",
        "NONE_LEVEL",
        "PluginManifest",
        "PluginPolicy",
        "load_any_manifest",
        "load_manifest",
        "load_plugin_manifest",
        "loads_any_manifest",
        "loads_manifest",
        "loads_plugin_manifest",
        "parse_manifest",
        "parse_plugin_manifest",
    ],
    "consentry_server": ["ConfigError", "Settings", "__version__", "create_app", "load_settings"],
}


@pytest.mark.parametrize("module_name", sorted(PINNED))
def test_all_is_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PINNED[module_name])


@pytest.mark.parametrize("module_name", sorted(PINNED))
def test_every_exported_name_exists_and_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        value = getattr(module, name)
        if callable(value) and not isinstance(value, type(module)):
            assert (value.__doc__ or "").strip(), f"{module_name}.{name} has no docstring"


def test_versions_agree() -> None:
    import consentry
    import consentry_server

    assert consentry.__version__ == consentry_server.__version__
