"""Open data (``/data/v1/...``) and badges (``/badges/...``): published numbers only, in documented files."""

from __future__ import annotations

import csv
import datetime
import io
import xml.etree.ElementTree as ET

import pytest
from starlette.testclient import TestClient

from consentry.wire import Plugin
from consentry_server.app import create_public_app
from consentry_server.public import badges, open_data
from consentry_server.publish.release import publish
from consentry_server.storage import PublicStore
from consentry_server.storage.base import store_report

MON = datetime.date(2026, 11, 2)  # a Monday
WEEK2, WEEK3 = MON + datetime.timedelta(days=7), MON + datetime.timedelta(days=14)
ADD_IMAGE, ADD_POINTS = "napari:layer:add_image", "napari:layer:add_points"
THRESHOLD = 3
RECEIVED = datetime.datetime(2026, 11, 20, 12, tzinfo=datetime.timezone.utc)


@pytest.fixture
def published(storage, settings, make_report) -> PublicStore:
    """k = 3. Week 1: 5 installs, 4 with napari-blobs 1.0 and 1 with napari-tracks (hidden);
    week 2: 4 installs; week 3 (still running at publication): 6 installs. ADD_IMAGE by 3 (shown), ADD_POINTS by
    2 (hidden), both in week 1.
    """
    reports = [make_report(reporter=n, days=(MON,), system={"os": "linux"}) for n in range(5)]
    reports += [make_report(reporter=n, days=(WEEK2,), system={"os": "linux"}) for n in range(20, 24)]
    reports += [make_report(reporter=n, days=(WEEK3,), system={"os": "linux"}) for n in range(30, 36)]
    blobs = (Plugin("napari-blobs", "1.0"),)
    reports += [make_report("middle", reporter=n, days=(MON,), plugins=blobs) for n in range(4)]
    reports += [make_report("middle", reporter=4, days=(MON,), plugins=(Plugin("napari-tracks", "0.3"),))]
    reports += [make_report("full", reporter=n, days=(MON,), counts={MON: {ADD_IMAGE: 2}}) for n in range(3)]
    reports += [make_report("full", reporter=n, days=(MON,), counts={MON: {ADD_POINTS: 1}}) for n in (3, 4)]
    for report in reports:
        store_report(storage, report, received=RECEIVED)
    storage.aggregate()
    public = PublicStore(settings.public_path)
    publish(storage, public, threshold=THRESHOLD, now=RECEIVED)
    return public


@pytest.fixture
def public_client(settings) -> TestClient:
    """The public side alone, which has no access to raw reports."""
    return TestClient(create_public_app(settings))


def test_the_index_describes_the_publication_and_its_applications(published, public_client):
    response = public_client.get("/data/v1/index.json")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    index = response.json()
    assert index["format"] == open_data.FORMAT
    assert index["threshold"] == THRESHOLD
    assert index["published_at"] == RECEIVED.isoformat()
    assert index["noise"] is None
    assert index["tables"]["counters"] == ["start", "kind", "scope", "name", "total", "reporters"]
    napari = next(app for app in index["apps"] if app["name"] == "napari-like")
    assert napari["plugins"] == ["napari-blobs"]  # napari-tracks: one install, not published
    assert [app["name"] for app in index["apps"]] == sorted(app.name for app in published.apps())


def test_a_table_file_holds_exactly_the_published_rows_as_json_and_csv(published, public_client):
    document = public_client.get("/data/v1/napari-like/counters-week.json").json()
    table = public_client.get("/data/v1/napari-like/counters-week.csv")

    expected = [list(row.values()) for row in published.counters("napari-like", "week")]
    assert document["columns"] == ["start", "kind", "scope", "name", "total", "reporters"]
    assert document["rows"] == expected
    assert {"app": "napari-like", "table": "counters", "period": "week", "threshold": 3}.items() <= document.items()
    assert table.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in table.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(table.text)))
    assert rows[0] == document["columns"]
    assert rows[1:] == [[str(value) for value in row] for row in expected]
    assert [MON.isoformat(), "event", "", ADD_IMAGE, "6", "3"] in rows


def test_no_file_reveals_a_suppressed_bucket(published, public_client):
    names = ["index.json"] + [f"{app}/{name}" for app in published.app_names() for name in open_data.file_names()]
    contents = {name: public_client.get(f"/data/v1/{name}") for name in names}

    assert all(response.status_code == 200 for response in contents.values())
    everything = "\n".join(response.text for name, response in contents.items() if "manifest" not in name)
    assert ADD_POINTS not in everything  # 2 reporters
    assert "napari-tracks" not in everything  # 1 install
    installs = contents["napari-like/installs-week.json"].json()
    assert all(row[2] >= THRESHOLD for row in installs["rows"])


