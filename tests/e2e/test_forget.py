"""``consentry forget``: a deletion request to the real server, then nothing left on this machine."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

import consentry
import consentry.transport
from consentry._consent.answers import load_consent
from consentry._local.session import AppSession
from consentry.cli import ExitCode
from support.e2e import manifest_file, run, yesterday_noon
from support.processes import RunningServer, client_environment, script

pytestmark = pytest.mark.slow


def stored_reports(database: Path) -> int:
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM reports").fetchone()[0])


def send_one_day(path: Path, home: Path, env: dict[str, str]) -> AppSession:
    manifest = consentry.load_manifest(path)
    clock = yesterday_noon()
    consentry.set_consent(manifest, "on", "full", home=home, environ=env, clock=clock)
    recorder = consentry.init(
        manifest, home=home, environ=env, clock=clock, app_version="1.0.0", background=False, flush_at_exit=False
    )
    recorder.count("file.open", 2)
    recorder.flush()
    session = AppSession.open(manifest, home=home, environ=env)
    session.prepare_reports()
    return session


def test_forget_deletes_on_the_server_then_everything_here(server: RunningServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = client_environment(home, tmp_path)
    path = manifest_file(tmp_path, server.url)
    server.admin("/admin/v1/manifests", path.read_bytes())
    session = send_one_day(path, home, env)
    assert session.upload(consentry.transport.HttpTransport()).sent == 1  # only the basic level has something
    assert stored_reports(server.database) == 1

    forgotten = run([script("consentry"), "forget", "e2e-app", "--manifest", str(path)], env)
    assert forgotten.returncode == ExitCode.OK, forgotten.stdout + forgotten.stderr
    assert b"1 row(s) deleted" in forgotten.stdout
    assert stored_reports(server.database) == 0
    paths = session.paths
    assert not paths.secret.exists()
    assert not paths.history.exists()
    assert not paths.store.exists()
    assert load_consent(paths).mode == "off"


def test_forget_keeps_everything_when_a_server_cannot_be_reached(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    home = tmp_path / "home"
    env = client_environment(home, tmp_path)
    path = manifest_file(tmp_path, url)
    session = send_one_day(path, home, env)
    secret = session.paths.secret.read_bytes()

    forgotten = run([script("consentry"), "forget", "e2e-app", "--manifest", str(path)], env)
    assert forgotten.returncode == ExitCode.NOT_SENT
    assert b"try again" in forgotten.stdout
    assert session.paths.secret.read_bytes() == secret  # the ids can still be computed for a later attempt
    assert session.outbox.pending()

    local = run([script("consentry"), "forget", "e2e-app", "--manifest", str(path), "--local-only"], env)
    assert local.returncode == ExitCode.OK
    assert not session.paths.secret.exists()
    assert not session.outbox.pending()
