"""consentry.UsageEvents: Slicer's logUsageEvent(component, event), counted as the manifests allow."""

from __future__ import annotations

import datetime
import json
import os
import textwrap
import threading

import pytest

import consentry
import consentry._local.session
import consentry.wire
from consentry import Manifest, NullRecorder, PluginManifest, Recorder, UsageEvents
from consentry._local.counts import Store
from consentry._local.paths import Paths
from consentry.manifest import loads_manifest, loads_plugin_manifest
from consentry_examples.slicer_like import EXAMPLE

EXTENSIONS = {plugin.name: plugin for plugin in EXAMPLE.plugins}  # TotalSegmentator and SlicerIGT


def start(manifest: Manifest, home, environ, clock, level: str = "full", **plugins: bool) -> Recorder:
    consentry.set_consent(manifest, "on", level, home=home, environ=environ, clock=clock)
    for name, allow in plugins.items():
        consentry.set_plugin_consent(manifest, name, allow=allow, home=home, environ=environ)
    recorder = consentry.init(
        manifest, app_version="5.8.1", home=home, environ=environ, clock=clock, background=False, flush_at_exit=False
    )
    assert isinstance(recorder, Recorder)
    return recorder


def counted(recorder: Recorder, home, clock, kind: str = "event") -> dict[str, int]:
    recorder.flush()
    record = Store(Paths(home).app(recorder.manifest.name).store).read_day(clock.today())
    assert record is not None
    return {key: n for (k, key), n in record.counters.items() if k == kind}


def test_the_hosts_events_are_component_slash_event(slicer, home, environ, clock):
    recorder = start(slicer, home, environ, clock)
    usage = UsageEvents(recorder)
    usage.log_usage_event("SegmentEditor", "enter")
    usage.log_usage_event("SegmentEditor", "effect/threshold")
    usage.log_usage_event("SegmentEditor", "effect/threshold")
    usage.log_usage_event("SegmentEditor", "effect/scissors")  # not in the manifest
    usage.log_usage_event("Unknown", "enter")
    assert counted(recorder, home, clock) == {"SegmentEditor/enter": 1, "SegmentEditor/effect/threshold": 2}
    assert recorder.drops == {"not in the manifest": 2}


def test_an_extension_counts_under_its_own_manifest_only_when_the_user_allowed_it(slicer, home, environ, clock):
    recorder = start(slicer, home, environ, clock, TotalSegmentator=True)  # SlicerIGT: the default, deny
    usage = UsageEvents(recorder, [(EXTENSIONS["TotalSegmentator"], "2025.6.2"), (EXTENSIONS["SlicerIGT"], "2026.1.0")])
    usage.log_usage_event("TotalSegmentator", "segmentation/ct/total")
    usage.log_usage_event("TotalSegmentator", "segmentation/ct/total")
    usage.log_usage_event("TotalSegmentator", "segmentation/brain/everything")  # not in its manifest
    usage.log_usage_event("SlicerIGT", "OpenIGTLinkIF/connect")  # denied
    plugins = counted(recorder, home, clock, "plugin")
    assert {tuple(json.loads(key)): n for key, n in plugins.items()} == {
        ("TotalSegmentator", "segmentation/ct/total", "full"): 2
    }
    assert counted(recorder, home, clock) == {}  # never counted as the host's events
    assert recorder.drops == {"not in the manifest of plugin TotalSegmentator": 1}


def test_the_report_carries_extension_events_under_the_extension(slicer, home, environ, clock):
    recorder = start(slicer, home, environ, clock, TotalSegmentator=True)
    usage = UsageEvents(recorder)
    usage.add_extension(EXTENSIONS["TotalSegmentator"], "2025.6.2")
    usage.log_usage_event("TotalSegmentator", "segmentation/mr/total")
    usage.log_usage_event("Data", "enter")
    recorder.close()
    clock.advance(datetime.timedelta(days=1))
    session = consentry._local.session.AppSession.open(slicer, home=home, environ=environ, clock=clock)
    [basic, full] = [consentry.wire.decode(path.read_bytes()) for path in session.prepare_reports()]
    day = clock.today() - datetime.timedelta(days=1)
    assert basic.plugins == ()
    assert full.counts == {day: {"Data/enter": 1}}
    [plugin] = full.plugins
    assert (plugin.name, plugin.version, plugin.counts) == (
        "TotalSegmentator",
        "2025.6.2",
        {day: {"segmentation/mr/total": 1}},
    )


