"""Paths of the repository and of the example manifests, for tests."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "consentry_examples"
NAPARI = EXAMPLES / "napari_like" / "manifest.toml"
STRIPEPY = EXAMPLES / "stripepy_like" / "manifest.toml"
SLICER = EXAMPLES / "slicer_like" / "manifest.toml"
