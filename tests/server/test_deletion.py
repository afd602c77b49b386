"""``POST /v1/deletions``: the reports of the reporter ids named are deleted, and the answer says how many."""

from __future__ import annotations

import datetime
import gzip
import json

import pytest
from starlette.testclient import TestClient

from consentry.wire import Report, encode
from consentry_server.app import create_app
from support.bodies import MIB, chunked, gzip_bomb

YESTERDAY = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1)


def report(napari, reporter: str, day: datetime.date = YESTERDAY) -> Report:
    return Report(
        app="napari-like",
        app_version="0.5.5",
        level="basic",
        consent_version=napari.consent_version,
        reporter=reporter,
        first_report=False,
        days=(day,),
        system={"os": "linux"},
    )


def store(client, napari, reporter: str, day: datetime.date = YESTERDAY) -> None:
    reply = client.post(
        "/v1/reports/basic", content=encode(report(napari, reporter, day)), headers={"content-type": "application/json"}
    )
    assert reply.status_code == 200, reply.text


def delete(client, body: object, content_type: str = "application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/v1/deletions", content=data, headers={"content-type": content_type})


def test_the_named_reporters_are_deleted_and_counted(client, storage, napari):
    store(client, napari, "aa" * 16)
    store(client, napari, "aa" * 16, YESTERDAY - datetime.timedelta(days=1))
    store(client, napari, "bb" * 16)
    reply = delete(client, {"app": "napari-like", "reporters": ["aa" * 16, "cc" * 16]})
    assert reply.status_code == 200
    assert reply.json() == {"deleted": 2}
    assert storage.report_count() == 1
    assert delete(client, {"app": "napari-like", "reporters": ["aa" * 16]}).json() == {"deleted": 0}


def test_aggregates_are_computed_again_without_the_deleted_reports(client, storage, napari):
    for reporter in ("aa" * 16, "bb" * 16):
        store(client, napari, reporter)
    storage.aggregate()
    [before] = [row for row in storage.aggregates().installs if row.period == "day"]
    assert before.reporters == 2
    delete(client, {"app": "napari-like", "reporters": ["aa" * 16]})
    storage.aggregate()
    [after] = [row for row in storage.aggregates().installs if row.period == "day"]
    assert after.reporters == 1


def test_another_applications_reports_are_untouched(client, storage, napari):
    store(client, napari, "aa" * 16)
    assert delete(client, {"app": "stripepy-like", "reporters": ["aa" * 16]}).json() == {"deleted": 0}
    assert storage.report_count() == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"not json", 400, ""),
        ([], 400, ""),
        ({"app": "napari-like"}, 400, ""),
        ({"app": "napari-like", "reporters": [], "extra": 1}, 400, ""),
        ({"app": "Napari Like", "reporters": ["aa" * 16]}, 400, "app"),
        ({"app": "napari-like", "reporters": []}, 400, "reporters"),
        ({"app": "napari-like", "reporters": ["aa" * 16] * 65}, 400, "reporters"),
        ({"app": "napari-like", "reporters": ["AA" * 16]}, 400, "reporters[0]"),
        ({"app": "napari-like", "reporters": ["x' OR 1=1 --"]}, 400, "reporters[0]"),
        ({"app": "napari-like", "reporters": [7]}, 400, "reporters[0]"),
        ({"app": "napari-like", "reporters": "aa"}, 400, "reporters"),
    ],
    ids=[
        "not JSON",
        "an array",
        "no reporters",
        "an unknown field",
        "a bad application name",
        "no reporter",
        "too many reporters",
        "upper-case hex",
        "SQL",
        "a number",
        "a string instead of a list",
    ],
)
def test_malformed_requests_are_refused_and_delete_nothing(client, storage, napari, body, status, field):
    store(client, napari, "aa" * 16)
    reply = delete(client, body)
    assert reply.status_code == status
    assert reply.json()["error"]["field"] == field
    assert storage.report_count() == 1


def test_wrong_content_type_and_oversized_bodies_are_refused(client, storage, napari):
    store(client, napari, "aa" * 16)
    assert delete(client, {"app": "napari-like", "reporters": ["aa" * 16]}, "text/plain").status_code == 415
    huge = json.dumps({"app": "napari-like", "reporters": ["aa" * 16] * 2000}).encode()
    assert delete(client, huge).status_code == 413
    assert storage.report_count() == 1


