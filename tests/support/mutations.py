"""Valid reports of every shape, and hypothesis strategies that break them in one place.

Used by the ingest fuzzing (``tests/server/test_ingest_fuzz.py``), which sends what they make to the application,
and by the digest tests (``tests/server/test_report_digests.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from consentry.manifest import Manifest
from consentry.wire import Activity, Command, DataCategory, Plugin, Report

__all__ = ["JSON", "ODD_TEXT", "OUT_OF_RANGE", "mutated", "nodes", "small_report", "valid_reports"]

Path = tuple[str | int, ...]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
ODD_TEXT = st.text(
    alphabet=st.characters(codec=None, categories=("Cc", "Cf", "Co", "Cs", "Zs", "Zl", "Zp", "Mn", "So", "Lo")),
    min_size=1,
    max_size=40,
)
HUGE = st.sampled_from([65, 129, 1_000, 70_000, 600_000]).map(lambda size: "a" * size)
OUT_OF_RANGE = (
    st.sampled_from(
        [-1, 0, -(2**31), 2**31, 2**53 + 1, 2**63, -(2**63) - 1, 2**64, 10**9 + 1, 10**100, 0.5, 1e308, -0.0]
    )
    | st.integers()
)


def _utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def small_report(manifest: Manifest, level: str, day: datetime.date, **fields: Any) -> Report:
    """A report of ``manifest`` at ``level`` for ``day``, from a fixed reporter; ``fields`` add to it or replace."""
    base = Report(
        app=manifest.name,
        app_version="1.0.0",
        level=level,
        consent_version=manifest.consent_version,
        reporter="ab" * 16,
        first_report=False,
        days=(day,),
    )
    return dataclasses.replace(base, **fields)


def valid_reports(manifests: dict[str, Manifest]) -> list[Report]:
    """Valid reports of every shape: each level of napari-like, plugins, data, and stripepy-like commands."""
    day = _utc_today() - datetime.timedelta(days=1)
    napari, stripepy = manifests["napari-like"], manifests["stripepy-like"]

    def report(manifest: Manifest, level: str, **fields: Any) -> Report:
        return small_report(manifest, level, day, **fields)

    return [
        report(
            napari,
            "basic",
            system={"os": "linux", "os_version": "ubuntu-24", "arch": "x86_64", "python": "3.12"},
            activity={day: Activity(runs=3, active_minutes=40)},
        ),
        report(
            napari,
            "middle",
            system={"cpus": "5-8", "memory": "8-16GB", "gpu": "nvidia"},
            dependencies={"numpy": "2.1.0", "qtpy": "2.4.1"},
            plugins=(Plugin("napari-blobs", "0.3.0"), Plugin("other", "other")),
        ),
        report(
            napari,
            "full",
            counts={day: {"napari:window:file:drag_and_drop": 4, "napari:window:file:save_layers": 1}},
            exceptions={day: {"ValueError": 2}},
            data=(DataCategory(day, "image", "ndarray", "uint8", 3, "MEDIUM", 2),),
            plugins=(Plugin("napari-blobs", "0.3.0", {day: {"detect": 5}}),),
        ),
        report(
            stripepy,
            "basic",
            system={"os": "macos", "cpus": "3-4"},
            dependencies={"numpy": "2.1.0"},
            exceptions={day: {"KeyError": 1}},
            commands=(Command(day, "call", "1-10min", 0, 2, {"format": "mcool", "force": True}),),
        ),
    ]


# ---- mutations of a JSON document ------------------------------------------------------------------------------
def nodes(value: Any, path: Path = ()) -> list[tuple[Path, Any]]:
    """Every node of a JSON document with its path, the root first."""
    found = [(path, value)]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(nodes(child, (*path, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(nodes(child, (*path, index)))
    return found


def edited(doc: Any, path: Path, change: Callable[[Any, str | int], None]) -> Any:
    """A copy of ``doc`` where ``change(parent, key)`` was applied at ``path`` (non-empty)."""
    result = copy.deepcopy(doc)
    parent = result
    for key in path[:-1]:
        parent = parent[key]
    change(parent, path[-1])
    return result


def set_to(value: Any) -> Callable[[Any, str | int], None]:
    def change(parent: Any, key: str | int) -> None:
        parent[key] = value

    return change


def delete(parent: Any, key: str | int) -> None:
    del parent[key]


def rename_to(name: str) -> Callable[[Any, str | int], None]:
    def change(parent: Any, key: str | int) -> None:
        if isinstance(parent, dict):
            parent[name] = parent.pop(key)
        else:
            parent[key] = name

    return change


@st.composite
def mutated(draw: st.DrawFn, docs: list[dict[str, Any]]) -> tuple[str, Any]:
    """A valid report's document with one mutation, and the level it was valid for."""
    doc = draw(st.sampled_from(docs))
    inner = [(path, value) for path, value in nodes(doc) if path]
    kind = draw(st.sampled_from(["remove", "add", "retype", "out_of_range", "huge", "odd", "rename"]))
    if kind == "remove":
        path, _ = draw(st.sampled_from(inner))
        return doc["level"], edited(doc, path, delete)
    if kind == "add":
        path, container = draw(st.sampled_from([(p, v) for p, v in nodes(doc) if isinstance(v, dict | list)]))
        value = draw(JSON)
        if isinstance(container, list):
            return doc["level"], edited(doc, (*path, 0), lambda parent, _: parent.append(value)) if path else doc
        key = draw(st.sampled_from(["ip", "address", "hostname", "user", "reporter", "days", "x" * 200]) | st.text())
        return doc["level"], edited(doc, (*path, key), set_to(value)) if path else {**doc, key: value}
    if kind == "retype":
        path, old = draw(st.sampled_from(inner))
        new = draw(JSON.filter(lambda value: type(value) is not type(old)))
        return doc["level"], edited(doc, path, set_to(new))
    if kind == "out_of_range":
        numbers = [path for path, value in inner if type(value) is int]
        return doc["level"], edited(doc, draw(st.sampled_from(numbers)), set_to(draw(OUT_OF_RANGE)))
    strings = [path for path, value in inner if isinstance(value, str)]
    keys = [path for path, _ in inner if isinstance(path[-1], str)]
    replacement = draw(HUGE if kind == "huge" else ODD_TEXT)
    if kind == "rename":
        return doc["level"], edited(doc, draw(st.sampled_from(keys)), rename_to(replacement))
    targets = st.sampled_from(strings).map(lambda path: (path, set_to(replacement)))
    targets |= st.sampled_from(keys).map(lambda path: (path, rename_to(replacement)))
    path, change = draw(targets)
    return doc["level"], edited(doc, path, change)