def test_below_the_level_of_the_events_nothing_is_counted(slicer, home, environ, clock):
    recorder = start(slicer, home, environ, clock, level="basic", TotalSegmentator=True)
    usage = UsageEvents(recorder, [(EXTENSIONS["TotalSegmentator"], "2025.6.2")])
    usage.log_usage_event("Data", "enter")
    usage.log_usage_event("TotalSegmentator", "segmentation/ct/total")
    assert counted(recorder, home, clock) == {}
    assert counted(recorder, home, clock, "plugin") == {}


def test_an_extension_not_in_the_public_index_is_never_counted(slicer, home, environ, clock):
    private = loads_plugin_manifest(
        textwrap.dedent(
            """
            manifest_version = 1
            [plugin]
            name = "HospitalInternalTool"
            host = "slicer-like"
            public = true
            [[events]]
            name = "run"
            level = "full"
            purpose = "How often it runs."
            """
        ),
        slicer,
    )
    recorder = start(slicer, home, environ, clock, HospitalInternalTool=True)
    usage = UsageEvents(recorder, [(private, "1.0")])
    usage.log_usage_event("HospitalInternalTool", "run")
    assert counted(recorder, home, clock, "plugin") == {}
    record = Store(Paths(home).app(slicer.name).store).read_day(clock.today())
    assert record is not None
    assert dict(record.meta.plugins) == {"other": "other"}  # listed, but not by name


def test_when_extensions_are_not_plugins_their_events_are_the_hosts(home, environ, clock):
    manifest = loads_manifest(
        textwrap.dedent(
            """
            manifest_version = 1
            [app]
            name = "host-app"
            consent_text = "host-app counts which features are used."
            [levels.basic]
            description = "Which features are used."
            endpoint = "https://telemetry.example.org/v1/reports/basic"
            [[events]]
            name = "TotalSegmentator/segmentation/ct/total"
            level = "basic"
            purpose = "How often the extension's CT segmentation runs."
            component = "TotalSegmentator"
            """
        )
    )
    extension = PluginManifest("TotalSegmentator", "host-app", public=True)
    recorder = start(manifest, home, environ, clock, level="basic")
    usage = UsageEvents(recorder, [(extension, "1.0")])
    usage.log_usage_event("TotalSegmentator", "segmentation/ct/total")
    assert counted(recorder, home, clock) == {"TotalSegmentator/segmentation/ct/total": 1}


HOSTILE = [
    ("x" * 1_000_000, "enter"),
    ("Data", "y" * 1_000_000),
    (os.fsdecode(b"\xff\xfe"), "enter"),
    ("Data'; DROP TABLE counters; --", "enter"),
    ("Data\x00", "enter"),
    (None, "enter"),
    ("Data", 42),
    (b"Data", b"enter"),
    ("TotalSegmentator", None),
]


@pytest.mark.parametrize(("component", "event"), HOSTILE, ids=range(len(HOSTILE)))
def test_nothing_an_extension_passes_raises_or_gets_counted(slicer, home, environ, clock, component, event):
    recorder = start(slicer, home, environ, clock, TotalSegmentator=True)
    usage = UsageEvents(recorder, [(EXTENSIONS["TotalSegmentator"], "2025.6.2")])
    usage.log_usage_event(component, event)
    assert counted(recorder, home, clock) == {}
    assert counted(recorder, home, clock, "plugin") == {}
    assert sum(recorder.drops.values()) == 1


def test_without_consent_everything_is_a_no_op(slicer, home, environ):
    recorder = consentry.init(slicer, home=home, environ=environ, background=False, flush_at_exit=False)
    assert isinstance(recorder, NullRecorder)
    usage = UsageEvents(recorder, [(EXTENSIONS["TotalSegmentator"], "2025.6.2")])
    usage.add_extension(EXTENSIONS["SlicerIGT"], "2026.1.0")
    usage.log_usage_event("Data", "enter")
    usage.log_usage_event("TotalSegmentator", "segmentation/ct/total")
    assert list(home.iterdir()) == []


def test_modules_on_many_threads_all_count(slicer, home, environ, clock):
    recorder = start(slicer, home, environ, clock, TotalSegmentator=True)
    usage = UsageEvents(recorder, [(EXTENSIONS["TotalSegmentator"], "2025.6.2")])

    def work() -> None:
        for _ in range(1000):
            usage.log_usage_event("Markups", "enter")
            usage.log_usage_event("TotalSegmentator", "segmentation/ct/lung_vessels")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counted(recorder, home, clock) == {"Markups/enter": 8000}
    assert list(counted(recorder, home, clock, "plugin").values()) == [8000]
