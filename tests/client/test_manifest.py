"""Manifest v1: the example manifests, per-field errors, file errors, the consent version and collected().

The error table starts from one valid manifest and changes one thing; each case must raise ManifestError
naming the file and listing the field that was changed among its problems.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consentry.manifest import (
    Manifest,
    ManifestError,
    PluginManifest,
    load_any_manifest,
    load_manifest,
    load_plugin_manifest,
    loads_manifest,
    loads_plugin_manifest,
    parse_manifest,
    parse_plugin_manifest,
)
from consentry.manifest.parse import MAX_MANIFEST_BYTES
from support.paths import EXAMPLES, NAPARI, SLICER

APP_MANIFESTS = sorted(EXAMPLES.glob("*/manifest.toml"))
PLUGIN_MANIFESTS = sorted(
    [*EXAMPLES.glob("napari_like/plugins/*.toml"), *EXAMPLES.glob("slicer_like/extensions/*.toml")]
)


def _ids(paths: list[Path]) -> list[str]:
    return [f"{path.parent.name}/{path.name}" for path in paths]


def _host(plugin_path: Path) -> Manifest:
    """The application manifest of the example a plugin manifest belongs to."""
    return load_manifest(plugin_path.parent.parent / "manifest.toml")


# ---- the examples ------------------------------------------------------------------------------------------
def test_every_example_is_found():
    assert len(APP_MANIFESTS) == 3
    assert len(PLUGIN_MANIFESTS) == 4


@pytest.mark.parametrize("path", APP_MANIFESTS, ids=_ids(APP_MANIFESTS))
def test_example_app_manifest_parses(path: Path):
    manifest = load_manifest(path)
    assert manifest.source == str(path)
    assert manifest.level_names[0] == "none"
    assert len(manifest.levels) >= 2
    assert [level.rank for level in manifest.levels] == list(range(len(manifest.levels)))
    assert all(level.endpoint and level.host for level in manifest.levels[1:])
    assert manifest.events or manifest.commands
    assert len(manifest.consent_version) == 16
    assert isinstance(load_any_manifest(path), Manifest)


@pytest.mark.parametrize("path", APP_MANIFESTS, ids=_ids(APP_MANIFESTS))
def test_example_app_manifest_round_trips_through_to_document(path: Path):
    manifest = load_manifest(path)
    again = parse_manifest(manifest.to_document(), source=manifest.source)
    assert again == manifest
    assert again.consent_version == manifest.consent_version


@pytest.mark.parametrize("path", APP_MANIFESTS, ids=_ids(APP_MANIFESTS))
def test_example_app_manifest_round_trips_through_json_without_sorting_keys(path: Path):
    manifest = load_manifest(path)
    text = json.dumps(manifest.to_document())
    again = parse_manifest(json.loads(text), source=manifest.source)
    assert again.consent_version == manifest.consent_version
    assert again.levels == manifest.levels
    assert dict(again.events) == dict(manifest.events)
    assert dict(again.commands) == dict(manifest.commands)
    assert again == manifest


@pytest.mark.parametrize("path", APP_MANIFESTS, ids=_ids(APP_MANIFESTS))
def test_level_order_is_preserved_through_a_json_round_trip(path: Path):
    # The order of the [levels] tables is the ladder itself (least data first); JSON objects keep it as long as
    # nobody sorts the keys.
    manifest = load_manifest(path)
    document = json.loads(json.dumps(manifest.to_document()))
    assert list(document["levels"]) == list(manifest.level_names)
    again = parse_manifest(document)
    assert again.level_names == manifest.level_names
    assert [level.rank for level in again.levels] == [level.rank for level in manifest.levels]


def test_sorting_level_keys_would_change_the_ladder(napari: Manifest):
    # Why the round trip above must not sort keys: napari's ladder is none < basic < middle < full, and sorted
    # keys put 'none' last, which is refused rather than silently re-ranked.
    assert napari.level_names == ("none", "basic", "middle", "full")
    document = json.loads(json.dumps(napari.to_document(), sort_keys=True))
    with pytest.raises(ManifestError) as caught:
        parse_manifest(document)
    assert "levels.none" in _fields(caught.value)


@pytest.mark.parametrize("path", PLUGIN_MANIFESTS, ids=_ids(PLUGIN_MANIFESTS))
def test_example_plugin_manifest_parses_and_round_trips(path: Path):
    host = _host(path)
    plugin = load_plugin_manifest(path, host)
    assert plugin.host == host.name
    assert plugin.public
    assert plugin.events
    assert all(event.level in host.level_names for event in plugin.events.values())
    assert plugin.collected(host, host.level_names[-1]) == {f"event:{name}" for name in plugin.events}
    assert isinstance(load_any_manifest(path), PluginManifest)
    again = parse_plugin_manifest(json.loads(json.dumps(plugin.to_document())), host, source=plugin.source)
    assert again == plugin
    assert again.consent_version == plugin.consent_version


# ---- per-field errors ----------------------------------------------------------------------------------------
def _base() -> dict[str, Any]:
    """A valid manifest using every section; each error case changes one thing in it."""
    return {
        "manifest_version": 1,
        "app": {
            "name": "acme-viewer",
            "title": "Acme viewer",
            "homepage": "https://acme.example.org",
            "contact": "telemetry@acme.example.org",
            "consent_text": "Acme viewer may send anonymous usage statistics, only if you agree.",
        },
        "levels": {
            "none": {"description": "Nothing is collected."},
            "basic": {
                "description": "Versions and your operating system.",
                "endpoint": "https://basic.telemetry.acme.example.org/v1/reports",
                "system": ["os", "python"],
                "activity": True,
            },
            "full": {
                "description": "Which features you use.",
                "endpoint": "https://full.telemetry.acme.example.org/v1/reports",
                "system": ["cpus"],
                "dependencies": ["numpy"],
                "plugins": True,
                "exceptions": True,
            },
        },
        "events": [
            {"name": "viewer.open", "level": "basic", "purpose": "How often the viewer opens."},
            {"name": "viewer.save", "level": "full", "purpose": "How often files are saved.", "component": "io"},
        ],
        "commands": [
            {
                "name": "convert",
                "level": "full",
                "purpose": "Which formats are converted.",
                "params": {"format": ["csv", "json"], "force": []},
            }
        ],
        "plugins": {"policy": "listed", "public": ["acme-extra"], "default": "allow"},
    }


Change = Callable[[dict[str, Any]], None]


def _set(*keys: Any, to: Any) -> Change:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = to

    return change


def _drop(*keys: Any) -> Change:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return change


def _append(*keys: Any, item: Any) -> Change:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in keys:
            target = target[key]
        target.append(copy.deepcopy(item))

    return change


def _levels(*names: str) -> Change:
    """Keep only the levels ``names``, in that order."""

    def change(document: dict[str, Any]) -> None:
        document["levels"] = {name: document["levels"][name] for name in names}

    return change


def _rename_level(old: str, new: str) -> Change:
    def change(document: dict[str, Any]) -> None:
        document["levels"] = {new if name == old else name: body for name, body in document["levels"].items()}

    return change


def _both(*changes: Change) -> Change:
    def change(document: dict[str, Any]) -> None:
        for each in changes:
            each(document)

    return change


def _fields(error: ManifestError) -> list[str]:
    return [field for field, _ in error.problems]


DESCRIPTION = ("levels", "basic", "description")
# With no events, commands or plugin policy, a problem with the levels is the only problem.
ONLY_LEVELS = _both(_set("events", to=[]), _set("commands", to=[]), _drop("plugins"))


def _endpoint(url: str) -> Change:
    return _set("levels", "basic", "endpoint", to=url)


ENDPOINT = "levels.basic.endpoint"


def case(name: str, change: Change, field: str) -> Any:
    return pytest.param(change, field, id=name)


ERRORS = [
    case("missing-manifest-version", _drop("manifest_version"), "manifest_version"),
    case("manifest-version-2", _set("manifest_version", to=2), "manifest_version"),
    case("manifest-version-string", _set("manifest_version", to="1"), "manifest_version"),
    case("manifest-version-true", _set("manifest_version", to=True), "manifest_version"),
    case("missing-app", _drop("app"), "app"),
    case("missing-app-name", _drop("app", "name"), "app.name"),
    case("app-name-upper-case", _set("app", "name", to="Acme-Viewer"), "app.name"),
    case("app-name-space", _set("app", "name", to="acme viewer"), "app.name"),
    case("app-name-65-chars", _set("app", "name", to="a" * 65), "app.name"),
    case("missing-consent-text", _drop("app", "consent_text"), "app.consent_text"),
    case("empty-consent-text", _set("app", "consent_text", to=""), "app.consent_text"),
    case("blank-consent-text", _set("app", "consent_text", to=" \n\t "), "app.consent_text"),
    case("control-character", _set(*DESCRIPTION, to="Versions\x07 and more."), "levels.basic.description"),
    case("nul-character", _set(*DESCRIPTION, to="Versions\x00"), "levels.basic.description"),
    case("ansi-escape", _set(*DESCRIPTION, to="\x1b[2J\x1b[32mNothing\x1b[0m is sent."), "levels.basic.description"),
    case("bidi-override", _set(*DESCRIPTION, to="Sends \u202enothing\u202c."), "levels.basic.description"),
    case("bidi-isolate", _set(*DESCRIPTION, to="Sends \u2067nothing\u2069."), "levels.basic.description"),
    case("control-in-consent-text", _set("app", "consent_text", to="Agree?\x1b[8m hidden"), "app.consent_text"),
    case("unknown-top-level-key", _set("telemetry", to={"enabled": True}), "telemetry"),
    case("unknown-app-key", _set("app", "owner", to="me"), "app.owner"),
    case("unknown-level-key", _set("levels", "basic", "hostname", to=True), "levels.basic.hostname"),
    case("level-upper-case", _rename_level("basic", "Basic"), "levels.Basic"),
    case("none-not-first", _levels("basic", "none", "full"), "levels.none"),
    case("only-none-level", _levels("none"), "levels"),
    case("no-level-at-all", _both(ONLY_LEVELS, _set("levels", to={})), "levels"),
    case("missing-levels", _both(ONLY_LEVELS, _drop("levels")), "levels"),
    case("missing-endpoint", _drop("levels", "basic", "endpoint"), ENDPOINT),
    case("http-to-public-host", _endpoint("http://basic.telemetry.acme.example.org/"), ENDPOINT),
    case("ftp-url", _endpoint("ftp://telemetry.acme.example.org/reports"), ENDPOINT),
    case("url-with-password", _endpoint("https://user:secret@acme.example.org/r"), ENDPOINT),
    case("url-with-user", _endpoint("https://user@acme.example.org/r"), ENDPOINT),
    case("url-with-fragment", _endpoint("https://acme.example.org/r#basic"), ENDPOINT),
    case("url-with-space", _endpoint("https://acme.example.org/my reports"), ENDPOINT),
    case("url-without-host", _endpoint("https:///v1/reports"), ENDPOINT),
    case("invalid-host-underscore", _endpoint("https://acme_telemetry.example.org/"), ENDPOINT),
    case("invalid-host-dash", _endpoint("https://-acme.example.org/"), ENDPOINT),
    case("invalid-port", _endpoint("https://acme.example.org:99999/"), ENDPOINT),
    case("bad-homepage", _set("app", "homepage", to="javascript:alert(1)"), "app.homepage"),
    case("unknown-system-field", _append("levels", "basic", "system", item="hostname"), "levels.basic.system[2]"),
    case("system-field-at-two-levels", _append("levels", "full", "system", item="os"), "levels.full.system"),
    case(
        "duplicate-event",
        _append("events", item={"name": "viewer.open", "level": "full", "purpose": "Again."}),
        "events[2].name",
    ),
    case("event-at-unknown-level", _set("events", 0, "level", to="middle"), "events[0].level"),
    case("event-at-level-none", _set("events", 0, "level", to="none"), "events[0].level"),
    case("event-without-level", _drop("events", 0, "level"), "events[0].level"),
    case("event-name-with-space", _set("events", 0, "name", to="viewer open"), "events[0].name"),
    case("event-name-129-chars", _set("events", 0, "name", to="e" * 129), "events[0].name"),
    case("missing-purpose", _drop("events", 0, "purpose"), "events[0].purpose"),
    case("purpose-too-long", _set("events", 0, "purpose", to="x" * 301), "events[0].purpose"),
    case("unknown-event-key", _set("events", 1, "owner", to="me"), "events[1].owner"),
    case(
        "duplicate-command",
        _append("commands", item={"name": "convert", "level": "basic", "purpose": "Again."}),
        "commands[1].name",
    ),
    case(
        "bad-param-value",
        _set("commands", 0, "params", "format", to=["csv", "my file.csv"]),
        "commands[0].params.format[1]",
    ),
    case("param-values-not-a-list", _set("commands", 0, "params", "format", to="csv"), "commands[0].params.format"),
    case("plugins-policy-unknown", _set("plugins", "policy", to="everything"), "plugins.policy"),
    case(
        "plugins-public-with-policy-none",
        _both(_set("plugins", "policy", to="none"), _drop("levels", "full", "plugins")),
        "plugins.public",
    ),
    case("plugins-policy-without-level", _drop("levels", "full", "plugins"), "plugins.policy"),
    case("level-plugins-with-policy-none", _set("plugins", to={"policy": "none"}), "levels.full.plugins"),
    case("other-in-plugins-public", _set("plugins", "public", to=["acme-extra", "other"]), "plugins.public[1]"),
    case("plugins-default-unknown", _set("plugins", "default", to="ask"), "plugins.default"),
]


def _write(tmp_path: Path, document: dict[str, Any], name: str = "acme-manifest.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_base_manifest_is_valid(tmp_path: Path):
    manifest = load_manifest(_write(tmp_path, _base()))
    assert manifest.level_names == ("none", "basic", "full")
    assert set(manifest.events) == {"viewer.open", "viewer.save"}
    assert manifest.commands["convert"].params == {"format": ("csv", "json"), "force": ()}
    assert manifest.is_public_plugin("acme-extra")


@pytest.mark.parametrize(("change", "field"), ERRORS)
def test_manifest_error_names_the_file_and_the_field(tmp_path: Path, change: Change, field: str):
    document = _base()
    change(document)
    path = _write(tmp_path, document)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert caught.value.source == str(path)
    assert "acme-manifest.json" in str(caught.value)
    assert field in _fields(caught.value), caught.value.problems


def test_toml_manifest_error_names_the_file_and_the_field(tmp_path: Path):
    text = NAPARI.read_text(encoding="utf-8").replace('name = "napari-like"', 'name = "Napari Like"')
    path = tmp_path / "napari-manifest.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert caught.value.problems == [("app.name", caught.value.problems[0][1])]
    assert str(caught.value).startswith(f"{path}: app.name: ")


@pytest.mark.parametrize(
    "endpoint",
    ["http://localhost:8000/v1/reports", "http://127.0.0.1:8000/v1/reports", "http://[::1]/v1/reports"],
)
def test_plain_http_is_allowed_to_loopback_only(endpoint: str):
    document = _base()
    document["levels"]["basic"]["endpoint"] = endpoint
    assert parse_manifest(document).level("basic").endpoint == endpoint


def test_every_problem_is_reported_at_once(tmp_path: Path):
    document = _base()
    document["app"]["name"] = "Acme Viewer"
    del document["events"][1]["purpose"]
    document["levels"]["full"]["system"].append("hostname")
    path = _write(tmp_path, document)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert _fields(caught.value) == ["app.name", "levels.full.system[1]", "events[1].purpose"]
    assert len(str(caught.value).splitlines()) == 3
    assert all(line.startswith(f"{path}: ") for line in str(caught.value).splitlines())


def test_a_document_that_is_not_a_table_is_refused():
    with pytest.raises(ManifestError) as caught:
        parse_manifest(["not", "a", "table"], source="list.json")  # type: ignore[arg-type]
    assert _fields(caught.value) == ["(file)"]
    assert "list.json" in str(caught.value)


# ---- file errors ----------------------------------------------------------------------------------------------
def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing-manifest.toml"


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "directory-manifest.toml"
    path.mkdir()
    return path


def _not_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "latin1-manifest.toml"
    path.write_bytes(NAPARI.read_bytes().replace(b"volunteers", b"b\xe9n\xe9voles"))
    return path


def _oversized(tmp_path: Path) -> Path:
    path = tmp_path / "huge-manifest.toml"
    path.write_bytes(NAPARI.read_bytes() + b"#" * MAX_MANIFEST_BYTES + b"\n")
    return path


def _invalid_toml(tmp_path: Path) -> Path:
    path = tmp_path / "broken-manifest.toml"
    path.write_text('manifest_version = 1\n[app\nname = "x"\n', encoding="utf-8")
    return path


def _invalid_json(tmp_path: Path) -> Path:
    path = tmp_path / "broken-manifest.json"
    path.write_text('{"manifest_version": 1, "app": {', encoding="utf-8")
    return path


def _json_array(tmp_path: Path) -> Path:
    path = tmp_path / "array-manifest.json"
    path.write_text("[1, 2]", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "make",
    [_missing, _directory, _not_utf8, _oversized, _invalid_toml, _invalid_json, _json_array],
    ids=["missing", "directory", "not-utf8", "oversized", "invalid-toml", "invalid-json", "json-array"],
)
def test_unreadable_file_gives_manifest_error_naming_it(tmp_path: Path, make: Callable[[Path], Path]):
    path = make(tmp_path)
    for load in (load_manifest, load_plugin_manifest, load_any_manifest):
        with pytest.raises(ManifestError) as caught:
            load(path)
        assert caught.value.source == str(path)
        assert str(caught.value).startswith(f"{path}: (file): ")
        assert _fields(caught.value) == ["(file)"]


def test_toml_and_json_texts_parse_to_the_same_manifest(napari: Manifest):
    as_json = loads_manifest(json.dumps(napari.to_document()), fmt="json")
    as_toml = loads_manifest(NAPARI.read_text(encoding="utf-8"))
    assert as_json == as_toml == dataclasses.replace(napari, source="<string>")


# ---- consent version ------------------------------------------------------------------------------------------
def _version(*changes: Change) -> str:
    document = _base()
    for change in changes:
        change(document)
    return parse_manifest(document).consent_version


def _add_event(name: str, level: str) -> Change:
    return _append("events", item={"name": name, "level": level, "purpose": "A new event."})


SAME_VERSION = [
    pytest.param(_set(*DESCRIPTION, to="Completely reworded description."), id="level-description"),
    pytest.param(_set("levels", "none", "description", to="Not a thing."), id="none-description"),
    pytest.param(_set("events", 0, "purpose", to="A different purpose."), id="event-purpose"),
    pytest.param(_set("events", 1, "component", to="files"), id="event-component"),
    pytest.param(_set("commands", 0, "purpose", to="Reworded."), id="command-purpose"),
    pytest.param(_set("app", "consent_text", to="A new consent text, friendlier."), id="consent-text"),
    pytest.param(_set("app", "title", to="Acme Viewer Pro"), id="title"),
    pytest.param(_set("app", "homepage", to="https://www.acme.example.org/"), id="homepage"),
    pytest.param(_endpoint("https://basic.telemetry.acme.example.org/v2/x"), id="url-path"),
    pytest.param(_set("events", to=list(reversed(_base()["events"]))), id="event-order"),
    pytest.param(_set("levels", "basic", "system", to=["python", "os"]), id="system-order"),
]

NEW_VERSION = [
    pytest.param(_add_event("viewer.close", "full"), id="add-event"),
    pytest.param(_append("levels", "basic", "system", item="arch"), id="add-system-field"),
    pytest.param(_set("events", 1, "level", to="basic"), id="move-event-down"),
    pytest.param(_set("events", 0, "level", to="full"), id="move-event-up"),
    pytest.param(_append("commands", 0, "params", "format", item="xml"), id="add-param-value"),
    pytest.param(_set("commands", 0, "params", "verbose", to=[]), id="add-param"),
    pytest.param(_endpoint("https://collector.acme.example.org/v1/reports"), id="endpoint-host"),
    pytest.param(_append("levels", "full", "dependencies", item="scipy"), id="add-dependency"),
    pytest.param(_set("levels", "full", "data", to=True), id="add-feature"),
    pytest.param(_append("plugins", "public", item="acme-more"), id="add-public-plugin"),
    pytest.param(_set("plugins", "default", to="deny"), id="plugin-default"),
    pytest.param(_drop("events", 1), id="remove-event"),
]


@pytest.mark.parametrize("change", SAME_VERSION)
def test_rewording_keeps_the_consent_version(change: Change):
    assert _version(change) == _version()


@pytest.mark.parametrize("change", NEW_VERSION)
def test_collecting_something_else_changes_the_consent_version(change: Change):
    assert _version(change) != _version()


def test_consent_version_is_16_hex_digits_and_stable():
    version = _version()
    assert len(version) == 16
    assert set(version) <= set("0123456789abcdef")
    assert _version() == version


# ---- collected(level) -----------------------------------------------------------------------------------------
def _manifest(*changes: Change) -> Manifest:
    document = _base()
    for change in changes:
        change(document)
    return parse_manifest(document)


def test_collected_is_cumulative_up_the_ladder():
    manifest = _manifest()
    basic, full = manifest.collected("basic"), manifest.collected("full")
    assert basic < full
    assert manifest.collected() == full
    assert manifest.collected("none") == frozenset()
    assert {"event:viewer.open", "system:os", "host:basic.telemetry.acme.example.org"} <= basic
    assert {"event:viewer.save", "command:convert", "host:full.telemetry.acme.example.org"} <= full - basic


def test_event_added_at_full_grows_full_but_not_basic():
    before, after = _manifest(), _manifest(_add_event("viewer.close", "full"))
    assert after.collected("basic") == before.collected("basic")
    assert after.collected("full") == before.collected("full") | {"event:viewer.close"}


def test_event_moved_from_full_down_to_basic_keeps_full_the_same():
    before, after = _manifest(), _manifest(_set("events", 1, "level", to="basic"))
    assert after.collected("full") == before.collected("full")
    assert after.collected("basic") == before.collected("basic") | {"event:viewer.save"}
    assert after.consent_version != before.consent_version


def test_rewording_keeps_collected():
    before = _manifest()
    after = _manifest(_set(*DESCRIPTION, to="New words."), _set("events", 0, "purpose", to="New words."))
    assert all(after.collected(name) == before.collected(name) for name in before.level_names)


def test_collected_of_an_unknown_level_raises_key_error():
    with pytest.raises(KeyError):
        _manifest().collected("middle")


# ---- plugin manifests -----------------------------------------------------------------------------------------
PLUGIN = """
manifest_version = 1