# ---- ingest's rules: encodings, sizes, strict JSON, the source's rate limit ------------------------------------
GOOD = {"app": "napari-like", "reporters": ["aa" * 16]}


def test_a_gzip_compressed_request_is_read_as_ingest_reads_reports(client, storage, napari):
    store(client, napari, "aa" * 16)
    reply = client.post(
        "/v1/deletions",
        content=gzip.compress(json.dumps(GOOD).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"deleted": 1}
    assert storage.report_count() == 0


TRANSPORT = {
    # name: (body, extra headers, status, code)
    "br_declared_on_a_plain_body": (json.dumps(GOOD).encode(), {"content-encoding": "br"}, 415, "unsupported_encoding"),
    "gzip_declared_on_a_plain_body": (json.dumps(GOOD).encode(), {"content-encoding": "gzip"}, 400, "bad_gzip"),
    "gzip_truncated": (gzip.compress(json.dumps(GOOD).encode())[:-10], {"content-encoding": "gzip"}, 400, "bad_gzip"),
    "gzip_bomb": (gzip_bomb(MIB), {"content-encoding": "gzip"}, 413, "too_large"),
    "utf16": (json.dumps(GOOD).encode("utf-16"), {}, 400, "invalid_request"),
    "utf16_without_bom": (json.dumps(GOOD).encode("utf-16-le"), {}, 400, "invalid_request"),
    "utf32": (json.dumps(GOOD).encode("utf-32"), {}, 400, "invalid_request"),
    "utf8_bom": (b"\xef\xbb\xbf" + json.dumps(GOOD).encode(), {}, 400, "invalid_request"),
    "latin1_charset": (json.dumps(GOOD).encode(), {"content-type": "application/json; charset=latin-1"}, 415, None),
    "truncated_json": (json.dumps(GOOD).encode()[:-5], {}, 400, "invalid_request"),
    "duplicate_keys": (
        b'{"app": "stripepy-like", "app": "napari-like", "reporters": ["' + b"aa" * 16 + b'"]}',
        {},
        400,
        "invalid_request",
    ),
    "deep_nesting": (
        b'{"app": "napari-like", "reporters": ' + b"[" * 1000 + b"]" * 1000 + b"}",
        {},
        400,
        "invalid_request",
    ),
    "deep_nesting_100000": (b"[" * 100_000 + b"]" * 100_000, {}, 413, "too_large"),
    "nan": (b'{"app": "napari-like", "reporters": [NaN]}', {}, 400, "invalid_request"),
    "empty": (b"", {}, 400, "invalid_request"),
}


@pytest.mark.parametrize(("body", "headers", "status", "code"), TRANSPORT.values(), ids=TRANSPORT.keys())
def test_bodies_ingest_refuses_are_refused_and_delete_nothing(client, storage, napari, body, headers, status, code):
    store(client, napari, "aa" * 16)
    reply = client.post("/v1/deletions", content=body, headers={"content-type": "application/json", **headers})
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == (code or "unsupported_charset")
    assert storage.report_count() == 1


def test_an_oversized_body_without_a_declared_length_is_refused(client, storage, napari):
    store(client, napari, "aa" * 16)
    body = json.dumps({**GOOD, "reporters": ["aa" * 16] * 2000}).encode()
    reply = client.post("/v1/deletions", content=chunked(body), headers={"content-type": "application/json"})
    assert "content-length" not in reply.request.headers
    assert reply.status_code == 413
    assert storage.report_count() == 1


def test_a_source_over_its_burst_gets_429_and_deletes_nothing(settings, storage, napari):
    app = create_app(settings.replace(source_burst=2, source_rate_per_minute=1), storage)
    with TestClient(app, client=("203.0.113.7", 50000)) as client:
        store(client, napari, "aa" * 16)
        assert delete(client, {**GOOD, "reporters": ["bb" * 16]}).status_code == 200

        reply = delete(client, GOOD)

        assert reply.status_code == 429
        assert reply.json()["error"]["code"] == "rate_limited"
        assert int(reply.headers["retry-after"]) >= 1
        assert storage.report_count() == 1


def test_refusals_are_counted_for_operators(client, settings):
    delete(client, b"not json")
    delete(client, GOOD, "text/plain")
    stats = client.get("/admin/v1/stats", headers={"authorization": f"Bearer {settings.admin_token}"}).json()
    assert stats["refused"]["invalid_request"] == 1
    assert stats["refused"]["unsupported_media_type"] == 1
