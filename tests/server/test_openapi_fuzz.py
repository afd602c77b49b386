"""The OpenAPI description, fuzzed with schemathesis against the application in process: zero 5xx.

The application is built over a storage opened here (``create_app(settings, storage)``), with the example
manifests registered, a few reports stored and published (so the public routes answer with rows) and an admin
token. Every generated request, valid for the description or not, must get an answer below 500 whose status
code, content type and body the description documents. Each operation is fuzzed by its own test, with data
that fits the description and with data that does not; reports are fuzzed once more with their application and
consent version set to a registered one, so that they get past the manifest lookup.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from consentry.manifest import Manifest
from consentry.wire import Activity, json_schema
from consentry_server.app import create_app
from consentry_server.publish import publish
from consentry_server.storage import PublicStore, SQLiteStorage
from consentry_server.storage.base import store_report

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = {
    ("POST", "/v1/reports/{level}"),
    ("POST", "/v1/deletions"),
    ("POST", "/telemetry"),
    ("POST", "/telemetry/{app}"),
    ("POST", "/dfx/v1/commands"),
    ("GET", "/api/v1/meta"),
    ("GET", "/api/v1/apps"),
    ("GET", "/api/v1/certificates/key"),
    ("GET", "/api/v1/apps/{app}/installs"),
    ("GET", "/api/v1/apps/{app}/counters"),
    ("GET", "/api/v1/apps/{app}/values"),
    ("GET", "/healthz"),
}
FUZZ = hypothesis.settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)


@pytest.fixture
def published(settings, storage: SQLiteStorage, make_report, today) -> SQLiteStorage:
    """``storage`` with reports of a few napari-like installs, aggregated and published (k = 1)."""
    day = today - datetime.timedelta(days=1)
    for number in range(3):
        report = make_report(reporter=number, system={"os": "linux"}, activity={day: Activity(2, 30)})
        store_report(storage, report, received=datetime.datetime.now(datetime.timezone.utc), country="JP")
    storage.aggregate()
    publish(storage, PublicStore(settings.public_path), threshold=1)
    return storage


@pytest.fixture
def api_schema(settings, published: SQLiteStorage) -> Iterator[Any]:
    """The description, loaded from the application; its lifespan (started by schemathesis) ends with the test."""
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", create_app(settings, published))
    finally:
        asgi.shutdown_lifespans()


def fuzz(strategy: st.SearchStrategy[Any]) -> None:
    """Call every case ``strategy`` generates and run the checks on each answer."""

    @FUZZ
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    run()


# Data that does not fit the description exists only where there is an input: a parameter or a body.
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode}")
    for method, path in sorted(OPERATIONS)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or "{" in path or method == "POST"
]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_every_generated_request_gets_a_documented_answer_below_500(api_schema, method, path, mode):
    fuzz(api_schema[path][method].as_strategy(generation_mode=mode))


OPTIONAL_PARTS = ("system", "dependencies", "counts", "activity", "exceptions", "plugins", "commands", "data")
DAY_KEYED = ("counts", "activity", "exceptions")


def as_registered(case: Any, manifest: Manifest, level: str, day: datetime.date, dropped: set[str]) -> Any:
    """``case`` with its report made to name a registered application and consent version, ``level`` (also in
    the path) and ``day`` (every day-keyed part moved to it), and without the ``dropped`` parts."""
    case.path_parameters = {"level": level}
    if not isinstance(case.body, dict):
        return case
    body = {key: value for key, value in case.body.items() if key not in dropped}
    body.update(app=manifest.name, consent_version=manifest.consent_version, level=level, days=[day.isoformat()])
    for part in DAY_KEYED:
        if isinstance(body.get(part), dict):
            body[part] = {day.isoformat(): value for value in list(body[part].values())[:1]}
    if isinstance(body.get("commands"), list):
        body["commands"] = [{**command, "day": day.isoformat()} for command in body["commands"]]
    case.body = body
    return case


@pytest.mark.slow
def test_reports_of_a_registered_application_get_a_documented_answer_below_500(api_schema, napari, today):
    operation = api_schema["/v1/reports/{level}"]["POST"]
    strategy = st.builds(
        as_registered,
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        st.just(napari),
        st.sampled_from([*(name for name in napari.level_names if name != "none"), "nonexistent"]),
        st.sampled_from([today - datetime.timedelta(days=n) for n in (0, 1, 30)]),
        st.sets(st.sampled_from(OPTIONAL_PARTS)),
    )
    fuzz(strategy)


def test_the_description_is_valid_openapi_3_1(api_schema):
    api_schema.validate()  # against the OpenAPI 3.1 meta-schema: raises on the first violation
    assert api_schema.raw_schema["openapi"] == "3.1.0"
    operations = {(result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()}
    assert operations == OPERATIONS


def test_the_report_body_schema_is_the_wire_schema(client):
    description = client.get("/openapi.json").json()
    expected = json_schema()
    del expected["$schema"], expected["$id"]
    assert description["components"]["schemas"]["Report"] == expected
    body = description["paths"]["/v1/reports/{level}"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Report"}
