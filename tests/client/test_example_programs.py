"""The runnable examples: the stripepy-like command line (cli_tool) and the slicer-like host (UsageEvents).

Each is run as its users would, in a child process with a private Consentry home: without consent it writes
nothing there, with consent it records what its manifest allows, and its own output is the same either way.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import consentry
from consentry._local.counts import DayRecord
from consentry_examples.slicer_like import EXAMPLE as SLICER
from consentry_examples.stripepy_like import EXAMPLE as STRIPEPY
from support.processes import client_environment, script
from support.store import recorded_day

pytestmark = pytest.mark.slow


def today_record(home: Path, app: str) -> DayRecord | None:
    today = datetime.date.today()  # noqa: DTZ011 - the programs record on the user's local day
    return recorded_day(home, app, today)


def run(command: list[str | bytes], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",  # a file name that is not UTF-8 is printed back as the bytes it was
        timeout=120,
        check=False,
    )


@pytest.fixture
def env(home: Path, tmp_path: Path) -> dict[str, str]:
    variables = client_environment(home, tmp_path)
    for app in ("STRIPEPY_LIKE", "SLICER_LIKE"):
        variables.pop(f"{app}_NO_TELEMETRY", None)
        variables.pop(f"{app}_TELEMETRY", None)
    return variables


SESSION = [
    ["download", "ENCFF993FGR", "--unit-test"],
    ["call", "ENCFF993FGR.hic", "10000", "-p", "2", "--normalization", "KR"],
    ["call", "ENCFF993FGR.hic", "10000"],  # exists: exit 1
    ["plot", "ENCFF993FGR.hic.stripes.json", "contact-map"],
    ["plot", "ENCFF993FGR.hic.stripes.json", "stripe-hist", "--relative-change-threshold", "2"],
    ["view", "ENCFF993FGR.hic.stripes.json", "--with-biodescriptors"],
    ["call", "missing.cool", "5000", "--force"],  # no such file: exit 1
    ["call", "--help"],
]


def stripepy_session(env: dict[str, str], cwd: Path) -> list[tuple[int, str, str]]:
    cwd.mkdir()
    done = [run([script("stripepy-like"), *argv], env, cwd) for argv in SESSION]
    return [(item.returncode, item.stdout, item.stderr) for item in done]


def test_stripepy_like_runs_the_same_with_and_without_consent_and_records_only_with(env, home, tmp_path):
    without = stripepy_session(env, tmp_path / "without")
    assert list(home.iterdir()) == []
    consentry.set_consent(STRIPEPY.manifest, "on", "basic", environ=env, home=home)
    with_consent = stripepy_session(env, tmp_path / "with")
    assert with_consent == without
    assert [code for code, _, _ in without] == [0, 0, 1, 0, 0, 0, 1, 0]
    assert "3 stripes in ENCFF993FGR.hic (hic, 10000 bp bins)" in without[1][1]
    assert "exists (use --force" in without[2][2]

    record = today_record(home, "stripepy-like")
    assert record is not None
    runs = sorted(
        (
            ((key := json.loads(name))[0], dict(map(tuple, key[1])), key[3], n)
            for (kind, name), n in record.counters.items()
            if kind == "command"
        ),
        key=json.dumps,
    )
    assert runs == [
        ("call", {"force": False, "format": "hic", "normalization": "KR", "nproc": True, "resolution": "10000"}, 0, 1),
        (
            "call",
            {"force": False, "format": "hic", "normalization": "NONE", "nproc": False, "resolution": "10000"},
            1,
            1,
        ),
        (
            "call",
            {"force": True, "format": "cool", "normalization": "NONE", "nproc": False, "resolution": "5000"},
            1,
            1,
        ),
        ("download", {"name": "ENCFF993FGR", "unit-test": True}, 0, 1),
        ("plot", {"plot-type": "contact-map", "relative-change-threshold": False}, 0, 1),
        ("plot", {"plot-type": "stripe-hist", "relative-change-threshold": True}, 0, 1),
        ("view", {"with-biodescriptors": True}, 0, 1),
    ]  # --help is no run; no file name is recorded


def test_stripepy_like_with_a_file_name_that_is_not_utf8(env, home, tmp_path):
    consentry.set_consent(STRIPEPY.manifest, "on", "basic", environ=env, home=home)
    name = b"\xff\xfe-patient.hic"
    (tmp_path / os.fsdecode(name)).write_text("1 2\n3 4\n", encoding="utf-8")
    done = run([sys.executable, "-m", "consentry_examples.stripepy_like", "call", name, "1000"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    record = today_record(home, "stripepy-like")
    assert record is not None
    [key] = [name for kind, name in record.counters if kind == "command"]
    assert json.loads(key)[:2] == [
        "call",
        [["force", False], ["format", "hic"], ["normalization", "NONE"], ["nproc", False], ["resolution", "1000"]],
    ]
    assert "patient" not in key


def test_slicer_like_counts_host_and_allowed_extension_events(env, home, tmp_path):
    command = [sys.executable, "-m", "consentry_examples.slicer_like"]
    without = run(command, env, tmp_path)
    assert without.returncode == 0, without.stderr
    assert "not recording usage (telemetry is off (not asked yet))" in without.stdout
    assert list(home.iterdir()) == []

    consentry.set_consent(SLICER.manifest, "on", "full", environ=env, home=home)
    consentry.set_plugin_consent(SLICER.manifest, "TotalSegmentator", allow=True, environ=env, home=home)
    done = run(command, env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:-1] == without.stdout.splitlines()[:-1]  # the same session
    assert done.stdout.splitlines()[-1] == "recording usage"
    record = today_record(home, "slicer-like")
    assert record is not None
    assert {name: n for (kind, name), n in record.counters.items() if kind == "event"} == {
        "SampleData/load": 1,
        "Data/enter": 1,
        "SegmentEditor/enter": 1,
        "SegmentEditor/effect/threshold": 1,
    }
    plugin_events = [json.loads(name) for (kind, name) in record.counters if kind == "plugin"]
    assert plugin_events == [["TotalSegmentator", "segmentation/ct/total", "full"]]  # SlicerIGT: not allowed
    assert dict(record.meta.plugins) == {"SlicerIGT": "2026.1.0", "TotalSegmentator": "2025.6.2"}


def test_slicer_like_at_the_basic_level_counts_no_module_or_extension_event(env, home, tmp_path):
    consentry.set_consent(SLICER.manifest, "on", "basic", environ=env, home=home)
    consentry.set_plugin_consent(SLICER.manifest, "TotalSegmentator", allow=True, environ=env, home=home)
    done = run([sys.executable, "-m", "consentry_examples.slicer_like", "--without", "SlicerIGT"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "SlicerIGT" not in done.stdout
    record = today_record(home, "slicer-like")
    assert record is not None
    assert [kind for kind, _ in record.counters if kind in ("event", "plugin")] == []
