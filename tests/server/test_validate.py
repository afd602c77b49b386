"""``validate_report``: a pure function of a decoded report and the catalog of its application."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace

import pytest

from consentry.manifest import Manifest, PluginManifest
from consentry.wire import Activity, Command, DataCategory, Plugin, Report, encode
from consentry_server.ingest.catalog import Catalog
from consentry_server.ingest.validate import Rejection, Validated, encode_checked, validate_report
from support.mutations import small_report

TODAY = datetime.date(2026, 11, 18)
DAY = TODAY - datetime.timedelta(days=1)
ADD_IMAGE = "napari:layer:add_image"


def report(manifest: Manifest, level: str, **fields: object) -> Report:
    return small_report(manifest, level, DAY, **fields)


@pytest.fixture
def catalogs(
    manifests: dict[str, Manifest],
    napari_plugins: dict[str, PluginManifest],
    slicer_extensions: dict[str, PluginManifest],
) -> dict[str, Catalog]:
    plugins = {"napari-like": napari_plugins, "slicer-like": slicer_extensions, "stripepy-like": {}}
    return {
        name: Catalog(manifest, {manifest.consent_version: manifest}, plugins[name])
        for name, manifest in manifests.items()
    }


def check(catalog: Catalog, candidate: Report, path_level: str | None = None, **options: int) -> Manifest:
    """The manifest the report matched (or the rejection raised)."""
    return validate(catalog, candidate, path_level, **options).manifest


def validate(catalog: Catalog, candidate: Report, path_level: str | None = None, **options: int) -> Validated:
    return validate_report(candidate, catalog, path_level=path_level or candidate.level, today=TODAY, **options)


# ---- accepted --------------------------------------------------------------------------------------------------
ACCEPTED = {
    "basic": {
        "system": {"os": "linux", "os_version": "ubuntu-24", "arch": "x86_64", "python": "3.12", "installer": "pip"},
        "activity": {DAY: Activity(runs=3, active_minutes=40)},
    },
    "middle": {
        "system": {"cpus": "5-8", "memory": "8-16GB", "gpu": "nvidia", "screens": "2", "screen_size": "1920-2559"},
        "dependencies": {"numpy": "2.1.0", "qtpy": "2.4.1", "vispy": "0.14.3"},
        "plugins": (Plugin("napari-blobs", "0.3.0"), Plugin("other", "other")),
    },
    "full": {
        "counts": {DAY: {ADD_IMAGE: 4, "napari:window:file:drag_and_drop": 1}},
        "exceptions": {DAY: {"ValueError": 2}},
        "data": (DataCategory(DAY, "image", "ndarray", "uint8", 3, "MEDIUM", 2),),
        "plugins": (Plugin("napari-blobs", "0.3.0", {DAY: {"detect": 5}}),),
    },
}


@pytest.mark.parametrize("level", ["basic", "middle", "full"])
def test_a_report_using_only_its_level_is_accepted(catalogs, napari, level):
    candidate = report(napari, level, **ACCEPTED[level])
    assert check(catalogs["napari-like"], candidate) is napari


def test_stripepy_command_with_allowed_values_and_flags_is_accepted(catalogs, stripepy):
    command = Command(DAY, "call", "1-10min", 0, 2, {"format": "mcool", "resolution": "10000", "force": True})
    assert check(catalogs["stripepy-like"], report(stripepy, "basic", commands=(command,))) is stripepy


def test_listed_plugin_of_a_listed_policy_is_accepted(catalogs, slicer):
    plugins = (Plugin("TotalSegmentator", "2.4.0", {DAY: {"segmentation/ct/total": 1}}), Plugin("other", "other"))
    candidate = report(slicer, "full", plugins=plugins, counts={DAY: {"Data/enter": 2}})
    assert check(catalogs["slicer-like"], candidate) is slicer


def test_tomorrow_is_accepted_within_future_days(catalogs, napari):
    tomorrow = TODAY + datetime.timedelta(days=1)
    assert check(catalogs["napari-like"], report(napari, "basic", days=(tomorrow,)), future_days=1) is napari


def test_the_oldest_day_of_the_retention_window_is_accepted(catalogs, napari):
    oldest = TODAY - datetime.timedelta(days=60)
    assert check(catalogs["napari-like"], report(napari, "basic", days=(oldest,)), retention_days=60) is napari


# ---- rejected --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bad:
    app: str
    level: str
    fields: dict[str, object]
    code: str
    field: str
    path_level: str | None = None
    options: dict[str, int] | None = None


D = DAY.isoformat()
REJECTIONS = {
    "level_mismatch": Bad("napari-like", "basic", {}, "level_mismatch", "level", path_level="middle"),
    "unknown_level": Bad("napari-like", "secret", {}, "unknown_level", "level"),
    "day_in_future": Bad(
        "napari-like",
        "basic",
        {"days": (TODAY + datetime.timedelta(days=2),)},
        "day_in_future",
        "days[0]",
        options={"future_days": 1},
    ),
    "day_in_future_second_day": Bad(
        "napari-like",
        "basic",
        {"days": (DAY, TODAY + datetime.timedelta(days=1))},
        "day_in_future",
        "days[1]",
        options={"future_days": 0},
    ),
    "day_too_old": Bad(
        "napari-like",
        "basic",
        {"days": (TODAY - datetime.timedelta(days=61),)},
        "day_too_old",
        "days[0]",
        options={"retention_days": 60},
    ),
    "system_field_of_another_level": Bad(
        "napari-like",
        "basic",
        {"system": {"os": "linux", "memory": "8-16GB"}},
        "field_not_in_manifest",
        "system.memory",
    ),
    "system_field_of_a_lower_level": Bad(
        "napari-like", "middle", {"system": {"os": "linux"}}, "field_not_in_manifest", "system.os"
    ),
    "dependency_not_in_manifest": Bad(
        "napari-like",
        "middle",
        {"dependencies": {"scipy": "1.14.0"}},
        "dependency_not_in_manifest",
        "dependencies.scipy",
    ),
    "dependency_of_another_level": Bad(
        "napari-like", "basic", {"dependencies": {"numpy": "2.1.0"}}, "dependency_not_in_manifest", "dependencies.numpy"
    ),
    "activity_at_a_level_without_it": Bad(
        "napari-like", "middle", {"activity": {DAY: Activity(runs=1)}}, "part_not_in_manifest", "activity"
    ),
    "exceptions_at_a_level_without_them": Bad(
        "napari-like", "basic", {"exceptions": {DAY: {"KeyError": 1}}}, "part_not_in_manifest", "exceptions"
    ),
    "data_at_a_level_without_it": Bad(
        "napari-like",
        "middle",
        {"data": (DataCategory(DAY, "image", "ndarray", "uint8", 2, "SMALL", 1),)},
        "part_not_in_manifest",
        "data",
    ),
    "plugin_listing_at_a_level_without_plugins": Bad(
        "napari-like", "basic", {"plugins": (Plugin("other", "other"),)}, "part_not_in_manifest", "plugins[0]"
    ),
    "event_not_in_manifest": Bad(
        "napari-like",
        "full",
        {"counts": {DAY: {"viewer.secret": 1}}},
        "event_not_in_manifest",
        f"counts.{D}.viewer.secret",
    ),
    "event_wrong_level": Bad(
        "napari-like", "basic", {"counts": {DAY: {ADD_IMAGE: 1}}}, "event_wrong_level", f"counts.{D}.{ADD_IMAGE}"
    ),
    "listed_plugin_without_a_manifest_sends_counts": Bad(
        "slicer-like",
        "full",
        {"plugins": (Plugin("SlicerMorph", "1.0", {DAY: {"morph": 1}}),)},
        "unknown_plugin",
        "plugins[0].name",
    ),
    "plugin_event_not_in_its_manifest": Bad(
        "napari-like",
        "full",
        {"plugins": (Plugin("napari-blobs", "1.0", {DAY: {"undeclared": 1}}),)},
        "event_not_in_manifest",
        f"plugins[0].counts.{D}.undeclared",
    ),
    "command_of_an_app_without_commands": Bad(
        "napari-like",
        "full",
        {"commands": (Command(DAY, "call", "<1s", 0, 1),)},
        "command_not_in_manifest",
        "commands[0].name",
    ),
    "command_not_in_manifest": Bad(
        "stripepy-like",
        "basic",
        {"commands": (Command(DAY, "call", "<1s", 0, 1), Command(DAY, "rm", "<1s", 0, 1))},
        "command_not_in_manifest",
        "commands[1].name",
    ),
    "param_not_in_manifest": Bad(
        "stripepy-like",
        "basic",
        {"commands": (Command(DAY, "call", "<1s", 0, 1, {"output": True}),)},
        "param_not_in_manifest",
        "commands[0].params.output",
    ),
    "param_value_not_allowed": Bad(
        "stripepy-like",
        "basic",
        {"commands": (Command(DAY, "call", "<1s", 0, 1, {"format": "bam"}),)},
        "param_value_not_allowed",
        "commands[0].params.format",
    ),
    "value_for_a_given_only_param": Bad(
        "stripepy-like",
        "basic",
        {"commands": (Command(DAY, "call", "<1s", 0, 1, {"nproc": "8"}),)},
        "param_value_not_allowed",
        "commands[0].params.nproc",
    ),
}


@pytest.mark.parametrize("bad", REJECTIONS.values(), ids=REJECTIONS.keys())
def test_rejections_name_a_code_and_the_field(catalogs, manifests, bad):
    candidate = report(manifests[bad.app], bad.level, **bad.fields)
    with pytest.raises(Rejection) as caught:
        check(catalogs[bad.app], candidate, bad.path_level, **(bad.options or {}))
    rejection = caught.value
    assert (rejection.status, rejection.code, rejection.field) == (400, bad.code, bad.field)
    assert rejection.message
    assert rejection.to_json() == {"error": {"code": bad.code, "field": bad.field, "message": rejection.message}}


# ---- manifest versions -----------------------------------------------------------------------------------------
def two_versions(napari: Manifest) -> tuple[Manifest, Catalog]:
    """A catalog whose first version did not declare ``ADD_IMAGE``; the latest does."""
    old = replace(napari, events={name: spec for name, spec in napari.events.items() if name != ADD_IMAGE})
    assert old.consent_version != napari.consent_version
    return old, Catalog(napari, {old.consent_version: old, napari.consent_version: napari})


def test_a_known_consent_version_is_checked_against_that_version(napari):
    old, catalog = two_versions(napari)
    candidate = report(napari, "full", consent_version=old.consent_version, counts={DAY: {ADD_IMAGE: 1}})
    with pytest.raises(Rejection) as caught:
        check(catalog, candidate)
    assert caught.value.code == "event_not_in_manifest"
    assert check(catalog, replace(candidate, counts={DAY: {"napari:layer:add_points": 1}})) is old


def test_an_unknown_consent_version_is_checked_against_the_latest_manifest(napari):
    _, catalog = two_versions(napari)
    candidate = report(napari, "full", consent_version="0123456789abcdef", counts={DAY: {ADD_IMAGE: 1}})
    assert check(catalog, candidate) is napari
    with pytest.raises(Rejection) as caught:
        check(catalog, replace(candidate, counts={DAY: {"viewer.secret": 1}}))
    assert caught.value.code == "event_not_in_manifest"


# ---- the first violation is the one reported -------------------------------------------------------------------
def test_the_level_is_checked_before_the_days(catalogs, napari):
    candidate = report(napari, "basic", days=(TODAY + datetime.timedelta(days=5),))
    with pytest.raises(Rejection) as caught:
        check(catalogs["napari-like"], candidate, "full")
    assert caught.value.code == "level_mismatch"


@pytest.mark.parametrize(
    ("app", "level", "plugins"),
    [
        ("napari-like", "middle", (Plugin("napari-private", "1.0"),)),
        ("napari-like", "middle", (Plugin("other", "1.0"), Plugin("napari-secret", "2.0"))),
        ("slicer-like", "full", (Plugin("SlicerPrivate", "1.0"),)),
    ],
    ids=["a plugin the server does not know", "two of them", "not in the listed index"],
)
def test_plugins_that_are_not_public_are_stored_as_other(catalogs, manifests, app, level, plugins):
    validated = validate(catalogs[app], report(manifests[app], level, plugins=plugins))
    assert validated.report.plugins == (Plugin("other", "other"),)


def test_a_plugin_that_is_not_public_loses_its_counts(catalogs, napari):
    private = Plugin("napari-private", "1.0", {DAY: {"secret-feature": 3}})
    public_level_without_listing = validate(catalogs["napari-like"], report(napari, "full", plugins=(private,)))
    assert public_level_without_listing.report.plugins == ()  # full does not list plugins: nothing at all


# ---- encode_checked: what adapters store ------------------------------------------------------------------------
def encode_checked_options(max_bytes: int) -> dict[str, object]:
    return {"today": TODAY, "future_days": 1, "retention_days": 60, "max_bytes": max_bytes}


def test_encode_checked_gives_the_bytes_native_ingest_stores(catalogs):
    candidate = report(catalogs["napari-like"].latest, "full", counts={DAY: {ADD_IMAGE: 2}})
    body = encode_checked(candidate, catalogs["napari-like"], **encode_checked_options(1 << 20))
    assert body == encode(candidate)


def test_encode_checked_refuses_a_report_larger_than_the_limit_once_encoded(catalogs):
    candidate = report(catalogs["napari-like"].latest, "full", counts={DAY: {ADD_IMAGE: 2}})
    size = len(encode(candidate))
    assert encode_checked(candidate, catalogs["napari-like"], **encode_checked_options(size)) == encode(candidate)
    with pytest.raises(Rejection) as refused:
        encode_checked(candidate, catalogs["napari-like"], **encode_checked_options(size - 1))
    assert (refused.value.status, refused.value.code) == (413, "too_large")


def test_encode_checked_refuses_what_the_manifest_does_not_allow(catalogs):
    candidate = report(catalogs["napari-like"].latest, "full", counts={DAY: {"not:declared": 1}})
    with pytest.raises(Rejection) as refused:
        encode_checked(candidate, catalogs["napari-like"], **encode_checked_options(1 << 20))
    assert (refused.value.status, refused.value.code) == (400, "event_not_in_manifest")
