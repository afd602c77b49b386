"""Recording with consent (counts, drops, plugins, command spans, data categories) and the local SQLite store."""

from __future__ import annotations

import datetime
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import consentry
import consentry.testing
from consentry import NullRecorder, Recorder, load_plugin_manifest
from consentry._local.counts import DayRecord, Store
from consentry._local.paths import Paths
from consentry.manifest import loads_plugin_manifest
from consentry.wire import MAX_COUNT
from consentry.wire.bins import size_category

ROOT = Path(__file__).resolve().parents[2]
NAPARI = ROOT / "examples" / "consentry_examples" / "napari_like" / "manifest.toml"
PLUGINS = NAPARI.parent / "plugins"
ADD_IMAGE = "napari:layer:add_image"
ADD_LABELS = "napari:layer:add_labels"


def _start(manifest, level, home, environ, clock, *, mode="on", app_version="0.5.6"):
    consentry.set_consent(manifest, mode, level, home=home, environ=environ, clock=clock)
    recorder = consentry.init(
        manifest,
        app_version=app_version,
        home=home,
        environ=environ,
        clock=clock,
        background=False,
        flush_at_exit=False,
    )
    assert isinstance(recorder, Recorder)
    return recorder


@pytest.fixture
def start(home, environ, clock):
    """Consent to ``level`` of a manifest and return its recorder."""

    def start(manifest, level, **options):
        return _start(manifest, level, home, environ, clock, **options)

    return start


@pytest.fixture
def stored(home, clock):
    """The counters of one kind stored today for an application."""

    def stored(app, kind):
        return _keys(_day(home, app, clock.today()), kind)

    return stored


def _store(home: Path, app: str) -> Store:
    return Store(Paths(home).app(app).store)


def _day(home: Path, app: str, day: datetime.date) -> DayRecord:
    record = _store(home, app).read_day(day)
    assert record is not None
    return record


def _keys(record: DayRecord, kind: str) -> dict[str, int]:
    return {key: n for (k, key), n in record.counters.items() if k == kind}


# ---- counting -----------------------------------------------------------------------------------------------------
def test_count_adds_in_memory_and_flush_writes_to_the_store(napari, home, environ, clock):
    recorder = _start(napari, "full", home, environ, clock)
    store = Paths(home).app(napari.name).store
    recorder.count(ADD_IMAGE)
    recorder.count(ADD_IMAGE, 2)
    recorder.count(ADD_LABELS)
    assert not store.exists()  # counting does no I/O
    recorder.flush()
    record = _day(home, napari.name, clock.today())
    assert _keys(record, "event") == {ADD_IMAGE: 3, ADD_LABELS: 1}
    assert record.meta.app_version == "0.5.6"
    assert recorder.drops == {}


def test_several_flushes_add_up(napari, home, environ, clock):
    recorder = _start(napari, "full", home, environ, clock)
    for n in (1, 2, 3):
        recorder.count(ADD_IMAGE, n)
        recorder.flush()
    recorder.flush()  # nothing new: changes nothing
    second = consentry.init(
        napari, app_version="0.5.6", home=home, environ=environ, clock=clock, background=False, flush_at_exit=False
    )
    second.count(ADD_IMAGE, 10)
    second.close()
    assert _keys(_day(home, napari.name, clock.today()), "event") == {ADD_IMAGE: 16}


def test_counts_are_kept_per_day(napari, home, environ, clock):
    recorder = _start(napari, "full", home, environ, clock)
    recorder.count(ADD_IMAGE, 2)
    recorder.flush()
    clock.advance(datetime.timedelta(days=1))
    recorder.count(ADD_IMAGE, 5)
    recorder.flush()
    assert _keys(_day(home, napari.name, datetime.date(2026, 11, 18)), "event") == {ADD_IMAGE: 2}
    assert _keys(_day(home, napari.name, datetime.date(2026, 11, 19)), "event") == {ADD_IMAGE: 5}


