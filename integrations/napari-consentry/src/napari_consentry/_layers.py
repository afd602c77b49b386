"""What napari's layers are, for NAP-8's data categories: the kind of a layer and the data to describe."""

from __future__ import annotations

import importlib

__all__ = ["KINDS", "layer_kind"]

#: napari's layer classes (in ``napari.layers``) and the kind each is recorded as, NAP-8's ``layer_name_str``.
#: Labels come before Image: in napari releases where Labels subclassed Image, a labels layer is still labels.
KINDS = (
    ("Labels", "labels"),
    ("Image", "image"),
    ("Points", "points"),
    ("Shapes", "shapes"),
    ("Surface", "surface"),
    ("Tracks", "tracks"),
    ("Vectors", "vectors"),
)


def layer_kind(layer: object) -> str | None:
    """The kind of a napari layer (``image``, ``labels``, ``points``...), ``None`` for a layer of another type.

    A subclass (a plugin's own layer type built on napari's) is the kind of the napari class it extends.
    """
    layers = importlib.import_module("napari.layers")
    for class_name, kind in KINDS:
        layer_class = getattr(layers, class_name, None)
        if isinstance(layer_class, type) and isinstance(layer, layer_class):
            return kind
    return None
