"""The OpenAPI description, fuzzed with schemathesis against the application in process: zero 5xx.

The application is built over a storage opened here (``create_app(settings, storage)``), with the example
manifests registered, a few reports stored and published (so the public routes answer with rows) and an admin
token. Every generated request, valid for the description or not, must get an answer below 500 whose status
code, content type and body the description documents. Each operation described is fuzzed by its own test (the
admin ones with the token), with data that fits the description and with data that does not; reports are
fuzzed once more with their application and consent version set to a registered one, so that they get past
the manifest lookup. Every route of the application must be described: a test compares the two.
"""

from __future__ import annotations

import datetime
import json
import re
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
from starlette.applications import Starlette
from starlette.routing import Route

from consentry.manifest import Manifest
from consentry.wire import Activity, json_schema
from consentry_server.app import create_app, create_public_app
from consentry_server.openapi import openapi
from consentry_server.publish.release import publish
from consentry_server.storage import PublicStore, SQLiteStorage
from consentry_server.storage.base import store_report

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: Every operation the description holds, as (method, path).
OPERATIONS = {(method.upper(), path) for path, item in openapi()["paths"].items() for method in item}  # type: ignore[attr-defined]
# Bodies the standard serializers do not know: OTLP's binary protobuf, and manifests as TOML.
schemathesis.serializer.alias("application/x-protobuf", "application/octet-stream")
schemathesis.serializer.alias("application/toml", "text/plain")
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
    """The description over the application; its lifespan (started by schemathesis) ends with the test.

    Loaded as a document (the one ``/openapi.json`` serves: a test checks it) rather than from the route, which
    schemathesis would then leave out of the operations it calls.
    """
    schema = schemathesis.openapi.from_dict(openapi())
    schema.app = create_app(settings, published)
    try:
        yield schema
    finally:
        asgi.shutdown_lifespans()


def fuzz(strategy: st.SearchStrategy[Any], headers: dict[str, str] | None = None) -> None:
    """Call every case ``strategy`` generates (with ``headers``) and run the checks on each answer."""

    @FUZZ
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        case.call_and_validate(checks=CHECKS, headers=headers)

    run()


def negatable(method: str, path: str) -> bool:
    """Whether data that does not fit the description exists: a body, or a query parameter (typed: an enum, a
    date). Any string fits a path parameter or a header the description leaves free."""
    operation = openapi()["paths"][path][method.lower()]  # type: ignore[index]
    return "requestBody" in operation or any(item["in"] == "query" for item in operation.get("parameters", []))


CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode}")
    for method, path in sorted(OPERATIONS)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or negatable(method, path)
]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_every_generated_request_gets_a_documented_answer_below_500(api_schema, settings, method, path, mode):
    admin = {"Authorization": f"Bearer {settings.admin_token}"} if path.startswith("/admin/") else None
    fuzz(api_schema[path][method].as_strategy(generation_mode=mode), admin)


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


def routes_of(app: Starlette) -> set[tuple[str, str]]:
    """(method, path) of every route of ``app``, HEAD left out (Starlette adds it to GET), paths as OpenAPI writes
    them (``{path:path}`` is ``{path}``)."""
    return {
        (method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_route_of_the_application_is_described_and_nothing_else(settings, storage):
    described = {(method, path) for method, path in OPERATIONS}

    assert routes_of(create_app(settings, storage)) == described
    assert routes_of(create_public_app(settings)) <= described


def test_only_the_admin_routes_need_the_token(client):
    description = client.get("/openapi.json").json()
    secured = {
        path for path, item in description["paths"].items() for operation in item.values() if "security" in operation
    }
    admin = {path for _, path in routes_of(client.app) if path.startswith("/admin/")}
    assert secured == admin
    assert admin  # the scheme is used: by the routes that need it
    assert description["components"]["securitySchemes"] == {"admin": {"type": "http", "scheme": "bearer"}}


def test_the_report_body_schema_is_the_wire_schema(client):
    description = client.get("/openapi.json").json()
    assert description == json.loads(json.dumps(openapi()))  # what the fuzzing tests load
    expected = json_schema()
    del expected["$schema"], expected["$id"]
    assert description["components"]["schemas"]["Report"] == expected
    body = description["paths"]["/v1/reports/{level}"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Report"}
