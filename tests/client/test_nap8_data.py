"""Data categories as NAP-8 defines them, checked against NAP-8's own code and sample session and napari's layers.

The expectations never come from Consentry: NAP-8's sample session must give NAP-8's printed output, NAP-8's
collector (transcribed in ``support.nap8``) run on the same data must give the same key, and where NAP-8's code
cannot describe napari's data (shapes, surfaces) or reads an axis that is not a dimension (vectors, tracks), the
number of dimensions and of items are napari's own (``layer.ndim``, ``nshapes``...), binned by NAP-8's
``SizeCategory``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import dask.array as da
import numpy as np
import pytest

import consentry
from consentry import Recorder
from consentry._local.counts import Store
from consentry._local.paths import Paths
from support import nap8, real_napari

layers = real_napari.napari.layers


@pytest.fixture
def recorder(napari, home, environ, clock) -> Recorder:
    """A recorder of the napari-like example at its full level (which collects data categories)."""
    consentry.set_consent(napari, "on", "full", home=home, environ=environ, clock=clock)
    recorder = consentry.init(
        napari, app_version="0.5.6", home=home, environ=environ, clock=clock, background=False, flush_at_exit=False
    )
    assert isinstance(recorder, Recorder)
    return recorder


@pytest.fixture
def stored(recorder, home, clock) -> Callable[[], dict[tuple[object, ...], int]]:
    """The data categories stored today, each key as a tuple."""

    def stored() -> dict[tuple[object, ...], int]:
        recorder.flush()
        record = Store(Paths(home).app(recorder.manifest.name).store).read_day(clock.today())
        assert record is not None
        return {tuple(json.loads(key)): n for (kind, key), n in record.counters.items() if kind == "data"}

    return stored


def key(kind: str, class_name: str, dtype: str, ndim: int, size: str) -> tuple[object, ...]:
    return (kind, class_name, dtype, ndim, size)


# ---- NAP-8's sample session ---------------------------------------------------------------------------------------
def test_nap8s_transcribed_code_prints_nap8s_sample_output():
    # The reference itself: NAP-8's collector, run on NAP-8's sample session, gives NAP-8's printed output.
    counts: Counter[str] = Counter()
    nap8.sample_session(lambda array, layer: nap8.add_data_info(counts, array, layer))
    assert dict(counts) == nap8.SAMPLE_OUTPUT


def test_nap8s_sample_session_is_stored_as_nap8s_sample_output(recorder, stored):
    nap8.sample_session(lambda array, layer: recorder.data(layer, array))
    assert recorder.drops == {}
    assert stored() == {tuple(nap8.consentry_key(k)): n for k, n in nap8.SAMPLE_OUTPUT.items()}


def test_half_a_million_points_in_3d_are_small_and_3d(recorder, stored):
    # The case: 1.5 million elements (MEDIUM by elements), but NAP-8 bins points by their number.
    points = np.empty((500_000, 3))
    recorder.data("points", points)
    reference = nap8.extract_size_info(points, "points")
    assert (reference["ndim"], reference["size_category"]) == (3, "SMALL")
    assert stored() == {key("points", "ndarray", "float64", 3, "SMALL"): 1}


# ---- each of napari's layer types, as napari holds its data -------------------------------------------------------
def _cells() -> layers.Tracks:
    """200,000 track vertices (ID, T, Z, Y, X): 1,000,000 numbers, MEDIUM by elements, SMALL by vertices."""
    rows = 200_000
    track = np.repeat(np.arange(rows // 100), 100)
    time = np.tile(np.arange(100), rows // 100)
    return layers.Tracks(np.column_stack([track, time, np.zeros((rows, 3))]))


ARRAY_LAYERS = {
    "image, 3D": lambda: layers.Image(np.zeros((64, 512, 512), dtype=np.uint16)),
    "image, RGB": lambda: layers.Image(np.zeros((1200, 1000, 3), dtype=np.uint8), rgb=True),
    "image, dask": lambda: layers.Image(da.zeros((20, 1024, 1024), dtype=np.float32, chunks=(1, 1024, 1024))),
    "image, multiscale": lambda: layers.Image([np.zeros((2048, 2048)), np.zeros((1024, 1024))], multiscale=True),
    "labels": lambda: layers.Labels(np.zeros((2000, 2000), dtype=np.int32)),
    "points": lambda: layers.Points(np.zeros((500_000, 3))),
}


@pytest.mark.parametrize("make", ARRAY_LAYERS.values(), ids=ARRAY_LAYERS.keys())
def test_a_layer_nap8_describes_is_stored_as_nap8s_collector_describes_it(recorder, stored, make):
    layer = make()
    kind = layer._type_string  # napari's name of the layer type: image, labels, points...
    recorder.data(kind, layer.data)
    expected: Counter[str] = Counter()
    nap8.add_data_info(expected, layer.data, kind)
    assert stored() == {tuple(nap8.consentry_key(k)): n for k, n in expected.items()}


def test_vectors_have_napari_s_dimensions_and_are_binned_by_their_number(recorder, stored):
    # napari holds N vectors as (N, 2, D): a position and a direction, each of D coordinates.
    layer = layers.Vectors(np.zeros((300_000, 2, 3), dtype=np.float32))  # 1.8 million elements
    recorder.data("vectors", layer.data)
    assert (layer.ndim, len(layer.data)) == (3, 300_000)
    reference = nap8.extract_size_info(layer.data, "vectors")
    assert reference["size_category"] == "SMALL"  # NAP-8 bins vectors by shape[0], their number...
    assert reference["ndim"] == 2  # ...but its shape[1] is the position/direction axis, 2 whatever D is
    assert stored() == {key("vectors", "ndarray", "float32", layer.ndim, "SMALL"): 1}


def test_tracks_have_napari_s_dimensions_and_are_binned_by_their_vertices(recorder, stored):
    layer = _cells()
    recorder.data("tracks", layer.data)
    assert layer.ndim == 4  # T, Z, Y, X: napari does not count the track-id column as a dimension
    reference = nap8.extract_size_info(layer.data, "tracks")
    assert (reference["ndim"], reference["size_category"]) == (5, "SMALL")  # NAP-8's shape[1] counts the id column
    assert stored() == {
        key("tracks", "ndarray", "float64", layer.ndim, nap8.SizeCategory.from_size(len(layer.data)).name): 1
    }


def test_shapes_have_napari_s_dimensions_and_are_binned_by_their_number(recorder, stored):
    # napari holds shapes as a list of (vertices, D) arrays, which NAP-8's code cannot describe (a list has no size).
    rng = np.random.default_rng(8)
    layer = layers.Shapes([rng.random((4, 3)) for _ in range(25)], shape_type="polygon")
    with pytest.raises(AttributeError):
        nap8.extract_size_info(layer.data, "shapes")
    recorder.data("shapes", layer.data)
    size = nap8.SizeCategory.from_size(layer.nshapes).name
    assert stored() == {key("shapes", type(layer.data).__name__, str(layer.data[0].dtype), layer.ndim, size): 1}
    assert (type(layer.data).__name__, layer.ndim, size) == ("list", 3, "SMALL")


def test_a_surface_has_its_vertices_dimensions_and_is_binned_by_their_number(recorder, stored):
    # napari holds a surface as (vertices (V, D), faces (F, 3), values): a tuple, which NAP-8's code cannot describe.
    rng = np.random.default_rng(9)
    layer = layers.Surface((rng.random((2000, 3)), rng.integers(0, 2000, (3000, 3))))
    with pytest.raises(AttributeError):
        nap8.extract_size_info(layer.data, "surface")
    recorder.data("surface", layer.data)
    size = nap8.SizeCategory.from_size(len(layer.vertices)).name
    dtype = str(layer.vertices.dtype)
    assert stored() == {key("surface", type(layer.data).__name__, dtype, layer.ndim, size): 1}
    assert (type(layer.data).__name__, layer.ndim, size) == ("tuple", 3, "SMALL")


def test_an_empty_shapes_layer_has_nothing_to_describe(recorder, stored):
    recorder.data("shapes", layers.Shapes().data)  # napari's "new shapes layer"
    assert recorder.drops == {"data not describable": 1}
    assert stored() == {}


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("points", np.zeros(10)),  # not (N, D)
        ("points", [[1.0, 2.0], [3.0, 4.0]]),  # no shape
        ("vectors", np.zeros((10, 3))),  # not (N, 2, D)
        ("vectors", np.zeros((10, 3, 3))),
        ("tracks", np.zeros((10, 4, 1))),
        ("shapes", np.zeros((4, 2))),  # one array, not napari's list of shapes
        ("shapes", [np.zeros(4)]),
        ("surface", [np.zeros((4, 3)), np.zeros((2, 3))]),  # not napari's tuple
        ("surface", (np.zeros(4), np.zeros((2, 3)))),
    ],
)
def test_coordinates_not_in_napari_s_layout_are_not_described(recorder, stored, kind, data):
    recorder.data(kind, data)
    assert recorder.drops == {"data not describable": 1}
    assert stored() == {}