BAD_CALLS = [
    ((("napari:layer:add_everything",), "not in the manifest")),
    ((("",), "not in the manifest")),
    (((42,), "not in the manifest")),
    (((None,), "not in the manifest")),
    ((([ADD_IMAGE],), "not in the manifest")),
    ((({ADD_IMAGE: 1},), "not in the manifest")),
    (((b"napari:layer:add_image",), "not in the manifest")),
    (((ADD_IMAGE, 0), "bad count")),
    (((ADD_IMAGE, -1), "bad count")),
    (((ADD_IMAGE, -(10**30)), "bad count")),
    (((ADD_IMAGE, True), "bad count")),
    (((ADD_IMAGE, False), "bad count")),
    (((ADD_IMAGE, 1.0), "bad count")),
    (((ADD_IMAGE, 2.5), "bad count")),
    (((ADD_IMAGE, float("nan")), "bad count")),
    (((ADD_IMAGE, "3"), "bad count")),
    (((ADD_IMAGE, None), "bad count")),
    (((ADD_IMAGE, MAX_COUNT + 1), "bad count")),
    (((ADD_IMAGE, 10**30), "bad count")),
    (((ADD_IMAGE, 2**64), "bad count")),
]


@pytest.mark.parametrize(("args", "reason"), BAD_CALLS, ids=[repr(args) for args, _ in BAD_CALLS])
def test_bad_calls_are_dropped_by_reason_and_never_raise(napari, start, stored, args, reason):
    recorder = start(napari, "full")
    recorder.count(ADD_IMAGE, 4)
    recorder.count(*args)
    assert recorder.drops == {reason: 1}
    recorder.flush()
    assert stored(napari.name, "event") == {ADD_IMAGE: 4}


def test_events_above_the_consented_level_are_dropped(napari, home, environ, clock):
    recorder = _start(napari, "middle", home, environ, clock)
    recorder.count(ADD_IMAGE)
    recorder.count(ADD_LABELS, 3)
    recorder.count("napari:layer:add_nothing")
    assert recorder.drops == {"above the consented level": 2, "not in the manifest": 1}
    recorder.flush()
    assert _keys(_day(home, napari.name, clock.today()), "event") == {}


def test_a_count_at_the_largest_allowed_value_is_kept(napari, home, environ, clock):
    recorder = _start(napari, "full", home, environ, clock)
    recorder.count(ADD_IMAGE, MAX_COUNT)
    recorder.flush()
    assert recorder.drops == {}
    assert _keys(_day(home, napari.name, clock.today()), "event") == {ADD_IMAGE: MAX_COUNT}


# ---- no consent: nothing at all ---------------------------------------------------------------------------------
def _use_everything(recorder, napari_blobs) -> None:
    recorder.count(ADD_IMAGE)
    recorder.count("not-an-event", -1)
    recorder.plugin(napari_blobs, "0.3.1").count("detect")
    recorder.data("image", b"\x00" * 10)
    with recorder.command("open"):
        pass
    recorder.flush()
    recorder.close()


