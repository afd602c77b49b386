"""The real napari for the tests, imported without its import-time deprecation warnings.

napari and npe2 declare pydantic models in the pydantic-1 style (``json_encoders``, extra ``Field`` arguments), so
importing them emits ``PydanticDeprecatedSince20`` warnings, which the test suite turns into errors. Only that
category is ignored, and only while napari is imported here; any other warning still fails a test.
"""

from __future__ import annotations

import warnings

from pydantic.warnings import PydanticDeprecatedSince20

with warnings.catch_warnings():
    warnings.simplefilter("ignore", PydanticDeprecatedSince20)
    import napari
    import napari.components
    import napari.layers

__all__ = ["napari"]
