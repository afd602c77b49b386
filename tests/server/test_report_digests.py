"""A report's identity is its content, not its spelling: the same report stored once however it is written.

Reports are keyed by application, level, reporter and day, and told apart by the digest of their canonical
content (``storage.rows.report_digest``): the same report sent in the client's canonical encoding and as compact
JSON is stored once, and a report validation changed before storing (plugins that are not public stored as
``other``) is recognised as stored when it comes again as stored.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sqlite3

import pytest

from consentry.manifest import Manifest
from consentry.wire import Command, DataCategory, Plugin, Report, encode
from consentry_server.storage.rows import report_digest
from support.mutations import valid_reports


@pytest.fixture
def reports(manifests: dict[str, Manifest]) -> list[Report]:
    """The fuzzing's valid reports, and richer ones: several days, plugin counts, exceptions, many commands."""
    base = valid_reports(manifests)
    full, commands = base[2], base[3]
    first, second = full.days[0] - datetime.timedelta(days=1), full.days[0]
    richer = [
        dataclasses.replace(
            full,
            days=(first, second),
            first_report=True,
            counts={first: {"napari:window:file:save_layers": 2}, second: {"napari:window:file:drag_and_drop": 9}},
            exceptions={second: {"ValueError": 1, "KeyError": 3}},
            plugins=(Plugin("napari-blobs", "0.3.0", {first: {"detect": 1}, second: {"detect": 2}}),),
            data=(
                DataCategory(first, "image", "ndarray", "float32", 2, "SMALL", 1),
                DataCategory(second, "image", "ndarray", "uint8", 3, "MEDIUM", 2),
            ),
        ),
        dataclasses.replace(
            commands,
            commands=(
                Command(commands.days[0], "call", "1-10min", 0, 2, {"format": "mcool", "force": True}),
                Command(commands.days[0], "call", "<1s", 1, 1, {"format": "cool"}, "ValueError"),
                Command(commands.days[0], "plot", "1-10s", 0, 7),
            ),
        ),
    ]
    return [*base, *richer]


def test_the_same_report_spelled_two_ways_is_stored_once(client, reports):
    """The digests of the two paths agree, so idempotency does not depend on the spelling."""
    for number, original in enumerate(reports):
        report = dataclasses.replace(original, reporter=f"{number + 1:032x}")
        body = encode(report)
        compact = json.dumps(json.loads(body), separators=(",", ":")).encode()
        headers = {"content-type": "application/json"}
        first = client.post(f"/v1/reports/{report.level}", content=body, headers=headers)
        again = client.post(f"/v1/reports/{report.level}", content=compact, headers=headers)
        assert first.json()["status"] == "stored", first.text
        assert again.json()["status"] == "duplicate", (report, again.text)


def test_a_report_whose_plugins_are_stored_as_other_is_identified_as_stored(client, reports, storage):
    """Validation stores plugins that are not public as 'other'; the digest is then that of the stored report."""
    middle = next(report for report in reports if report.plugins and report.level == "middle")
    report = dataclasses.replace(
        middle, reporter="cd" * 16, plugins=(*middle.plugins[:1], Plugin("not-public-here", "1.0"))
    )
    headers = {"content-type": "application/json"}
    first = client.post(f"/v1/reports/{report.level}", content=encode(report), headers=headers)
    assert first.json()["status"] == "stored", first.text
    stored = dataclasses.replace(report, plugins=(middle.plugins[0], Plugin("other", "other")))
    db = sqlite3.connect(storage.path)
    try:
        query = "SELECT digest FROM reports WHERE reporter = ?"
        (digest,) = db.execute(query, (bytes.fromhex(report.reporter),)).fetchone()
    finally:
        db.close()
    assert digest == report_digest(stored)
    again = client.post(f"/v1/reports/{report.level}", content=encode(stored), headers=headers)
    assert again.json()["status"] == "duplicate", again.text