def test_without_consent_init_returns_a_null_recorder_and_writes_nothing(napari, home, environ, clock, tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    recorder = consentry.init(napari, home=home, environ=environ, clock=clock, background=False, flush_at_exit=False)
    assert isinstance(recorder, NullRecorder)
    assert recorder.enabled is False
    _use_everything(recorder, load_plugin_manifest(PLUGINS / "napari-blobs.toml", napari))
    assert recorder.drops == {}
    assert list(home.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_null_recorders_command_span_lets_exceptions_through(napari, home, environ, clock):
    recorder = consentry.init(napari, home=home, environ=environ, clock=clock, background=False, flush_at_exit=False)
    error = ValueError("boom")
    with pytest.raises(ValueError, match="boom") as raised, recorder.command("open"):
        raise error
    assert raised.value is error
    assert list(home.iterdir()) == []


def test_after_saying_no_init_writes_nothing_more(napari, home, environ, clock):
    consentry.set_consent(napari, "off", home=home, environ=environ, clock=clock)
    before = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    recorder = consentry.init(napari, home=home, environ=environ, clock=clock, background=False, flush_at_exit=False)
    assert isinstance(recorder, NullRecorder)
    _use_everything(recorder, load_plugin_manifest(PLUGINS / "napari-blobs.toml", napari))
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == before
    assert not Paths(home).app(napari.name).store.exists()


def test_a_kill_switch_after_consent_makes_init_write_nothing(napari, home, environ, clock):
    consentry.set_consent(napari, "on", home=home, environ=environ, clock=clock)
    before = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    switched_off = {**environ, "DO_NOT_TRACK": "1"}
    recorder = consentry.init(
        napari, home=home, environ=switched_off, clock=clock, background=False, flush_at_exit=False
    )
    assert isinstance(recorder, NullRecorder)
    assert "DO_NOT_TRACK" in recorder.reason
    _use_everything(recorder, load_plugin_manifest(PLUGINS / "napari-blobs.toml", napari))
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == before


# ---- plugins ------------------------------------------------------------------------------------------------------
def _plugin_key(plugin: str, event: str, level: str = "full") -> str:
    return json.dumps([plugin, event, level])


def test_a_public_declared_plugin_records_its_events(napari, home, environ, clock):
    recorder = _start(napari, "full", home, environ, clock)
    blobs = recorder.plugin(load_plugin_manifest(PLUGINS / "napari-blobs.toml", napari), "0.3.1")
    assert blobs.enabled is True
    blobs.count("detect")
    blobs.count("detect", 2)
    blobs.count("export_csv")
    blobs.count("track")  # napari-tracks' event, not this plugin's
    blobs.count("detect", 0)
    recorder.flush()
    record = _day(home, napari.name, clock.today())
    assert _keys(record, "plugin") == {
        _plugin_key("napari-blobs", "detect"): 3,
        _plugin_key("napari-blobs", "export_csv"): 1,
    }
    assert dict(record.meta.plugins) == {"napari-blobs": "0.3.1"}
    assert recorder.drops == {"not in the manifest of plugin napari-blobs": 1, "bad count": 1}


def test_a_plugin_of_another_host_is_listed_as_other_and_records_nothing(napari, home, environ, clock):
    recorder = _start(napari, "full", home, environ, clock)
    foreign = loads_plugin_manifest(
        """\
manifest_version = 1
[plugin]
name = "viewer-stats"
host = "another-viewer"
public = true
[[events]]
name = "detect"
level = "full"
purpose = "Detections."
"""
    )
    plugin = recorder.plugin(foreign, "1.0.0")
    assert plugin.enabled is False
    plugin.count("detect", 5)
    recorder.flush()
    record = _day(home, napari.name, clock.today())
    assert _keys(record, "plugin") == {}
    assert dict(record.meta.plugins) == {"other": "other"}
    assert "viewer-stats" not in json.dumps(record.meta.plugins)


def test_a_plugin_is_other_when_the_hosts_policy_is_none(stripepy, home, environ, clock):
    assert stripepy.plugins.policy == "none"
    recorder = _start(stripepy, "basic", home, environ, clock)
    manifest = loads_plugin_manifest(
        """\
manifest_version = 1
[plugin]
name = "stripepy-extras"
host = "stripepy-like"
public = true
[[events]]
name = "extra"
level = "basic"
purpose = "Extras."
""",
        stripepy,
    )
    plugin = recorder.plugin(manifest, "2.0.0")
    assert plugin.enabled is False
    plugin.count("extra")
    recorder.flush()
    record = _day(home, stripepy.name, clock.today())
    assert _keys(record, "plugin") == {}
    assert dict(record.meta.plugins) == {"other": "other"}


def test_a_plugin_that_does_not_declare_itself_public_is_other(napari, home, environ, clock):
    recorder = _start(napari, "full", home, environ, clock)
    text = (PLUGINS / "napari-blobs.toml").read_text().replace("public = true", "public = false")
    plugin = recorder.plugin(loads_plugin_manifest(text, napari), "0.3.1")
    plugin.count("detect")
    recorder.flush()
    record = _day(home, napari.name, clock.today())
    assert _keys(record, "plugin") == {}
    assert dict(record.meta.plugins) == {"other": "other"}


def test_a_denied_plugin_records_nothing(napari, home, environ, clock):
    consentry.set_consent(napari, "on", "full", home=home, environ=environ, clock=clock)
    consentry.set_plugin_consent(napari, "napari-blobs", allow=False, home=home, environ=environ)
    recorder = consentry.init(
        napari, app_version="0.5.6", home=home, environ=environ, clock=clock, background=False, flush_at_exit=False
    )
    blobs = recorder.plugin(load_plugin_manifest(PLUGINS / "napari-blobs.toml", napari), "0.3.1")
    tracks = recorder.plugin(load_plugin_manifest(PLUGINS / "napari-tracks.toml", napari), "1.0.0")
    assert (blobs.enabled, tracks.enabled) == (False, True)
    blobs.count("detect", 7)
    tracks.count("track", 2)
    recorder.flush()
    record = _day(home, napari.name, clock.today())
    assert _keys(record, "plugin") == {_plugin_key("napari-tracks", "track"): 2}


def test_a_plugin_choice_survives_a_new_answer(napari, home, environ, clock):
    consentry.set_consent(napari, "on", "full", home=home, environ=environ, clock=clock)
    consentry.set_plugin_consent(napari, "napari-blobs", allow=False, home=home, environ=environ)
    consentry.set_consent(napari, "on", "full", home=home, environ=environ, clock=clock)
    recorder = consentry.init(
        napari, app_version="0.5.6", home=home, environ=environ, clock=clock, background=False, flush_at_exit=False
    )
    blobs = recorder.plugin(load_plugin_manifest(PLUGINS / "napari-blobs.toml", napari), "0.3.1")
    assert blobs.enabled is False


@pytest.mark.parametrize("version", ["0.4.0rc1", "1.0.0.dev3", "2.0a1", "0.3.1+local", "1.0.0b2"])
def test_a_public_plugin_in_a_pre_release_version_is_skipped_entirely(napari, home, environ, clock, version):
    # NAP-8: "We also will not collect information about plugins that are installed in a non-stable version"; its
    # get_middle_information lists a plugin only if its version is one of the plugin's releases, else skips it.
    recorder = _start(napari, "full", home, environ, clock)
    blobs = recorder.plugin(load_plugin_manifest(PLUGINS / "napari-blobs.toml", napari), version)
    tracks = recorder.plugin(load_plugin_manifest(PLUGINS / "napari-tracks.toml", napari), "1.0.0")
    assert (blobs.enabled, tracks.enabled) == (False, True)
    blobs.count("detect")
    tracks.count("track")
    recorder.flush()
    record = _day(home, napari.name, clock.today())
    assert dict(record.meta.plugins) == {"napari-tracks": "1.0.0"}
    assert _keys(record, "plugin") == {_plugin_key("napari-tracks", "track"): 1}


def test_plugin_events_above_the_consented_level_are_not_recorded(napari, home, environ, clock):
    recorder = _start(napari, "middle", home, environ, clock)
    blobs = recorder.plugin(load_plugin_manifest(PLUGINS / "napari-blobs.toml", napari), "0.3.1")
    blobs.count("detect")
    recorder.flush()
    record = _day(home, napari.name, clock.today())
    assert _keys(record, "plugin") == {}
    assert dict(record.meta.plugins) == {"napari-blobs": "0.3.1"}  # listing installed plugins is a middle feature


# ---- command spans -------------------------------------------------------------------------------------------------
def _commands(home: Path, app: str, day: datetime.date) -> list[tuple[list[object], int]]:
    return [(json.loads(key), n) for key, n in _keys(_day(home, app, day), "command").items()]


NOT_GIVEN = {
    "format": False,
    "resolution": False,
    "nproc": False,
    "force": False,
    "normalization": False,
}


def test_a_command_span_records_duration_bucket_and_exit_code(stripepy, home, environ, clock):
    recorder = _start(stripepy, "basic", home, environ, clock)
    with recorder.command("call", format="cool", resolution=5000, nproc=8, force=False, normalization="weird") as span:
        clock.advance(datetime.timedelta(seconds=30))
        assert span.name == "call"
    recorder.flush()
    params = {"force": False, "format": "cool", "nproc": True, "normalization": True, "resolution": "5000"}
    assert _commands(home, stripepy.name, clock.today()) == [
        (["call", [list(item) for item in sorted(params.items())], "10-60s", 0, None], 1)
    ]


def test_parameters_not_allow_listed_become_true_or_false(stripepy, home, environ, clock):
    recorder = _start(stripepy, "basic", home, environ, clock)
    with recorder.command(
        "call",
        format="/home/alice/secret.cool",
        resolution=1234,
        nproc=None,
        output="/tmp/out",  # noqa: S108 - a path the manifest does not declare; it must not be recorded
    ):
        pass
    recorder.flush()
    [(key, n)] = _commands(home, stripepy.name, clock.today())
    assert n == 1
    assert dict(map(tuple, key[1])) == {**NOT_GIVEN, "format": True, "resolution": True}
    assert "alice" not in json.dumps(key)
    assert "output" not in json.dumps(key)


def test_a_parameter_value_too_long_to_convert_to_text_is_recorded_as_given(stripepy, home, environ, clock):
    recorder = _start(stripepy, "basic", home, environ, clock)
    with recorder.command("call", resolution=10**5000, nproc=True):  # str() refuses an integer of 5,001 digits
        pass
    recorder.flush()
    [(key, n)] = _commands(home, stripepy.name, clock.today())
    assert n == 1
    assert dict(map(tuple, key[1])) == {**NOT_GIVEN, "nproc": True, "resolution": True}


@pytest.mark.parametrize(
    "seconds_and_bucket",
    [(0, "<1s"), (0.999, "<1s"), (1, "1-10s"), (59.9, "10-60s"), (60, "1-10min"), (3599, "10-60min"), (7200, "1h+")],
)
def test_a_command_span_duration_buckets(stripepy, clock, start, stored, seconds_and_bucket):
    seconds, bucket = seconds_and_bucket
    recorder = start(stripepy, "basic")
    with recorder.command("view"):
        clock.advance(datetime.timedelta(seconds=seconds))
    recorder.flush()
    [key] = map(json.loads, stored(stripepy.name, "command"))
    assert key[2] == bucket


def test_a_command_span_lets_the_exception_through_and_records_only_its_class(stripepy, home, environ, clock):
    recorder = _start(stripepy, "basic", home, environ, clock)
    error = FileNotFoundError("/home/alice/private/matrix.cool not found")
    with pytest.raises(FileNotFoundError) as raised, recorder.command("call", format="hic"):
        raise error
    assert raised.value is error
    assert str(raised.value) == "/home/alice/private/matrix.cool not found"
    recorder.flush()
    [(key, n)] = _commands(home, stripepy.name, clock.today())
    assert (key[0], key[3], key[4], n) == ("call", 1, "FileNotFoundError", 1)
    assert b"alice" not in Paths(home).app(stripepy.name).store.read_bytes()


@pytest.mark.parametrize(
    "outcome",
    [
        (SystemExit(2), 2, None),
        (SystemExit(0), 0, None),
        (SystemExit(None), 0, None),
        (SystemExit("fatal: bad input"), 1, None),
        (SystemExit(300), 255, None),
        (KeyboardInterrupt(), 130, "KeyboardInterrupt"),
    ],
    ids=["exit 2", "exit 0", "exit None", "exit message", "exit 300", "interrupt"],
)
def test_a_command_span_exit_status_from_system_exit(stripepy, start, stored, outcome):
    error, exit_code, exception = outcome
    recorder = start(stripepy, "basic")
    with pytest.raises(type(error)) as raised, recorder.command("download"):
        raise error
    assert raised.value is error
    recorder.flush()
    [key] = map(json.loads, stored(stripepy.name, "command"))
    assert (key[3], key[4]) == (exit_code, exception)


def test_a_command_span_exit_code_set_by_the_host(stripepy, home, environ, clock):
    recorder = _start(stripepy, "basic", home, environ, clock)
    with recorder.command("plot", **{"plot-type": "contact-map"}) as span:
        span.exit_code = 3
    recorder.flush()
    [(key, _)] = _commands(home, stripepy.name, clock.today())
    assert key[3] == 3
    assert ["plot-type", "contact-map"] in key[1]


def test_identical_command_runs_add_up(stripepy, home, environ, clock):
    recorder = _start(stripepy, "basic", home, environ, clock)
    for _ in range(3):
        with recorder.command("view", **{"with-biodescriptors": True}):
            pass
    recorder.flush()
    [(key, n)] = _commands(home, stripepy.name, clock.today())
    assert n == 3
    assert key[1] == [["with-biodescriptors", True]]


def test_a_command_not_in_the_manifest_is_dropped(stripepy, home, environ, clock):
    recorder = _start(stripepy, "basic", home, environ, clock)
    with recorder.command("compute-everything"):
        pass
    recorder.record_command(None, {}, duration=1.0)  # type: ignore[arg-type]
    assert recorder.drops == {"command not in the manifest": 2}
    recorder.flush()
    assert _keys(_day(home, stripepy.name, clock.today()), "command") == {}


# ---- data categories -----------------------------------------------------------------------------------------------
class FakeArray:
    """Duck-typed like a NumPy array: shape, dtype, ndim; no data at all."""

    def __init__(self, shape: tuple[int, ...], dtype: str = "uint16") -> None:
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)


@pytest.mark.parametrize(
    ("shape", "category"),
    [
        ((999, 1001), "SMALL"),  # 999,999 elements
        ((1000, 1000), "MEDIUM"),  # 1e6
        ((9999, 10001), "MEDIUM"),  # 1e8 - 1
        ((10000, 10000), "LARGE"),  # 1e8
        ((99999, 100001), "LARGE"),  # 1e10 - 1
        ((100000, 100000), "VERY_LARGE"),  # 1e10
        ((10, 1000, 1000, 1000), "VERY_LARGE"),  # 1e10 in four dimensions
        ((0, 5), "SMALL"),
    ],
)
def test_data_of_a_duck_typed_array_gives_its_size_category(napari, start, stored, shape, category):
    recorder = start(napari, "full")
    recorder.data("image", FakeArray(shape))
    recorder.flush()
    assert stored(napari.name, "data") == {
        json.dumps(["image", "FakeArray", "uint16", len(shape), category], separators=(",", ":")): 1
    }


@pytest.mark.parametrize(
    ("elements", "category"),
    [
        (0, "SMALL"),
        (999_999, "SMALL"),
        (1_000_000, "MEDIUM"),
        (99_999_999, "MEDIUM"),
        (100_000_000, "LARGE"),
        (9_999_999_999, "LARGE"),
        (10_000_000_000, "VERY_LARGE"),
        (1e15, "VERY_LARGE"),
    ],
)
def test_size_category_boundaries(elements, category):
    assert size_category(elements) == category


class NoShape:
    """Nothing to describe: no shape, no size, no length."""


class BadShape:
    shape = "large"
    dtype = "uint8"


class NegativeShape:
    shape = (-1, 10)
    dtype = "uint8"


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("image", object()),
        ("image", NoShape()),
        ("image", 42),
        ("image", None),
        ("image", BadShape()),
        ("image", NegativeShape()),
        ("Image With Spaces", FakeArray((10, 10))),
        ("", FakeArray((10, 10))),
        (None, FakeArray((10, 10))),
        (7, FakeArray((10, 10))),
    ],
    ids=[
        "object",
        "no shape",
        "int",
        "None",
        "shape not a tuple",
        "negative shape",
        "bad kind",
        "empty kind",
        "kind None",
        "kind int",
    ],
)
def test_data_that_cannot_be_described_is_dropped(napari, start, stored, kind, data):
    recorder = start(napari, "full")
    recorder.data(kind, data)
    assert recorder.drops == {"data not describable": 1}
    recorder.flush()
    assert stored(napari.name, "data") == {}


