"""The pure parts of the OTLP mapping: binning resource attributes, exception names, days of timestamps."""

from __future__ import annotations

import datetime
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from consentry.manifest import Manifest
from consentry.wire.schema import SYSTEM_FIELDS
from consentry_server.ingest.catalog import Catalog
from consentry_server.ingest.otlp.metrics import event_name
from consentry_server.ingest.otlp.resource import (
    Source,
    bin_arch,
    bin_os,
    bin_os_version,
    bin_python,
    describe_resource,
)
from consentry_server.ingest.otlp.spans import exception_type, utc_day


@pytest.mark.parametrize(
    ("os_type", "expected"),
    [("linux", "linux"), ("darwin", "macos"), ("WINDOWS", "windows"), ("freebsd", "freebsd"), ("z_os", "other")],
)
def test_os_type_is_the_wire_family(os_type, expected):
    assert bin_os(os_type) == expected
    assert bin_os(None) is None


@pytest.mark.parametrize(
    ("family", "version", "expected"),
    [
        ("windows", "10", "10"),
        ("windows", "11.0.22631", "11"),
        ("macos", "23.1.0", "14"),  # platform.release() on macOS gives Darwin's version
        ("macos", "19.6.0", "10"),
        ("macos", "25.0.0", "26"),
        ("macos", "14.5", "14"),  # ... and some detectors macOS's own
        ("macos", "26.1", "26"),
        ("macos", "3.2", None),
        ("linux", "6.11.0-1015-azure", None),  # a kernel release, not a distribution's version
        ("freebsd", "14.1-RELEASE", None),
        ("windows", "not a version", None),
        ("windows", None, None),
    ],
)
def test_os_version_is_kept_only_where_it_is_unambiguous(family, version, expected):
    assert bin_os_version(family, version) == expected


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("x86_64", "x86_64"),
        ("AMD64", "x86_64"),
        ("aarch64", "arm64"),
        ("arm64", "arm64"),
        ("i686", "x86"),
        ("m68k", "other"),
    ],
)
def test_host_arch_in_both_spellings(arch, expected):
    assert bin_arch(arch) == expected


@pytest.mark.parametrize(
    ("runtime", "version", "expected"),
    [
        ("CPython", "3.13.5", ("3.13", "cpython")),
        ("cpython", "3.10", ("3.10", "cpython")),
        ("PyPy", "3.10.14", ("3.10", "pypy")),
        ("CPython", "three", (None, "cpython")),
        ("go", "1.22.0", (None, None)),
        (None, "3.12.0", (None, None)),
    ],
)
def test_python_from_the_process_runtime(runtime, version, expected):
    assert bin_python(runtime, version) == expected


@given(st.sampled_from(["x86_64", "AMD64", "armv7l", "ppc64le", "weird"]), st.sampled_from(["linux", "darwin", "qnx"]))
def test_binned_values_are_always_values_of_the_wire_schema(arch, os_type):
    assert SYSTEM_FIELDS["arch"].check(bin_arch(arch), "arch")
    assert SYSTEM_FIELDS["os"].check(bin_os(os_type), "os")


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ("ValueError", "ValueError"),
        ("stripepy.io.UnreadableFileError", "UnreadableFileError"),
        ("java.lang.IllegalStateException", "IllegalStateException"),
        ("Outer.Inner", "Inner"),
        ("cannot open /home/alice/x.hic", "Other"),
        ("", "Other"),
    ],
)
def test_only_the_exception_class_name_is_kept(reported, expected):
    assert exception_type(reported) == expected


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_utc_day_of_a_timestamp(nanos):
    seconds = nanos // 1_000_000_000
    expected = datetime.date(1970, 1, 1) + datetime.timedelta(seconds=seconds)
    assert utc_day(nanos) == expected


def resource(**items: str) -> Resource:
    return Resource(attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in items.items()])


def test_a_resource_says_only_what_the_manifest_collects(napari: Manifest):
    catalog = Catalog(napari, {napari.consent_version: napari})
    described = describe_resource(
        resource(
            **{
                "service.name": "napari-like",
                "service.version": "0.5.0 (dev build)",
                "os.type": "darwin",
                "os.version": "24.0.0",
                "host.arch": "arm64",
                "host.name": "alice-mbp",
                "process.runtime.name": "CPython",
                "process.runtime.version": "3.12.4",
                "dependency.NumPy.version": "2.1.0",
                "dependency.vispy.version": "not a version!",
                "dependency.scipy.version": "1.14.0",
            }
        ),
        {"napari-like": catalog}.get,
    )
    assert described == Source(
        catalog,
        app_version="other",  # not a version the wire format can carry
        # napari-like's levels collect no python_impl; numpy is spelled as its manifest spells it.
        system={"os": "macos", "os_version": "15", "arch": "arm64", "python": "3.12"},
        dependencies={"numpy": "2.1.0"},
    )


def test_a_service_that_is_not_registered_is_named_back():
    lookups: list[str] = []

    def lookup(name: str) -> Catalog | None:
        lookups.append(name)

    assert describe_resource(resource(**{"service.name": "unknown"}), lookup) == "unknown"
    assert describe_resource(resource(**{"service.name": "x'; DROP TABLE apps"}), lookup) == "x'; DROP TABLE apps"
    assert describe_resource(resource(), lookup) == ""
    assert lookups == ["unknown"]  # a name no application can have is not even looked up


def test_metric_names_match_events_without_regard_to_case(slicer: Manifest):
    assert event_name(slicer, "SampleData/load") == "SampleData/load"
    assert event_name(slicer, "sampledata/load") == "SampleData/load"  # as the Python SDK sends it
    assert event_name(slicer, "sampledata/unload") is None
    twins = replace(slicer, events={**slicer.events, "sampledata/LOAD": slicer.events["SampleData/load"]})
    assert event_name(twins, "sampledata/load") is None  # which one it counts cannot be told