[plugin]
name = "{name}"
host = "{host}"
public = true

[[events]]
name = "detect"
level = "{level}"
purpose = "How often detection runs."
"""


def test_plugin_manifest_for_another_host_is_refused(slicer: Manifest):
    text = PLUGIN.format(name="napari-blobs", host="napari-like", level="full")
    with pytest.raises(ManifestError) as caught:
        loads_plugin_manifest(text, slicer, source="napari-blobs.toml")
    assert _fields(caught.value) == ["plugin.host"]
    assert "napari-blobs.toml" in str(caught.value)


def test_plugin_event_at_a_level_the_host_does_not_have_is_refused(slicer: Manifest):
    text = PLUGIN.format(name="SlicerIGT", host="slicer-like", level="middle")
    with pytest.raises(ManifestError) as caught:
        loads_plugin_manifest(text, slicer, source="SlicerIGT.toml")
    assert _fields(caught.value) == ["events[0].level"]
    # Without the host, any well-formed level name is accepted: it can only be checked against a host.
    assert loads_plugin_manifest(text).events["detect"].level == "middle"


def test_plugin_event_at_level_none_is_refused(slicer: Manifest):
    text = PLUGIN.format(name="SlicerIGT", host="slicer-like", level="none")
    with pytest.raises(ManifestError) as caught:
        loads_plugin_manifest(text, slicer)
    assert _fields(caught.value) == ["events[0].level"]


def test_plugin_named_other_is_refused(napari: Manifest):
    text = PLUGIN.format(name="other", host="napari-like", level="full")
    for host in (napari, None):
        with pytest.raises(ManifestError) as caught:
            loads_plugin_manifest(text, host, source="other.toml")
        assert _fields(caught.value) == ["plugin.name"]


def test_plugin_manifest_from_the_example_host_matches_its_file(napari: Manifest):
    path = EXAMPLES / "napari_like" / "plugins" / "napari-blobs.toml"
    plugin = load_plugin_manifest(path, napari)
    assert plugin.name == "napari-blobs"
    assert plugin.collected(napari, "middle") == frozenset()
    assert plugin.collected(napari, "full") == {"event:detect", "event:export_csv"}
    with pytest.raises(ManifestError) as caught:
        load_plugin_manifest(path, load_manifest(SLICER))
    assert _fields(caught.value) == ["plugin.host"]