class ShapeRaises:
    """A lazy array whose shape is unknown until computed: asking for it fails."""

    dtype = "float32"

    @property
    def shape(self) -> tuple[int, ...]:
        raise RuntimeError("the shape is not known until the graph is computed")


class LenRaises:
    """A sequence whose length cannot be taken."""

    def __len__(self) -> int:
        raise ValueError("this stream has no length")


@pytest.mark.parametrize("data", [ShapeRaises(), LenRaises()], ids=["shape raises", "len raises"])
def test_data_whose_description_raises_is_dropped_without_an_internal_error(
    napari, start, stored, swallowed_errors, data
):
    # The host's object failing to describe itself is expected, not a bug in Consentry: it must be dropped and
    # counted like any other data that cannot be described, not swallowed as an internal error.
    recorder = start(napari, "full")
    recorder.data("image", data)
    assert swallowed_errors.take() == []
    assert recorder.drops == {"data not describable": 1}
    recorder.flush()
    assert stored(napari.name, "data") == {}


def test_data_with_more_elements_than_len_can_return_is_not_an_internal_error(napari, start, stored, swallowed_errors):
    recorder = start(napari, "full")
    recorder.data("sequence", range(10**20))  # len() raises OverflowError
    assert swallowed_errors.take() == []
    recorder.flush()
    very_large = json.dumps(["sequence", "range", "range", 1, "VERY_LARGE"], separators=(",", ":"))
    assert recorder.drops == {"data not describable": 1} or stored(napari.name, "data") == {very_large: 1}


