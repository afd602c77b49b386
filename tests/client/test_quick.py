"""The cheap path: telling that telemetry is off without parsing the manifest, and importing little to do so."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import consentry
from consentry._consent.quick import _APP, certainly_off
from consentry.wire.schema import APP_NAME
from support.paths import NAPARI


def test_the_quick_path_spells_application_names_as_the_wire_schema_does():
    assert _APP.pattern == APP_NAME.pattern


def test_no_answer_means_off(home, environ):
    assert certainly_off(NAPARI, home, environ) == "telemetry is off (not asked yet)"
    assert certainly_off(str(NAPARI), home, environ) == "telemetry is off (not asked yet)"


def test_a_no_means_off_and_a_yes_takes_the_full_path(napari, home, environ, clock):
    consentry.set_consent(napari, "off", home=home, environ=environ, clock=clock)
    assert certainly_off(NAPARI, home, environ) == "telemetry is off (you said no)"
    consentry.set_consent(napari, "on", "basic", home=home, environ=environ, clock=clock)
    assert certainly_off(NAPARI, home, environ) is None
    assert certainly_off(napari, home, environ) is None  # a parsed manifest works the same


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"CONSENTRY_DISABLE": "1"}, "CONSENTRY_DISABLE"),
        ({"DO_NOT_TRACK": "1"}, "DO_NOT_TRACK"),
        ({"NAPARI_LIKE_NO_TELEMETRY": ""}, "NAPARI_LIKE_NO_TELEMETRY"),
        ({"NAPARI_LIKE_TELEMETRY": "off"}, "NAPARI_LIKE_TELEMETRY=off"),
    ],
)
def test_kill_switches_are_seen_even_with_consent(napari, home, environ, clock, extra, reason):
    consentry.set_consent(napari, "on", "basic", home=home, environ=environ, clock=clock)
    answer = certainly_off(NAPARI, home, {**environ, **extra})
    assert answer is not None
    assert reason in answer


@pytest.mark.parametrize(
    "content",
    [b"", b"\xff\xfe not utf-8", b"[app\nname = ", b"[app]\nname = 42\n", b'[app]\nname = "Not A Name"\n'],
    ids=["empty", "not UTF-8", "truncated", "a number", "not a name"],
)
def test_a_manifest_it_cannot_read_takes_the_full_path(tmp_path, home, environ, content):
    path = tmp_path / "manifest.toml"
    path.write_bytes(content)
    assert certainly_off(path, home, environ) is None


def test_a_damaged_answer_takes_the_full_path(napari, home, environ):
    folder = home / "apps" / napari.name
    folder.mkdir(parents=True)
    (folder / "consent.json").write_bytes(b"{not json")
    assert certainly_off(NAPARI, home, environ) is None
    assert not consentry.init(NAPARI, home=home, environ=environ, background=False).enabled


def test_init_without_consent_imports_no_storage_network_or_report_code(tmp_path):
    script = (
        "import sys, json, consentry\n"
        f"recorder = consentry.init({str(NAPARI)!r}, home={str(tmp_path)!r})\n"
        "recorder.count('napari:layer:add_image')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    modules = set(json.loads(completed.stdout))
    heavy = {
        "sqlite3",
        "http.client",
        "ssl",
        "socket",
        "consentry._record.recorder",
        "consentry.manifest",
        "consentry.wire",
    }
    assert not modules & heavy
    assert not any(tmp_path.iterdir())
