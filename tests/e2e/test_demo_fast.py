"""``consentry-server demo`` as a new user runs it: the port it was given or a free one, a clear word when the port
is taken, every simulated report stored, and the printed way to add an application to it, which works.

No test here measures time (benchmarks/demo.py does, side by side with the demo as it was).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from support.e2e import manifest_file
from support.processes import script, start, stop

pytestmark = pytest.mark.slow


def demo(*arguments: str) -> list[str]:
    return [script("consentry-server"), "demo", *arguments]


def test_a_taken_port_is_one_line_with_a_hint_and_the_data_is_kept(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    data.mkdir()
    (data / "consentry.sqlite3").write_bytes(b"the data of the demo already running")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            demo("--data-dir", str(data), "--port", str(port), "--installs", "5", "--days", "2", "--no-serve"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in lines[0]
    assert "--port 0" in lines[0]
    assert (data / "consentry.sqlite3").read_bytes() == b"the data of the demo already running"


def test_port_zero_serves_on_the_port_printed_every_report_stored_and_an_app_can_be_added(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    command = demo("--data-dir", str(data), "--port", "0", "--installs", "60", "--days", "9", "--seed", "5")
    started = start(command, dict(os.environ), r"Serving until interrupted")
    try:
        output = "".join(started.output)
        url = re.search(r"Dashboard: (http://127\.0\.0\.1:(\d+))/", output)
        assert url is not None, output
        assert url.group(2) != "0"
        base = url.group(1)
        stored = re.search(r"days of use, (\d+) reports stored\)", output)
        assert stored is not None, output
        assert "not stored" not in output
        with urllib.request.urlopen(f"{base}/api/v1/meta", timeout=10) as response:  # noqa: S310 - the demo
            meta = json.loads(response.read())
        assert meta["threshold"] == 10

        # The demo says how to add an application to it; doing so, as printed, works.
        line = next(line for line in output.splitlines() if "consentry-server apps add" in line)
        words = shlex.split(line)
        token = words[0].removeprefix("CONSENTRY_ADMIN_TOKEN=")
        assert words[words.index("--server") + 1] == base
        mine = manifest_file(tmp_path, base)
        env = {**os.environ, "CONSENTRY_ADMIN_TOKEN": token}
        added = subprocess.run(
            [script("consentry-server"), "apps", "add", str(mine), "--server", base],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert added.returncode == 0, added.stderr
        assert "application e2e-app" in added.stdout
        request = urllib.request.Request(f"{base}/admin/v1/stats", headers={"Authorization": f"Bearer {token}"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            stats = json.loads(response.read())
        assert "e2e-app" in stats["apps"]
        assert stats["report_rows"] > 0
        assert stats["refused"] == {} or not any(stats["refused"].values())
    finally:
        assert stop(started) == 0


def test_the_same_seed_gives_the_same_published_numbers(tmp_path: Path) -> None:
    published = []
    for run in ("a", "b"):
        data = tmp_path / run
        arguments = ("--data-dir", str(data), "--port", "0", "--installs", "40", "--days", "8", "--seed", "2")
        done = subprocess.run(demo(*arguments, "--no-serve"), capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        published.append(re.search(r"Published (\d+) install rows and (\d+) counter rows", done.stdout).groups())  # type: ignore[union-attr]
    assert published[0] == published[1]
