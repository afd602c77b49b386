"""One real path, end to end: consent, counting, the report on disk, preview, upload over HTTP, validation and
storage by the server, aggregation, publication and the public JSON API. Every step runs the real code:
the client library in this process, the ``consentry`` and ``consentry-server`` console scripts as processes.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import consentry
import consentry.wire
from consentry._local.session import AppSession
from consentry.cli import ExitCode
from consentry.manifest import loads_manifest
from support.e2e import EXTRA_EVENT, manifest_file, run, yesterday_noon
from support.processes import RunningServer, client_environment, script

pytestmark = pytest.mark.slow


def table_counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as db:
        return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("reports", "counters")}  # noqa: S608


def test_report_travels_from_consent_to_the_public_api(server: RunningServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = client_environment(home, tmp_path)
    path = manifest_file(tmp_path, server.url)
    manifest = consentry.load_manifest(path)

    # The operator registers the manifest through the admin API.
    registered = server.admin("/admin/v1/manifests", path.read_bytes())
    assert registered == {"app": "e2e-app", "consent_version": manifest.consent_version, "registered": True}

    # Before consent the application gets a recorder that does nothing, and nothing is written.
    clock = yesterday_noon()
    assert not consentry.init(manifest, home=home, environ=env, clock=clock).enabled
    assert not home.exists()

    # The user says yes (full level); the application counts through the client.
    consentry.set_consent(manifest, "on", "full", home=home, environ=env, clock=clock)
    recorder = consentry.init(
        manifest, home=home, environ=env, clock=clock, app_version="1.2.3", background=False, flush_at_exit=False
    )
    assert recorder.enabled
    recorder.count("file.open", 3)
    recorder.count("export.png", 2)
    recorder.count("not.declared")
    recorder.flush()
    assert recorder.drops == {"not in the manifest": 1}

    # The next day, the client writes that day's reports to disk, one per level.
    session = AppSession.open(manifest, home=home, environ=env)
    written = session.prepare_reports()
    assert sorted(file.name.split(".")[1] for file in written) == ["basic", "full"]
    contents = [file.read_bytes() for file in sorted(written)]
    on_disk = b"".join(contents)
    reports = [consentry.wire.decode(file.read_bytes()) for file in written]
    assert {report.level: report.total("file.open") + report.total("export.png") for report in reports} == {
        "basic": 3,
        "full": 2,
    }

    # `consentry preview` prints exactly those bytes.
    preview = run([script("consentry"), "preview", "e2e-app", "--raw", "--manifest", str(path)], env)
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout == on_disk
    readable = run([script("consentry"), "preview", "e2e-app", "--manifest", str(path)], env)
    for file in written:
        assert file.read_bytes() in readable.stdout

    # `consentry upload` sends them over HTTP to each level's URL; the server validates and stores them.
    upload = run([script("consentry"), "upload", "e2e-app", "--manifest", str(path)], env)
    assert upload.returncode == ExitCode.OK, upload.stdout + upload.stderr
    assert b"2 sent" in upload.stdout
    assert not any(file.exists() for file in written)
    history = session.outbox.history()
    assert [(entry.status, entry.outcome) for entry in history] == [(200, "sent"), (200, "sent")]
    assert sorted(entry.report.encode() for entry in history) == sorted(contents)
    assert table_counts(server.database)["reports"] == 2

    # The operator aggregates and publishes (threshold lowered to one reporter for the test).
    db = ["--db", f"sqlite:///{server.database}", "--public-db", str(server.public)]
    assert run([script("consentry-server"), "aggregate", *db], env).returncode == 0
    published = run([script("consentry-server"), "publish", *db, "--reporter-threshold", "1"], env)
    assert published.returncode == 0, published.stderr

    # The public JSON API returns the counts.
    day = reports[0].days[0].isoformat()
    counters = server.get_json("/api/v1/apps/e2e-app/counters?period=day&kind=event")
    assert isinstance(counters, dict)
    totals = {(row["start"], row["name"]): (row["total"], row["reporters"]) for row in counters["rows"]}
    assert totals == {(day, "file.open"): (3, 1), (day, "export.png"): (2, 1)}
    installs = server.get_json("/api/v1/apps/e2e-app/installs?period=day")
    assert isinstance(installs, dict)
    assert [(row["start"], row["level"], row["reporters"]) for row in installs["rows"]] == [
        (day, "basic", 1),
        (day, "full", 1),
    ]
    assert server.get_json("/api/v1/meta")["threshold"] == 1  # type: ignore[index]


def test_event_missing_from_the_manifest_is_refused_and_nothing_is_stored(
    server: RunningServer, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = client_environment(home, tmp_path)
    registered_path = manifest_file(tmp_path, server.url)
    server.admin("/admin/v1/manifests", registered_path.read_bytes())
    # A newer release of the application declares an event the server was never told about.
    newer_path = manifest_file(tmp_path, server.url, extra=EXTRA_EVENT, name="newer.toml")
    newer = consentry.load_manifest(newer_path)

    clock = yesterday_noon()
    consentry.set_consent(newer, "on", "basic", home=home, environ=env, clock=clock)
    recorder = consentry.init(
        newer, home=home, environ=env, clock=clock, app_version="1.3.0", background=False, flush_at_exit=False
    )
    recorder.count("export.gif", 4)
    recorder.flush()
    [pending] = AppSession.open(newer, home=home, environ=env).prepare_reports()
    body = pending.read_bytes()

    # Sent as the client sends it: a 400 that names the event, and nothing stored.
    request = urllib.request.Request(  # noqa: S310 - our own server
        f"{server.url}/v1/reports/basic", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    assert refused.value.code == 400
    error = json.loads(refused.value.read())["error"]
    refused.value.close()
    assert error["code"] == "event_not_in_manifest"
    assert "export.gif" in error["field"]
    assert "export.gif" in error["message"]
    assert table_counts(server.database) == {"reports": 0, "counters": 0}

    # The client's own upload gets the same answer: it drops the report and records why.
    upload = run([script("consentry"), "upload", "e2e-app", "--manifest", str(newer_path)], env)
    assert upload.returncode == ExitCode.REFUSED
    assert b"export.gif" in upload.stdout
    [entry] = AppSession.open(newer, home=home, environ=env).outbox.history()
    assert entry.status == 400
    assert "export.gif" in entry.outcome
    assert not pending.exists()
    assert table_counts(server.database) == {"reports": 0, "counters": 0}
    stats = server.admin("/admin/v1/stats")
    assert isinstance(stats, dict)
    assert {key: stats[key] for key in ("report_rows", "apps", "refused")} == {
        "report_rows": 0,
        "apps": ["e2e-app"],
        "refused": {"event_not_in_manifest": 2},
    }
    assert loads_manifest(registered_path.read_text()).consent_version != newer.consent_version