def test_a_file_is_cached_with_an_etag_and_renewed_by_the_next_publication(published, storage, public_client):
    first = public_client.get("/data/v1/napari-like/installs-day.json")
    again = public_client.get(
        "/data/v1/napari-like/installs-day.json", headers={"if-none-match": first.headers["etag"]}
    )
    publish(storage, published, threshold=1, now=RECEIVED)
    after = public_client.get(
        "/data/v1/napari-like/installs-day.json", headers={"if-none-match": first.headers["etag"]}
    )

    assert "max-age" in first.headers["cache-control"]
    assert again.status_code == 304
    assert after.status_code == 200
    assert after.json()["threshold"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "unknown-app/installs-week.json",
        "napari-like/installs-year.json",
        "napari-like/secrets-week.json",
        "napari-like/installs-week.xml",
        "napari-like/..%2F..%2Fconsentry.sqlite3",
        "napari-like/" + "a" * 5000,
    ],
)
@pytest.mark.usefixtures("published")
def test_names_that_are_not_published_files_get_404(public_client, path):
    response = public_client.get(f"/data/v1/{path}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert len(response.content) < 1024 or "a" * 5000 not in response.text


def test_before_the_first_publication_the_files_say_so(public_client):
    response = public_client.get("/data/v1/index.json")

    assert response.status_code == 404
    assert "nothing has been published" in response.json()["error"]["message"]


def test_write_files_writes_what_the_server_serves(published, public_client, tmp_path):
    written = open_data.write_files(published, tmp_path)

    assert (tmp_path / "data" / "v1" / "index.json") in written
    for path in written:
        relative = path.relative_to(tmp_path).as_posix()
        assert path.read_bytes() == public_client.get(f"/{relative}").content, relative
    assert len(written) == 1 + len(published.app_names()) * len(open_data.file_names())


# ---- badges ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (999, "999"), (1_000, "1k"), (1_234, "1.2k"), (9_960, "10k"), (56_789, "57k"), (999_999, "1M"),
     (1_260_000, "1.3M"), (3_000_000_000, "3G")],
)  # fmt: skip
def test_compact_numbers(value, text):
    assert badges.compact_number(value) == text


def svg_text(response) -> str:
    root = ET.fromstring(response.content)  # noqa: S314 - our own output
    return " ".join(element.text or "" for element in root.iter("{http://www.w3.org/2000/svg}text"))


def test_an_application_badge_shows_the_last_complete_week(published, public_client):
    response = public_client.get("/badges/napari-like.svg")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"  # READMEs embed it from elsewhere
    assert "max-age" in response.headers["cache-control"]
    # Week 3 (6 installs) is still running on the day of publication; week 2 had 4.
    assert svg_text(response) == "users 4 weekly"
    assert badges.weekly_users(published, "napari-like") == 4


@pytest.mark.usefixtures("published")
def test_a_plugin_badge_counts_its_installs(public_client):
    assert svg_text(public_client.get("/badges/napari-like/napari-blobs.svg")) == "users 4 weekly"


def test_a_badge_never_shows_a_suppressed_number(storage, settings, make_report, public_client):
    for n in range(2):
        store_report(storage, make_report(reporter=n, days=(MON,)), received=RECEIVED)
    storage.aggregate()
    publish(storage, PublicStore(settings.public_path), threshold=THRESHOLD, now=RECEIVED)

    assert svg_text(public_client.get("/badges/napari-like.svg")) == "users too few to show"


@pytest.mark.parametrize(
    "path", ["/badges/unknown.svg", "/badges/napari-like", "/badges/napari-like/napari-tracks.svg", "/badges/x/y"]
)
@pytest.mark.usefixtures("published")
def test_unknown_badges_get_404(public_client, path):
    assert public_client.get(path).status_code == 404


def test_badge_files_match_the_served_badges(published, public_client, tmp_path):
    written = badges.write_files(published, tmp_path)

    assert tmp_path / "badges" / "napari-like" / "napari-blobs.svg" in written
    for path in written:
        assert path.read_bytes() == public_client.get("/" + path.relative_to(tmp_path).as_posix()).content