def test_data_below_the_data_level_is_not_collected(napari, home, environ, clock):
    recorder = _start(napari, "middle", home, environ, clock)
    recorder.data("image", FakeArray((10, 10)))
    assert recorder.drops == {"data categories not collected": 1}


def test_a_dtype_or_class_name_that_could_carry_text_is_replaced(napari, home, environ, clock):
    recorder = _start(napari, "full", home, environ, clock)
    recorder.data("image", FakeArray((10, 10), dtype="/home/alice/scan.tif"))
    recorder.flush()
    [key] = _keys(_day(home, napari.name, clock.today()), "data")
    assert json.loads(key) == ["image", "FakeArray", "other", 2, "SMALL"]


# ---- the store ---------------------------------------------------------------------------------------------------
def test_a_corrupted_store_is_moved_aside_and_a_fresh_one_works(napari, home, environ, clock):
    recorder = _start(napari, "full", home, environ, clock)
    store = Paths(home).app(napari.name).store
    garbage = random.Random(4).randbytes(16384)
    store.write_bytes(garbage)
    recorder.count(ADD_IMAGE, 2)
    recorder.flush()
    assert recorder.quiet is None
    assert store.with_name(store.name + ".corrupt").read_bytes() == garbage
    assert _keys(_day(home, napari.name, clock.today()), "event") == {ADD_IMAGE: 2}


