"""The HTTP surface: public JSON API, overview page, security and CORS headers, admin API."""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from pathlib import Path

import pytest

from consentry.wire import Activity, encode
from consentry_server.publish.release import publish
from consentry_server.storage import PublicStore
from consentry_server.storage.base import store_report

NAPARI_PLUGINS = sorted(Path(__file__).parents[2].glob("examples/consentry_examples/napari_like/plugins/*.toml"))

MON = datetime.date(2026, 11, 16)  # a Monday
NEXT_MON = MON + datetime.timedelta(days=7)
ADD_IMAGE, ADD_POINTS = "napari:layer:add_image", "napari:layer:add_points"
THRESHOLD = 3
RECEIVED = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
SECURITY_HEADERS = ("x-content-type-options", "content-security-policy", "x-frame-options", "referrer-policy")


@pytest.fixture
def published(storage, settings, make_report) -> PublicStore:
    """Published with k = 3: week of MON has 5 installs (shown), the next week 2 (suppressed).

    ``ADD_IMAGE`` is counted by 3 reporters (shown), ``ADD_POINTS`` by 2 (suppressed).
    """
    reports = [make_report(reporter=n, days=(MON,), system={"os": "linux"}) for n in range(5)]
    reports += [make_report(reporter=n, days=(NEXT_MON,), system={"os": "windows"}) for n in (10, 11)]
    reports += [make_report("full", reporter=n, days=(MON,), counts={MON: {ADD_IMAGE: 2}}) for n in range(3)]
    reports += [make_report("full", reporter=n, days=(MON,), counts={MON: {ADD_POINTS: 1}}) for n in (3, 4)]
    for report in reports:
        store_report(storage, report, received=RECEIVED)
    storage.aggregate()
    public = PublicStore(settings.public_path)
    publish(storage, public, threshold=THRESHOLD, now=RECEIVED)
    return public


