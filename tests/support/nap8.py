"""NAP-8's own code for data categories, as the NAP publishes it: the reference the client's data keys are tested by.

NAP-8 ("Telemetry", Grzegorz Bokota, napari; dedicated to the public domain under CC0) gives the sample code of
napari-telemetry's data collection, its ``DataSizeTypeCollector``, with a sample session and that session's
output. The functions below are that code with the file handling left out: ``SizeCategory.from_size``,
``extract_size_info_volumetric`` (image and labels), ``extract_size_info_spatial`` (every other layer) and the key
``add_data_info`` counts under. :data:`SAMPLE_OUTPUT` is the ``data_size_info`` of NAP-8's "Full output", as
printed there; :func:`sample_session` makes NAP-8's sample calls (it needs NumPy and dask, as NAP-8's does).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from enum import IntEnum
from typing import Any

__all__ = ["SAMPLE_OUTPUT", "SizeCategory", "add_data_info", "consentry_key", "extract_size_info", "sample_session"]


class SizeCategory(IntEnum):
    SMALL = 0
    MEDIUM = 1
    LARGE = 2
    VERY_LARGE = 3

    @classmethod
    def from_size(cls, size: float) -> SizeCategory:
        if size < 1e6:
            return cls.SMALL
        if size < 1e8:
            return cls.MEDIUM
        if size < 1e10:
            return cls.LARGE
        return cls.VERY_LARGE


def extract_size_info_volumetric(data: Any) -> dict[str, Any]:
    return {
        "size": data.size,
        "shape": data.shape,
        "dtype": str(data.dtype),
        "ndim": data.ndim,
        "size_category": SizeCategory.from_size(data.size).name,
        "class": data.__class__.__name__,
    }


def extract_size_info_spatial(data: Any) -> dict[str, Any]:
    return {
        "size": data.size,
        "shape": data.shape,
        "dtype": str(data.dtype),
        "ndim": data.shape[1],
        "size_category": SizeCategory.from_size(data.shape[0]).name,
        "class": data.__class__.__name__,
    }


def extract_size_info(array: Any, layer_name_str: str) -> dict[str, Any]:
    """NAP-8's choice in ``add_data_info``: image and labels are volumetric, every other layer spatial."""
    if layer_name_str in {"labels", "image"}:
        return extract_size_info_volumetric(array)
    return extract_size_info_spatial(array)  # NAP-8: 'layer_name_str in {"points", "shapes", "vectors"}'


def add_data_info(data: Counter[str], array: Any, layer_name_str: str) -> None:
    """NAP-8's ``DataSizeTypeCollector.add_data_info``, counting into ``data`` instead of a file."""
    size_info = extract_size_info(array, layer_name_str)
    key = str((layer_name_str, size_info["size_category"], size_info["ndim"], size_info["class"], size_info["dtype"]))
    data[key] += 1


#: The ``data_size_info`` of NAP-8's "Full output" (its ``week_info`` left out), keys and counts as printed there.
SAMPLE_OUTPUT = {
    "('image', 'MEDIUM', 3, 'ndarray', 'float64')": 2,
    "('image', 'MEDIUM', 3, 'ndarray', 'uint8')": 1,
    "('image', 'MEDIUM', 3, 'Array', 'float64')": 1,
    "('image', 'SMALL', 3, 'ndarray', 'uint8')": 50,
    "('points', 'SMALL', 3, 'ndarray', 'uint8')": 50,
}


def sample_session(add: Callable[[Any, str], None]) -> None:
    """NAP-8's sample script: ``add(array, layer)`` where it calls ``data_collector.add_data_info(array, layer)``."""
    import dask.array as da
    import numpy as np

    add(np.empty((100, 100, 100)), "image")
    add(np.empty((100, 100, 100)), "image")
    add(np.empty((100, 100, 100), dtype=np.uint8), "image")

    add(da.empty((100, 100, 100)), "image")

    for _ in range(50):
        add(np.empty((10, 10, 10), dtype=np.uint8), "image")
        add(np.empty((1000, 3), dtype=np.uint8), "points")


def consentry_key(nap8_key: str) -> list[object]:
    """NAP-8's key ``(layer, size category, ndim, class, dtype)`` in the order of Consentry's data keys."""
    import ast

    layer, size, ndim, class_name, dtype = ast.literal_eval(nap8_key)
    return [layer, class_name, dtype, ndim, size]
