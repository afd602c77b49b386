"""What an application's author meets first: a manifest path relative to their package, the hint of
``consentry enable`` for an application it does not know, and a server that does not know the application yet.

Real processes: the application and the ``consentry`` command run in subprocesses, the server is a real
``consentry-server`` on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import consentry
from consentry._local.bookkeeping import load_state
from consentry._local.session import AppSession
from consentry.cli import ExitCode
from support.e2e import EXTRA_EVENT, manifest_file, run, two_level_manifest, yesterday_noon
from support.processes import RunningServer, client_environment, script, serving

APP = "e2e-app"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """``consentry-server serve`` on a free port of 127.0.0.1, with SQLite in a temporary folder."""
    with serving(tmp_path / "server") as server:
        yield server


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return run([script("consentry"), *args], env)


# ---- a manifest path relative to the application's package -------------------------------------------------------
def make_package(root: Path, *, manifest: bool = True) -> None:
    """``my_tool``: ``init("my_tool/telemetry.toml")`` in its ``__init__``, ``init("telemetry.toml")`` in ``cli``."""
    package = root / "my_tool"
    package.mkdir(parents=True)
    common = "import json, os, sys, warnings\nimport consentry\nwarnings.simplefilter('always')\n"
    report = "print(json.dumps({'enabled': telemetry.enabled, 'reason': getattr(telemetry, 'reason', None)}))\n"
    (package / "__init__.py").write_text(
        common + "telemetry = consentry.init('my_tool/telemetry.toml', background=False)\n" + report
    )
    (package / "cli.py").write_text(
        common + "telemetry = consentry.init('telemetry.toml', background=False)\n" + report
    )
    if manifest:
        (package / "telemetry.toml").write_text(two_level_manifest("my-tool", "http://127.0.0.1:9"))


def start_app(
    module: str, packages: Path, cwd: Path, env: dict[str, str], *flags: str
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *flags, "-c", f"import {module}"]
    return subprocess.run(
        command,
        env={**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(packages), env.get("PYTHONPATH")]))},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("module", ["my_tool", "my_tool.cli"])
def test_a_relative_manifest_path_is_found_in_the_callers_package_from_any_directory(tmp_path, module):
    packages, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    make_package(packages)
    elsewhere.mkdir()
    env = client_environment(tmp_path / "home", tmp_path)
    consentry.set_consent(packages / "my_tool" / "telemetry.toml", "on", home=tmp_path / "home", environ=env)
    started = start_app(module, packages, elsewhere, env)
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout.splitlines()[-1]) == {"enabled": True, "reason": None}
    assert started.stderr == ""  # found: no warning


def test_a_manifest_found_nowhere_gives_exactly_one_warning_naming_the_paths_tried(tmp_path):
    packages, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    make_package(packages, manifest=False)
    elsewhere.mkdir()
    env = client_environment(tmp_path / "home", tmp_path)
    started = start_app("my_tool", packages, elsewhere, env)
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout.splitlines()[-1])["enabled"] is False
    warnings = [line for line in started.stderr.splitlines() if "Warning" in line]
    assert len(warnings) == 1, started.stderr
    assert "ManifestNotFoundWarning" in warnings[0]
    assert "__init__.py" in warnings[0]  # shown at the caller's line
    for tried in (packages / "my_tool" / "my_tool" / "telemetry.toml", packages / "my_tool" / "telemetry.toml"):
        assert str(tried) in warnings[0]
    assert str(elsewhere / "my_tool" / "telemetry.toml") in warnings[0]
    assert "importlib.resources" in warnings[0]
    assert not (tmp_path / "home").exists()


def test_a_missing_manifest_never_raises_even_when_warnings_are_errors(tmp_path):
    packages, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    make_package(packages, manifest=False)
    elsewhere.mkdir()
    env = client_environment(tmp_path / "home", tmp_path)
    (packages / "my_tool" / "__init__.py").write_text(
        (packages / "my_tool" / "__init__.py").read_text().replace("warnings.simplefilter('always')", "")
    )
    started = start_app("my_tool", packages, elsewhere, env, "-W", "error")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout.splitlines()[-1])["enabled"] is False


def test_an_importlib_resources_path_works_from_anywhere(tmp_path):
    packages, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    make_package(packages)
    elsewhere.mkdir()
    init = packages / "my_tool" / "__init__.py"
    init.write_text(
        init.read_text().replace(
            "consentry.init('my_tool/telemetry.toml'",
            "consentry.init(__import__('importlib.resources').resources.files(__package__) / 'telemetry.toml'",
        )
    )
    env = client_environment(tmp_path / "home", tmp_path)
    consentry.set_consent(packages / "my_tool" / "telemetry.toml", "on", home=tmp_path / "home", environ=env)
    started = start_app("my_tool", packages, elsewhere, env)
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout.splitlines()[-1])["enabled"] is True


# ---- `consentry enable` of an application it does not know ------------------------------------------------------
def test_enable_of_an_unknown_application_points_to_the_manifest_its_package_ships(tmp_path):
    packages = tmp_path / "site"
    make_package(packages)
    env = client_environment(tmp_path / "home", tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(packages), env.get("PYTHONPATH")]))
    unknown = cli(env, "enable", "my-tool")
    assert unknown.returncode == ExitCode.UNKNOWN_APP
    hint = unknown.stderr.decode()
    assert "run the application once" not in hint
    shipped = packages / "my_tool" / "telemetry.toml"
    assert f"consentry enable my-tool --manifest {shipped}" in hint
    suggested = hint.split("ships a manifest: ", 1)[1].split()
    assert cli(env, *suggested[1:]).returncode == ExitCode.OK  # the hint's own command works
    assert b"my-tool" in cli(env, "apps").stdout


def test_enable_of_an_application_found_nowhere_says_what_can_be_done(tmp_path):
    env = client_environment(tmp_path / "home", tmp_path)
    unknown = cli(env, "enable", "no-such-tool")
    assert unknown.returncode == ExitCode.UNKNOWN_APP
    hint = unknown.stderr.decode()
    assert "run the application once" not in hint
    assert "consentry enable no-such-tool --manifest FILE" in hint
    assert "consentry.manifests" in hint
    assert not (tmp_path / "home").exists()


# ---- a server that does not know the application yet --------------------------------------------------------------
def completed_day(path: Path, home: Path, env: dict[str, str], **counts: int) -> None:
    clock = yesterday_noon()
    manifest = consentry.load_manifest(path)
    consentry.set_consent(manifest, "on", "basic", home=home, environ=env, clock=clock)
    recorder = consentry.init(manifest, home=home, environ=env, clock=clock, background=False, flush_at_exit=False)
    for name, n in counts.items():
        recorder.count(name.replace("_", "."), n)
    recorder.close()


def test_a_report_refused_as_unknown_app_waits_with_back_off_and_goes_once_the_app_is_registered(server, tmp_path):
    home = tmp_path / "home"
    env = client_environment(home, tmp_path)
    path = manifest_file(tmp_path, server.url)
    completed_day(path, home, env, file_open=3)

    refused = cli(env, "upload", APP, "--manifest", str(path))
    assert refused.returncode == ExitCode.NOT_SENT, refused.stdout + refused.stderr
    assert b"unknown_app" in refused.stdout
    assert b"kept" in refused.stdout
    session = AppSession.open(consentry.load_manifest(path), home=home, environ=env)
    [pending] = session.outbox.pending()
    [entry] = session.outbox.history()
    assert entry.status == 400
    assert entry.outcome.startswith("kept, will retry after")
    assert "unknown_app" in entry.outcome
    state = load_state(session.paths)
    assert state.retry_after is not None
    assert state.failures == 1
    assert state.drops == {}
    status = json.loads(cli(env, "status", APP, "--json").stdout)
    assert "unknown_app" in status["uploads_wait"]
    assert status["next_upload_after"] == state.retry_after.isoformat()
    assert b"uploads wait" in cli(env, "status", APP).stdout

    # The operator registers the application; the next upload sends the report kept.
    server.admin("/admin/v1/manifests", path.read_bytes())
    time.sleep(1.1)  # the server looks again for an application it did not know after a second
    sent = cli(env, "upload", APP)
    assert sent.returncode == ExitCode.OK, sent.stdout + sent.stderr
    assert b"1 sent" in sent.stdout
    assert not pending.path.exists()
    status = json.loads(cli(env, "status", APP, "--json").stdout)
    assert status["uploads_wait"] is None
    assert load_state(session.paths).waiting is None


def test_a_report_refused_for_its_content_is_still_dropped(server, tmp_path):
    home = tmp_path / "home"
    env = client_environment(home, tmp_path)
    server.admin("/admin/v1/manifests", manifest_file(tmp_path, server.url).read_bytes())
    newer = manifest_file(tmp_path, server.url, extra=EXTRA_EVENT, name="newer.toml")  # an event the server lacks
    completed_day(newer, home, env, export_gif=2)
    refused = cli(env, "upload", APP, "--manifest", str(newer))
    assert refused.returncode == ExitCode.REFUSED
    session = AppSession.open(consentry.load_manifest(newer), home=home, environ=env)
    assert session.outbox.pending() == []
    [entry] = session.outbox.history()
    assert entry.outcome.startswith("refused: event_not_in_manifest")
    assert load_state(session.paths).waiting is None


def test_the_status_text_without_waiting_has_no_waiting_lines(tmp_path):
    env = client_environment(tmp_path / "home", tmp_path)
    path = tmp_path / "m.toml"
    path.write_text(textwrap.dedent(two_level_manifest(APP, "http://127.0.0.1:9")))
    assert cli(env, "enable", APP, "--manifest", str(path)).returncode == ExitCode.OK
    assert b"uploads wait" not in cli(env, "status", APP).stdout