def test_counts_wait_in_the_journal_while_the_store_cannot_be_opened(napari, home, environ, clock):
    recorder = _start(napari, "full", home, environ, clock)
    paths = Paths(home).app(napari.name)
    paths.store.mkdir(parents=True)  # a folder where the database file should be: opening it fails
    recorder.count(ADD_IMAGE)
    recorder.flush()
    recorder.count(ADD_IMAGE, 2)
    recorder.flush()
    assert recorder.quiet is None  # the counts are safe in the journal; recording goes on
    assert len(list(paths.journal.iterdir())) == 2
    assert list(paths.store.iterdir()) == []
    paths.store.rmdir()  # the store can be opened again: the next flush merges everything
    recorder.close()
    assert _keys(_day(home, napari.name, clock.today()), "event") == {ADD_IMAGE: 3}
    assert list(paths.journal.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_folder_makes_the_recorder_go_quiet(napari, home, environ, clock):
    recorder = _start(napari, "full", home, environ, clock)
    folder = Paths(home).app(napari.name).root
    folder.chmod(0o500)
    try:
        recorder.count(ADD_IMAGE)
        recorder.flush()
        assert recorder.quiet is not None
    finally:
        folder.chmod(0o700)
    assert not Paths(home).app(napari.name).store.exists()


WORKER = textwrap.dedent(
    """
    import datetime, json, sys
    import consentry, consentry.testing
    from consentry._guard import internal_errors

    home, policy, per_process = sys.argv[1], sys.argv[2], int(sys.argv[3])
    clock = consentry.testing.FixedClock(datetime.datetime(2026, 11, 18, 12, tzinfo=datetime.timezone.utc))
    recorder = consentry.init(
        sys.argv[4], app_version="0.5.6", home=home, environ={"CONSENTRY_POLICY_FILE": policy}, clock=clock,
        background=False, flush_at_exit=False,
    )
    for i in range(per_process):
        recorder.count("napari:layer:add_image")
        if i % 10 == 9:
            recorder.flush()
    recorder.flush()
    print(json.dumps({"kind": type(recorder).__name__, "quiet": recorder.quiet, "drops": recorder.drops,
                      "errors": [repr(e) for e in internal_errors()]}))
    """
)


def test_eight_processes_counting_at_once_give_exact_totals(napari, home, environ, clock):
    consentry.set_consent(napari, "on", "full", home=home, environ=environ, clock=clock)
    per_process = 400
    env = {key: value for key, value in os.environ.items() if key != "CONSENTRY_HOME"}
    command = [sys.executable, "-c", WORKER, str(home), environ["CONSENTRY_POLICY_FILE"], str(per_process), str(NAPARI)]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(8)]
    results = [worker.communicate(timeout=120) for worker in workers]
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err.decode()
        assert json.loads(out) == {"kind": "Recorder", "quiet": None, "drops": {}, "errors": []}
    assert _keys(_day(home, napari.name, clock.today()), "event") == {ADD_IMAGE: 8 * per_process}
