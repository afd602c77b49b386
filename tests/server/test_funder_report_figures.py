"""The funder report's figures and methods in process, on a real publication: new installs that cannot be known
(reports stored as OTLP and the seed formats store them), noise and the privacy ledger, and the page's promises
(no script, every figure named). The report as a person runs it, in Chromium, is tests/e2e/test_funder_report.py.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import replace

import pytest

from consentry.wire import Report
from consentry_server.config import Settings
from consentry_server.public.funder_report import ReportError, build_report, default_file_name
from consentry_server.publish.release import publish
from consentry_server.storage import PublicStore, SQLiteStorage
from consentry_server.storage.base import store_report

K = 3
PERIOD = "2026-08"  # ISO weeks 32 to 35 (Thursdays 6 to 27 August)
MONDAYS = [datetime.date(2026, 8, 3) + datetime.timedelta(weeks=week) for week in range(4)]
RECEIVED = datetime.datetime(2026, 9, 1, tzinfo=datetime.timezone.utc)
PUBLISHED = datetime.datetime(2026, 9, 2, tzinfo=datetime.timezone.utc)
NOW = datetime.datetime(2026, 9, 3, 10, tzinfo=datetime.timezone.utc)
UNKNOWN_WEEK = 1  # its reports came over OTLP: whether an install is new cannot be known


def figures(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-figure="([^"]+)">([^<]*)<', html))


@pytest.fixture
def published(settings: Settings, storage: SQLiteStorage, napari) -> Settings:
    for week, monday in enumerate(MONDAYS):
        for number in range(5):
            report = Report(
                app="napari-like",
                app_version="1.0.0",
                level="basic",
                consent_version=napari.consent_version,
                reporter=f"{week * 100 + number:032x}",
                first_report=week == 0,
                days=(monday + datetime.timedelta(days=3),),
            )
            store_report(storage, report, received=RECEIVED, first_report_known=week != UNKNOWN_WEEK)
    storage.aggregate()
    return replace(settings, reporter_threshold=K)


def test_new_installs_that_cannot_be_known_are_unknown_not_hidden(published: Settings, storage: SQLiteStorage):
    publish(storage, PublicStore(published.public_path), threshold=K, now=PUBLISHED)
    html = build_report(published, app="napari-like", period=PERIOD, now=NOW)
    shown = figures(html)
    assert [shown[f"weekly:2026-W{week}"] for week in range(32, 36)] == ["5", "5", "5", "5"]
    assert [shown[f"new:2026-W{week}"] for week in range(32, 36)] == ["5", "unknown", "0", "0"]
    assert shown["new_installs"] == "hidden"  # the month holds reports that cannot tell: no number
    assert shown["unknown_weeks"] == "1"
    assert "Noise:</strong> none" in html
    assert "<script" not in html


def test_noise_and_the_ledgers_cumulative_epsilon_are_stated(published: Settings, storage: SQLiteStorage):
    pytest.importorskip("opendp")
    public = PublicStore(published.public_path)
    publish(storage, public, threshold=K, now=PUBLISHED, noise_epsilon=0.5)
    html = build_report(published, app="napari-like", period=PERIOD, now=NOW)
    shown = figures(html)
    assert shown["epsilon"] == "0.5"
    assert float(shown["cumulative_epsilon"]) == public.ledger("napari-like")[-1][-1] > 0
    rows = {row["start"]: row["reporters"] for row in public.installs("napari-like", "week")}
    for monday in MONDAYS:
        label = "{}-W{:02d}".format(*monday.isocalendar()[:2])
        assert shown[f"weekly:{label}"] == (str(rows[monday.isoformat()]) if monday.isoformat() in rows else "hidden")


def test_errors_are_the_certificates(published: Settings):
    with pytest.raises(ReportError, match="nothing has been published"):
        build_report(published, app="napari-like", period=PERIOD, now=NOW)


def test_default_file_names():
    assert default_file_name("napari-like", None, "2026-Q3") == "napari-like-2026-Q3-report.html"
    assert default_file_name("napari-like", "napari-blobs", "2026") == "napari-like-napari-blobs-2026-report.html"
