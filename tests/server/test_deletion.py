"""``POST /v1/deletions``: the reports of the reporter ids named are deleted, and the answer says how many."""

from __future__ import annotations

import datetime
import json

import pytest

from consentry.wire import Report, encode

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
