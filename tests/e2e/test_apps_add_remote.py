"""``consentry-server apps add FILE --server URL``: an operator adds an application to a running server in one step.

Run as an operator would: the command in a subprocess, against a real ``consentry-server serve`` on 127.0.0.1, with
the admin token in ``CONSENTRY_ADMIN_TOKEN``. Also the admin route it uses, sent what a careless or hostile
client would send: every refusal is a 4xx with a reason, and registers nothing.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from consentry._send.reports import reporter_id
from consentry.manifest import load_manifest
from consentry.wire import Report, encode
from support.e2e import manifest_file, run, yesterday_noon
from support.processes import ADMIN_TOKEN, RunningServer, script

NAPARI = Path(__file__).parents[2] / "examples" / "consentry_examples" / "napari_like"


def operator(token: str | None = ADMIN_TOKEN) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "CONSENTRY_ADMIN_TOKEN"}
    if token is not None:
        env["CONSENTRY_ADMIN_TOKEN"] = token
    return env


def apps_add(*arguments: str, token: str | None = ADMIN_TOKEN) -> tuple[int, str, str]:
    done = run([script("consentry-server"), "apps", "add", *arguments], operator(token))
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def registered(server: RunningServer) -> list[str]:
    stats = server.admin("/admin/v1/stats")
    assert isinstance(stats, dict)
    return list(stats["apps"])


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("consentry-server: error: ")
    return lines[0]


def post_report(server: RunningServer, report: Report) -> int:
    request = urllib.request.Request(  # noqa: S310 - our own server
        f"{server.url}/v1/reports/{report.level}",
        data=gzip.compress(encode(report)),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_an_application_added_to_the_running_server_is_taken_at_once(server: RunningServer, tmp_path: Path) -> None:
    path = manifest_file(tmp_path, server.url)
    day = yesterday_noon().today()
    report = Report(
        app="e2e-app",
        app_version="1.0.0",
        level="basic",
        consent_version=load_manifest(path).consent_version,
        reporter=reporter_id(b"k" * 32, "e2e-app", day),
        first_report=True,
        days=(day,),
    )
    assert post_report(server, report) // 100 == 4  # not registered yet

    code, out, err = apps_add(str(path), "--server", server.url)
    assert code == 0, err
    assert out.strip() == f"{path}: application e2e-app {report.consent_version} registered on {server.url}"
    assert "e2e-app" in registered(server)
    assert post_report(server, report) == 200  # the running server knows the application now, no restart

    code, out, _ = apps_add(str(path), "--server", server.url + "/")
    assert code == 0
    assert "already registered" in out


def test_application_and_plugins_in_one_command(server: RunningServer) -> None:
    plugins = sorted(str(path) for path in (NAPARI / "plugins").glob("*.toml"))
    code, out, err = apps_add(str(NAPARI / "manifest.toml"), *plugins, "--server", server.url)
    assert code == 0, err
    assert out.count(" registered on ") == 1 + len(plugins)
    assert "plugin napari-blobs " in out
    assert "napari-like" in registered(server)


def test_without_a_token_it_says_which_variable_to_set(server: RunningServer, tmp_path: Path) -> None:
    code, out, err = apps_add(str(manifest_file(tmp_path, server.url)), "--server", server.url, token=None)
    assert code == 2
    assert out == ""
    assert "CONSENTRY_ADMIN_TOKEN" in one_line_error(err)
    assert "e2e-app" not in registered(server)


def test_a_wrong_token_is_refused_and_said_so(server: RunningServer, tmp_path: Path) -> None:
    code, _, err = apps_add(str(manifest_file(tmp_path, server.url)), "--server", server.url, token="not-the-token")  # noqa: S106
    assert code == 1
    line = one_line_error(err)
    assert "refused the token" in line
    assert "CONSENTRY_ADMIN_TOKEN" in line
    assert "not-the-token" not in line
    assert "e2e-app" not in registered(server)


def test_an_invalid_manifest_is_refused_before_sending_and_the_others_still_go(
    server: RunningServer, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('manifest_version = 1\n[app]\nname = "Bad Name!"\n', "utf-8")
    good = manifest_file(tmp_path, server.url)
    code, out, err = apps_add(str(bad), str(good), "--server", server.url)
    assert code == 1
    assert "Traceback" not in err
    assert str(bad) in err
    assert "app.name" in err
    assert "e2e-app" in out
    assert registered(server) == ["e2e-app"]


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe not UTF-8", b"[app\nname = ", b"x = " + b"[" * 5000 + b"]" * 5000, b"a = 1\n" * 200_000],
    ids=["not-utf8", "not-toml", "deeply-nested", "larger-than-1MiB"],
)
def test_unreadable_files_are_one_line_each(server: RunningServer, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "manifest.toml"
    path.write_bytes(content)
    code, out, err = apps_add(str(path), "--server", server.url)
    assert code == 1
    assert out == ""
    assert str(path) in one_line_error(err)
    assert registered(server) == []


def test_a_server_that_does_not_answer(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code, _, err = apps_add(str(manifest_file(tmp_path, url)), "--server", url)
    assert code == 1
    line = one_line_error(err)
    assert url in line
    assert "is the server running" in line


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://127.0.0.1/", "http://", "http://127.0.0.1:99999/"])
def test_a_server_url_that_is_not_one(tmp_path: Path, url: str) -> None:
    code, _, err = apps_add(str(manifest_file(tmp_path, "http://127.0.0.1:8000")), "--server", url)
    assert code == 2
    assert "--server" in one_line_error(err)


def test_without_server_it_names_the_database_it_wrote_to(tmp_path: Path) -> None:
    database = tmp_path / "data" / "consentry.sqlite3"
    path = manifest_file(tmp_path, "http://127.0.0.1:8000")
    code, out, err = apps_add(str(path), "--db", f"sqlite:///{database}", token=None)
    assert code == 0, err
    assert out.strip().endswith(f"registered in {database}")


# ---- the admin route, sent what a careless or hostile client would send -------------------------------------------
def admin_post(server: RunningServer, body: bytes, content_type: str = "application/toml") -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 - our own server
        f"{server.url}/admin/v1/manifests",
        data=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": content_type},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"manifest_version = 1\n", "application/xml", 415, "unsupported_media_type"),
        (b"\xff\xfe", "application/toml", 400, "not_utf8"),
        (b"[app\n", "application/toml", 400, "invalid_manifest"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "invalid_manifest"),
        (b"x = " + b"[" * 20_000 + b"]" * 20_000, "application/toml", 400, "invalid_manifest"),
        (b'{"manifest_version": 1, "app": {"name": "a\\u0000b"}}', "application/json", 400, "invalid_manifest"),
        (b'{"a": 1, "a": 2}', "application/json", 400, "invalid_manifest"),
        (b"[1, 2, 3]", "application/json", 400, "invalid_manifest"),
        (b"a = 1\n" * 200_000, "application/toml", 413, "too_large"),
    ],
    ids=["media-type", "not-utf8", "not-toml", "json-nesting", "toml-nesting", "nul", "duplicate-key", "array", "1MiB"],
)
def test_the_admin_route_refuses_bad_manifests_with_a_reason(
    server: RunningServer, body: bytes, content_type: str, status: int, code: str
) -> None:
    answer_status, answer = admin_post(server, body, content_type)
    assert (answer_status, answer["error"]["code"]) == (status, code)
    assert answer["error"]["message"]
    assert registered(server) == []


def test_the_admin_route_names_each_problem_of_an_invalid_manifest(server: RunningServer) -> None:
    status, answer = admin_post(server, b'manifest_version = 1\n[app]\nname = "Bad Name!"\n')
    assert status == 400
    assert any(problem["field"] == "app.name" for problem in answer["problems"])
    assert len(json.dumps(answer)) < 64 * 1024
