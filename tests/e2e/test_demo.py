"""``consentry-server demo``: the README's first command serves real data on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest

from support.processes import script, start, stop

pytestmark = pytest.mark.slow


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the demo server on 127.0.0.1
        return json.loads(response.read())


def test_demo_serves_published_counts_from_simulated_installs(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    command = [script("consentry-server"), "demo", "--data-dir", str(data), "--port", "0"]
    command += ["--installs", "200", "--days", "8", "--seed", "3"]
    started = start(command, dict(os.environ), r"Dashboard: (http://127\.0\.0\.1:\d+)/")
    try:
        url = started.match.group(1)
        apps = get(f"{url}/api/v1/apps")
        assert {app["name"] for app in apps} == {"napari-like", "stripepy-like", "slicer-like"}  # type: ignore[union-attr,index]
        weekly = {
            app: get(f"{url}/api/v1/apps/{app}/installs?period=week")["rows"]  # type: ignore[index]
            for app in ("napari-like", "stripepy-like", "slicer-like")
        }
        assert all(row["reporters"] >= 10 for rows in weekly.values() for row in rows)
        assert sum(row["reporters"] for row in weekly["napari-like"]) > 0
        counters = get(f"{url}/api/v1/apps/napari-like/counters?period=week&kind=event")["rows"]  # type: ignore[index]
        assert any(row["total"] > 0 for row in counters)
        # Countries come from the simulated installs' networks, sent as a trusted proxy would send them.
        countries = get(f"{url}/api/v1/apps/napari-like/values?period=week&field=country")["rows"]  # type: ignore[index]
        assert {row["value"] for row in countries} & {"US", "DE", "GB"}
        assert all(row["reporters"] >= 10 for row in countries)
        with urllib.request.urlopen(f"{url}/", timeout=10) as response:  # noqa: S310
            assert response.headers["content-type"].startswith("text/html")
        index = get(f"{url}/data/v1/index.json")  # what the dashboard shows (tested in a browser elsewhere)
        assert "Napari-like viewer" in {app["title"] for app in index["apps"]}  # type: ignore[index]
        # The simulated installs record with the client's recorder and send what its report builder makes, without
        # the client's files (see consentry_examples.demo): nothing of theirs is written.
        assert not (data / "clients").exists()
        assert not Path("demo-installs").exists()
    finally:
        assert stop(started) == 0
    assert "Serving until interrupted" in "".join(started.output)
    # ...and forgotten: no simulated address is in the database, or anywhere in the demo's data folder.
    stored = b"".join(path.read_bytes() for path in data.rglob("*") if path.is_file() and "clients" not in path.parts)
    assert not re.search(rb"(128\.112|132\.239|141\.2|131\.111)\.1\.\d", stored)