def admin(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# ---- public API ------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("published")
def test_meta_describes_the_publication(client):
    response = client.get("/api/v1/meta")
    assert response.status_code == 200
    meta = response.json()
    assert {key: meta[key] for key in ("format", "threshold", "published_at", "noise", "publication")} == {
        "format": 1,
        "threshold": THRESHOLD,
        "published_at": RECEIVED.isoformat(),
        "noise": None,
        "publication": 1,
    }
    assert "complementary" in meta["suppression"]


@pytest.mark.parametrize("epsilon", [None, 0.5])
def test_meta_and_the_open_data_index_give_each_value_one_type(client, storage, settings, make_report, epsilon):
    """Numbers are JSON numbers in both; noise is null or an object in both; the shared keys agree."""
    for n in range(4):
        store_report(storage, make_report(reporter=n, days=(MON,)), received=RECEIVED)
    storage.aggregate()
    publish(storage, PublicStore(settings.public_path), threshold=THRESHOLD, now=RECEIVED, noise_epsilon=epsilon)
    meta = client.get("/api/v1/meta").json()
    index = client.get("/data/v1/index.json").json()
    shared = ("format", "threshold", "published_at", "suppression", "noise")
    assert {key: meta[key] for key in shared} == {key: index[key] for key in shared}
    for document in (meta, index):
        assert type(document["threshold"]) is int
        assert type(document["format"]) is int
        assert isinstance(document["published_at"], str)
        assert document["noise"] is None if epsilon is None else document["noise"]["epsilon_per_number"] == epsilon
    assert type(meta["publication"]) is int


def test_meta_is_empty_before_the_first_publication(client):
    response = client.get("/api/v1/meta")
    assert response.status_code == 200
    assert response.json() == {}
    assert client.get("/api/v1/apps").json() == []


@pytest.mark.usefixtures("published")
def test_apps_lists_the_published_applications(client):
    response = client.get("/api/v1/apps")
    assert response.status_code == 200
    assert response.json()[0] == {
        "name": "napari-like",
        "title": "Napari-like viewer",
        "homepage": "https://napari-like.example.org",
    }
    assert [app["name"] for app in response.json()] == ["napari-like", "slicer-like", "stripepy-like"]


@pytest.mark.usefixtures("published")
def test_installs_per_week_and_per_day(client):
    week = client.get("/api/v1/apps/napari-like/installs", params={"period": "week", "level": "basic"})
    assert week.status_code == 200
    assert week.json() == {
        "app": "napari-like",
        "period": "week",
        "threshold": THRESHOLD,
        "rows": [{"start": MON.isoformat(), "level": "basic", "reporters": 5, "new_installs": 0}],
    }
    day = client.get("/api/v1/apps/napari-like/installs", params={"period": "day"}).json()
    assert [(row["start"], row["level"], row["reporters"]) for row in day["rows"]] == [
        (MON.isoformat(), "basic", 5),
        (MON.isoformat(), "full", 5),
    ]
    assert client.get("/api/v1/apps/napari-like/installs").json()["period"] == "week"  # the default


@pytest.mark.usefixtures("published")
def test_counters_and_values(client):
    counters = client.get("/api/v1/apps/napari-like/counters", params={"period": "day", "kind": "event"}).json()
    assert counters["rows"] == [
        {"start": MON.isoformat(), "kind": "event", "scope": "", "name": ADD_IMAGE, "total": 6, "reporters": 3}
    ]
    values = client.get("/api/v1/apps/napari-like/values", params={"period": "week", "field": "system.os"}).json()
    assert values["rows"] == [{"start": MON.isoformat(), "field": "system.os", "value": "linux", "reporters": 5}]


@pytest.mark.usefixtures("published")
def test_months_are_published_too(client):
    installs = client.get("/api/v1/apps/napari-like/installs", params={"period": "month", "level": "full"}).json()

    assert installs["rows"] == [{"start": "2026-11-01", "level": "full", "reporters": 5, "new_installs": 0}]


def test_answers_are_kept_until_the_next_publication(client, storage, published, make_report):
    before = client.get("/api/v1/apps/napari-like/installs", params={"period": "week", "level": "basic"})
    again = client.get("/api/v1/apps/napari-like/installs", params={"period": "week", "level": "basic"})
    for n in range(20, 30):  # ten more installs in the week of MON: published at the next publication only
        store_report(storage, make_report(reporter=n, days=(MON,)), received=RECEIVED)
    storage.aggregate()
    unchanged = client.get("/api/v1/apps/napari-like/installs", params={"period": "week", "level": "basic"})
    publish(storage, published, threshold=THRESHOLD, now=RECEIVED)
    after = client.get("/api/v1/apps/napari-like/installs", params={"period": "week", "level": "basic"})

    assert before.json() == again.json() == unchanged.json()
    assert before.json()["rows"][0]["reporters"] == 5
    assert after.json()["rows"][0]["reporters"] == 15


@pytest.mark.usefixtures("published")
def test_since_and_until_select_periods_by_their_first_day(client):
    def starts(**params: str) -> list[str]:
        answer = client.get("/api/v1/apps/napari-like/installs", params={"level": "basic", **params}).json()
        return [row["start"] for row in answer["rows"]]

    assert starts(period="week") == [MON.isoformat()]
    assert starts(period="week", since=MON.isoformat(), until=MON.isoformat()) == [MON.isoformat()]
    assert starts(period="week", since=(MON + datetime.timedelta(days=1)).isoformat()) == []
    assert starts(period="week", until=(MON - datetime.timedelta(days=1)).isoformat()) == []
    assert starts(period="day", until=MON.isoformat()) == [MON.isoformat()]  # the 92 days ending then
    assert starts(period="day", since=(MON - datetime.timedelta(days=91)).isoformat()) == [MON.isoformat()]
    assert starts(period="day", since=(MON - datetime.timedelta(days=92)).isoformat()) == []  # ...starting then


@pytest.mark.usefixtures("published")
@pytest.mark.parametrize(
    "query",
    [
        "period=day&since=2026-01-01&until=2026-12-31",
        "period=week&since=2026-12-01&until=2026-11-01",
        "period=week&since=yesterday",
        "period=week&until=2026-02-30",
        "period=day&since=" + "9" * 5000,
    ],
)
def test_bad_ranges_are_refused_with_a_code(client, query):
    response = client.get(f"/api/v1/apps/napari-like/counters?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_range"
    assert len(response.content) < 300


@pytest.mark.usefixtures("published")
@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/api/v1/apps/napari-like/installs?period=quarter", 400, "bad_period"),
        ("/api/v1/apps/napari-like/counters?period=year", 400, "bad_period"),
        ("/api/v1/apps/napari-like/values?period=", 400, "bad_period"),
        ("/api/v1/apps/napari-like/counters?period=week&kind=secret", 400, "bad_kind"),
        ("/api/v1/apps/not-published/installs?period=week", 404, "unknown_app"),
        ("/api/v1/apps/not-published/values", 404, "unknown_app"),
    ],
)
def test_bad_queries_are_refused_with_a_code(client, url, status, code):
    response = client.get(url)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


