"""Property-based fuzzing of ``POST /v1/reports/{level}`` (hypothesis), through the in-process application.

Bodies are random bytes, random JSON documents, or valid reports with one random mutation (a field removed,
added, retyped or renamed, a number out of range, a string made huge or given odd Unicode and control
characters), sent gzip-compressed or not, with random ``Content-Type`` and ``Content-Encoding`` headers, to a
random level. Whatever arrives: never a 5xx; a 4xx always carries ``{"error": {"code", "field", "message"}}``;
and a refused request leaves the raw tables exactly as they were.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import gzip
import json
import sqlite3
import string
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import hypothesis
import pytest
from hypothesis import strategies as st
from starlette.testclient import TestClient

from consentry.manifest import Manifest
from consentry.wire import Activity, Command, DataCategory, Plugin, Report, encode
from consentry_server.app import create_app

LEVELS = ("basic", "middle", "full", "none")
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
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            'Application/JSON; charset="UTF-8"',
            "application/json; charset=latin-1",
            "application/json;;;",
            "application/json; charset",
            "application/jsonx",
            "text/plain",
            "multipart/form-data; boundary=x",
            "",
        ]
    ),
    st.text(alphabet=string.printable.strip("\r\n\t\x0b\x0c"), max_size=40),
)
CONTENT_ENCODINGS = st.one_of(
    st.none(),
    st.sampled_from(["gzip", "GZIP", " gzip ", "identity", "", "br", "deflate", "gzip, gzip", "x-gzip"]),
    st.text(alphabet=string.ascii_letters + string.digits + ",; -", max_size=20),
)


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def snapshot(path: Any) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table but the request log (where refusals are meant to go), sorted."""
    db = sqlite3.connect(path)
    try:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            table: sorted(db.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)  # noqa: S608 - table names
            for table in tables
            if table != "request_log"
        }
    finally:
        db.close()


def valid_reports(manifests: dict[str, Manifest]) -> list[Report]:
    """Valid reports of every shape: each level of napari-like, plugins, data, and stripepy-like commands."""
    day = utc_today() - datetime.timedelta(days=1)
    napari, stripepy = manifests["napari-like"], manifests["stripepy-like"]

    def report(manifest: Manifest, level: str, **fields: Any) -> Report:
        return Report(
            app=manifest.name,
            app_version="1.0.0",
            level=level,
            consent_version=manifest.consent_version,
            reporter="ab" * 16,
            first_report=False,
            days=(day,),
            **fields,
        )

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


@st.composite
def requests(draw: st.DrawFn, docs: list[dict[str, Any]]) -> tuple[str, bytes, dict[str, str]]:
    """A level, a body and headers."""
    source = draw(st.sampled_from(["bytes", "json", "mutated", "mutated", "mutated", "mutated"]))
    level = draw(st.sampled_from(LEVELS))
    if source == "bytes":
        body = draw(st.binary(max_size=300))
    else:
        if source == "json":
            document = draw(JSON | st.dictionaries(st.sampled_from(sorted(docs[0])), JSON, max_size=12))
        else:
            level, document = draw(mutated(docs))
        body = json.dumps(document, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    # Mostly the right level and headers, so that most bodies reach decoding and validation.
    if draw(st.integers(0, 4)) == 0:
        level = draw(st.text(min_size=1, max_size=40).filter(lambda text: "/" not in text and text.strip(".")))
    headers = {}
    content_type = draw(CONTENT_TYPES) if draw(st.integers(0, 4)) == 0 else "application/json"
    if content_type or draw(st.booleans()):
        headers["content-type"] = content_type
    compressed = draw(st.booleans())
    if compressed:
        body = gzip.compress(body)
    encoding = draw(CONTENT_ENCODINGS) if draw(st.integers(0, 4)) == 0 else ("gzip" if compressed else None)
    if encoding is not None:
        headers["content-encoding"] = encoding
    return level, body, headers


@pytest.fixture
def quiet_client(settings, storage) -> Iterator[TestClient]:
    """The application with no retention task, so that nothing but the requests sent here writes; a server
    error is answered 500 (as a real server would), not raised here."""
    app = create_app(settings.replace(retention_interval_hours=0), storage)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def documents(manifests: dict[str, Manifest]) -> list[dict[str, Any]]:
    return [json.loads(encode(report)) for report in valid_reports(manifests)]


def test_the_reports_fuzzing_starts_from_are_accepted(client, manifests):
    for number, report in enumerate(valid_reports(manifests)):
        body = encode(dataclasses.replace(report, reporter=f"{number:032x}"))
        response = client.post(
            f"/v1/reports/{report.level}", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "stored", "days": 1}


@pytest.mark.slow
@hypothesis.settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.data_too_large,
        hypothesis.HealthCheck.filter_too_much,
    ],
)
@hypothesis.given(data=st.data())
def test_no_body_gets_a_5xx_and_a_refused_one_changes_nothing(quiet_client, storage, documents, data):
    level, body, headers = data.draw(requests(documents), label="request")
    before = snapshot(storage.path)

    response = quiet_client.post(f"/v1/reports/{quote(level, safe='')}", content=body, headers=headers)

    assert response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    if response.status_code >= 400:
        assert set(answer) == {"error"}, answer
        assert set(answer["error"]) == {"code", "field", "message"}, answer
        assert all(isinstance(answer["error"][key], str) for key in ("code", "field", "message")), answer
        assert answer["error"]["code"]
        assert answer["error"]["message"]
        assert snapshot(storage.path) == before
    else:
        assert response.status_code == 200
        assert answer["status"] in {"stored", "duplicate", "replaced"}
        assert answer["days"] >= 1


SURROGATES = {
    "unknown_top_level_field": lambda doc: {**doc, "\ud800": 1},
    "unknown_system_field": lambda doc: {**doc, "system": {**doc["system"], "\udc00": "x"}},
    "event_name": lambda doc: {**doc, "counts": {doc["days"][0]: {"\ud83d": 1}}},
    "app_name": lambda doc: {**doc, "app": "\ud800"},
}


@pytest.mark.parametrize("edit", SURROGATES.values(), ids=SURROGATES.keys())
def test_a_lone_surrogate_in_a_refused_name_gets_a_400(quiet_client, storage, documents, edit):
    # JSON may escape a lone UTF-16 surrogate ("\\ud800"); the refusal names the field, which then holds it.
    body = json.dumps(edit(documents[0])).encode("ascii")
    before = snapshot(storage.path)

    response = quiet_client.post("/v1/reports/basic", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_report"
    assert snapshot(storage.path) == before
