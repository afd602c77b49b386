"""Scale-out on PostgreSQL: stateless ingest servers on several hosts, aggregation and publishing from any of them.

Two real ``consentry-server serve`` processes on different ports share one real PostgreSQL database. Reports go
to both at once from many threads; then ``aggregate`` runs from two processes at the same moment, and each host
publishes into a public store of its own. Every published total must be exact: no report lost, none counted
twice, and the two hosts' publications identical.
"""

from __future__ import annotations

import gzip
import http.client
import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from consentry.manifest import load_manifest
from consentry.wire import Report, encode
from consentry_server.storage.public import PublicStore
from support.e2e import NO_RATE_LIMITS, run, utc_yesterday
from support.paths import NAPARI
from support.processes import Started, script, start, stop

REPORTERS = 240  # distinct installs; k (the reporter threshold) is 10
SENDERS = 8  # threads per server


def _reports() -> list[Report]:
    """One napari-like 'full' report per reporter, each counting its own number of images; some sent twice."""
    napari = load_manifest(NAPARI)
    day = utc_yesterday()
    made = [
        Report(
            app=napari.name,
            app_version="0.5.6",
            level="full",
            consent_version=napari.consent_version,
            reporter=f"{number:032x}",
            first_report=False,
            days=(day,),
            counts={day: {"napari:layer:add_image": 1 + number % 5}},
        )
        for number in range(REPORTERS)
    ]
    return made + made[::7]  # a retry of the same report, to another server: stored once


def _send(port: int, reports: list[Report], failures: list[str]) -> None:
    for report in reports:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            body = gzip.compress(encode(report), mtime=0)
            headers = {"content-type": "application/json", "content-encoding": "gzip"}
            connection.request("POST", "/v1/reports/full", body=body, headers=headers)
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException) as error:
            failures.append(f"{type(error).__name__} on port {port}")
            continue
        finally:
            connection.close()
        if not 200 <= status < 300:
            failures.append(f"{status} on port {port}")


def _options(database: str, public: Path, config: Path) -> list[str]:
    return ["--config", str(config), "--db", database, "--public-db", str(public)]


@pytest.mark.slow
def test_two_ingest_hosts_and_two_aggregations_publish_exact_totals(tmp_path, fresh_postgres_url):
    config = tmp_path / "server.toml"
    config.write_text(NO_RATE_LIMITS, "utf-8")
    env = {key: value for key, value in os.environ.items() if key != "CONSENTRY_ADMIN_TOKEN"}
    publics = [tmp_path / f"public-{host}.sqlite3" for host in ("a", "b")]
    added = run(
        [script("consentry-server"), "apps", "add", *_options(fresh_postgres_url, publics[0], config), str(NAPARI)], env
    )
    assert added.returncode == 0, added.stderr.decode()

    servers: list[Started] = []
    try:
        for public in publics:
            command = [script("consentry-server"), "serve", *_options(fresh_postgres_url, public, config)]
            servers.append(
                start([*command, "--host", "127.0.0.1", "--port", "0"], env, r"listening on http://127\.0\.0\.1:(\d+)")
            )
        ports = [int(server.match.group(1)) for server in servers]
        to_send = _reports()
        failures: list[str] = []
        senders = [
            threading.Thread(target=_send, args=(ports[n % 2], to_send[n :: SENDERS * 2], failures))
            for n in range(SENDERS * 2)
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(300)
        assert not any(sender.is_alive() for sender in senders)
        assert failures == []
    finally:
        for server in servers:
            stop(server)

    # Aggregation from two hosts at the same moment: one waits for the other, the totals are computed once.
    aggregations = [
        subprocess.Popen(
            [script("consentry-server"), "aggregate", *_options(fresh_postgres_url, public, config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for public in publics
    ]
    for aggregation in aggregations:
        _, err = aggregation.communicate(timeout=300)
        assert aggregation.returncode == 0, err.decode()

    # Each host publishes into its own public store, from the shared aggregates.
    for public in publics:
        published = run([script("consentry-server"), "publish", *_options(fresh_postgres_url, public, config)], env)
        assert published.returncode == 0, published.stderr.decode()

    day = utc_yesterday().isoformat()
    expected_images = sum(1 + number % 5 for number in range(REPORTERS))
    tables = []
    for public in publics:
        store = PublicStore(public)
        installs = [row for row in store.installs("napari-like", "day") if row["start"] == day]
        counters = [row for row in store.counters("napari-like", "day") if row["start"] == day]
        tables.append((installs, counters))
        assert {row["level"]: row["reporters"] for row in installs}["full"] == REPORTERS
        [images] = [row for row in counters if row["name"] == "napari:layer:add_image"]
        assert (images["total"], images["reporters"]) == (expected_images, REPORTERS)
    assert tables[0] == tables[1]
    with sqlite3.connect(publics[0]) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.close()
