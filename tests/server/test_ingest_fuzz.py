"""Property-based fuzzing of ``POST /v1/reports/{level}`` (hypothesis), through the in-process application.

Bodies are random bytes, random JSON documents, or valid reports with one random mutation (a field removed,
added, retyped or renamed, a number out of range, a string made huge or given odd Unicode and control
characters), sent gzip-compressed or not, with random ``Content-Type`` and ``Content-Encoding`` headers, to a
random level. Whatever arrives: never a 5xx; a 4xx always carries ``{"error": {"code", "field", "message"}}``;
and a refused request leaves the raw tables exactly as they were.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import json
import sqlite3
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import hypothesis
import pytest
from hypothesis import strategies as st
from starlette.testclient import TestClient

from consentry.manifest import Manifest
from consentry.wire import encode
from consentry_server.app import create_app
from support.mutations import JSON, mutated, valid_reports

LEVELS = ("basic", "middle", "full", "none")
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