@pytest.mark.usefixtures("published")
@pytest.mark.parametrize("url", ["/api/v1/meta", "/api/v1/apps", "/api/v1/apps/napari-like/installs", "/"])
def test_public_answers_are_cacheable_for_a_minute(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=60"


@pytest.mark.usefixtures("published")
@pytest.mark.parametrize("url", ["/api/v1/meta", "/api/v1/apps/napari-like/values", "/api/v1/apps/nope/installs"])
def test_cors_is_open_on_the_public_api(client, url):
    response = client.get(url, headers={"origin": "https://dashboard.example.org"})
    assert response.headers["access-control-allow-origin"] == "*"


def test_cors_is_not_offered_outside_the_public_api(client, make_report, settings):
    origin = {"origin": "https://evil.example.org"}
    responses = [
        client.post(
            "/v1/reports/basic", content=encode(make_report()), headers={"content-type": "application/json", **origin}
        ),
        client.get("/admin/v1/stats", headers={**admin(str(settings.admin_token)), **origin}),
        client.get("/", headers=origin),
        client.get("/healthz", headers=origin),
    ]
    assert [response.status_code for response in responses] == [200, 200, 200, 200]
    assert [response.headers.get("access-control-allow-origin") for response in responses] == [None] * 4


def test_a_preflight_on_the_public_api_gets_204(client):
    headers = {"origin": "https://dashboard.example.org", "access-control-request-method": "GET"}
    response = client.options("/api/v1/apps", headers=headers)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "GET" in response.headers["access-control-allow-methods"]
    assert response.content == b""


def test_a_preflight_outside_the_public_api_is_not_granted(client):
    headers = {"origin": "https://evil.example.org", "access-control-request-method": "POST"}
    response = client.options("/admin/v1/manifests", headers=headers)
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


REQUESTS = {
    "overview": ("GET", "/", {}),
    "api": ("GET", "/api/v1/meta", {}),
    "api_error": ("GET", "/api/v1/apps/nope/installs", {}),
    "health": ("GET", "/healthz", {}),
    "ingest_refusal": ("POST", "/v1/reports/basic", {"content-type": "text/plain"}),
    "admin_refusal": ("GET", "/admin/v1/stats", {}),
    "not_found": ("GET", "/no/such/page", {}),
    "api_preflight": ("OPTIONS", "/api/v1/apps", {"origin": "https://x.example.org"}),
}


@pytest.mark.parametrize(("method", "url", "headers"), REQUESTS.values(), ids=REQUESTS.keys())
def test_every_response_carries_the_security_headers(client, method, url, headers):
    response = client.request(method, url, headers=headers, content=b"{}" if method == "POST" else None)
    missing = [name for name in SECURITY_HEADERS if name not in response.headers]
    assert not missing, f"{method} {url} ({response.status_code}) lacks {missing}"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


# ---- dashboard page --------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("published")
def test_the_dashboard_page_is_a_shell_of_relative_links_to_packaged_files(client, settings):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    # The numbers are drawn in the browser from the open data (tests/e2e/test_dashboard.py); the page holds none.
    assert f"<td>{MON.isoformat()}</td>" not in page
    sources = re.findall(r'(?:src|href)="([^"#]+)"', page)
    assert sources
    assert all(not source.startswith(("http:", "https:", "//", "/")) for source in sources)
    for source in sources:
        if source.startswith("static/"):
            asset = client.get("/" + source)
            assert asset.status_code == 200, source
            assert asset.headers["cache-control"] == "public, max-age=3600"
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/../pages.py").status_code == 404
    document = client.get("/transparency/napari-like.json").json()
    assert document["app"] == "napari-like"
    # No signing key on this server yet: the page learns it from the document (null), never from a request
    # that would answer 404 in the browser's console.
    assert document["certificate_key"] is None
    assert not settings.signing_key_path.exists()


def test_the_dashboard_page_before_any_publication(client):
    response = client.get("/")
    assert response.status_code == 200
    assert '<a href="data/v1/index.json">' in response.text
    assert client.get("/transparency/napari-like.json").status_code == 404


# ---- admin API -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "url"), [("GET", "/admin/v1/stats"), ("POST", "/admin/v1/manifests")])
def test_the_admin_api_is_closed_without_a_configured_token(app_client, settings, storage, method, url):
    with app_client(dataclasses.replace(settings, admin_token=None), storage) as client:
        response = client.request(method, url, headers={**admin("anything"), "content-type": "application/toml"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "admin_disabled"


@pytest.mark.parametrize(
    "headers",
    [{}, admin("wrong-token"), {"authorization": "Basic c2VydmVyOnRva2Vu"}, admin("")],
    ids=["none", "wrong", "basic_scheme", "empty"],
)
def test_the_admin_api_wants_the_right_bearer_token(client, settings, headers):
    response = client.post("/admin/v1/manifests", content=b"x", headers={**headers, "content-type": "application/toml"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    stats = client.get("/admin/v1/stats", headers=headers)
    assert stats.status_code == 401
    assert client.get("/admin/v1/stats", headers=admin(str(settings.admin_token))).status_code == 200


@pytest.fixture
def admin_client(app_client, settings, empty_storage):
    with app_client(settings, empty_storage) as client:
        client.headers.update(admin(str(settings.admin_token)))
        yield client


def test_registering_a_toml_manifest_then_again(admin_client, napari, empty_storage):
    text = Path(napari.source).read_text("utf-8")
    first = admin_client.post("/admin/v1/manifests", content=text, headers={"content-type": "application/toml"})
    assert first.status_code == 201
    assert first.json() == {"app": "napari-like", "consent_version": napari.consent_version, "registered": True}
    again = admin_client.post("/admin/v1/manifests", content=text, headers={"content-type": "application/toml"})
    assert again.status_code == 200
    assert again.json()["registered"] is False
    as_json = json.dumps(napari.to_document())
    same = admin_client.post("/admin/v1/manifests", content=as_json, headers={"content-type": "application/json"})
    assert same.status_code == 200
    assert same.json()["consent_version"] == napari.consent_version
    assert empty_storage.apps() == ["napari-like"]


def test_registering_a_plugin_manifest(admin_client, empty_storage):
    for path in NAPARI_PLUGINS:
        response = admin_client.post(
            "/admin/v1/manifests", content=path.read_bytes(), headers={"content-type": "text/plain"}
        )
        assert response.status_code == 201
        assert response.json()["app"] == "napari-like"
        assert response.json()["plugin"] == path.stem
    assert empty_storage.apps() == []  # the host application itself is not registered yet


def test_an_invalid_manifest_is_refused_with_its_problems(admin_client, empty_storage):
    text = 'manifest_version = 1\n[app]\nname = "Not A Name"\n[levels.basic]\nsystem = ["hostname"]\n'
    response = admin_client.post("/admin/v1/manifests", content=text, headers={"content-type": "application/toml"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "invalid_manifest"
    problems = {problem["field"]: problem["message"] for problem in body["problems"]}
    assert "app.name" in problems
    assert any(field.startswith("levels.basic") for field in problems)
    assert all(isinstance(message, str) and message for message in problems.values())
    assert empty_storage.apps() == []


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"name = 1", "application/xml", 415, "unsupported_media_type"),
        (b"name = 1", "", 415, "unsupported_media_type"),
        (b'manifest_version = 1\n[app]\nname = "\xff"', "application/toml", 400, "not_utf8"),
        (b"{not json", "application/json", 400, "invalid_manifest"),
    ],
    ids=["xml", "no_type", "not_utf8", "bad_json"],
)
def test_a_manifest_body_of_the_wrong_kind_is_refused(admin_client, content, content_type, status, code):
    response = admin_client.post("/admin/v1/manifests", content=content, headers={"content-type": content_type})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_an_application_registered_after_a_refusal_is_accepted(admin_client, make_report, napari, today):
    day = today - datetime.timedelta(days=1)
    report = make_report(days=(day,), system={"os": "linux"}, activity={day: Activity(runs=1)})
    body, json_type = encode(report), {"content-type": "application/json"}
    refused = admin_client.post("/v1/reports/basic", content=body, headers=json_type)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "unknown_app"

    registered = admin_client.post(
        "/admin/v1/manifests", content=json.dumps(napari.to_document()), headers={"content-type": "application/json"}
    )
    assert registered.status_code == 201

    accepted = admin_client.post("/v1/reports/basic", content=body, headers=json_type)
    assert accepted.status_code == 200
    assert accepted.json() == {"status": "stored", "days": 1}
    stats = admin_client.get("/admin/v1/stats").json()
    assert {key: stats[key] for key in ("report_rows", "apps", "refused")} == {
        "report_rows": 1,
        "apps": ["napari-like"],
        "refused": {"unknown_app": 1},
    }
