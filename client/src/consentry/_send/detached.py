"""The detached uploader: ``python -m consentry._send.detached --home HOME --app APP``.

Why a separate process rather than a thread of the host? A command-line tool that exits after a second must
still get its reports out eventually, and a thread dies with its process; while the host's exit must never wait
for a server that hangs. So, once a day, the host's background thread starts this small process, detached from
the host (its own session, no terminal, lower priority), and forgets it. Only one upload per application runs at
a time (a lock, which ``consentry upload`` takes too). It sends what may be sent within a time budget, records
the outcome in the application's history and state, and exits; a watchdog ends it if anything takes too long.

Where a child process cannot be started (a frozen application whose executable is not Python), the host's
background thread uploads itself, with the same budget; a report not finished before the host exits stays
pending and goes next time (the server stores a report sent twice once).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

__all__ = ["BUDGET", "can_spawn", "main", "spawn"]

#: Seconds one upload run may take; the watchdog ends the process a little after.
BUDGET = 60.0


def can_spawn() -> bool:
    """Whether a Python child process can be started (not in a frozen application)."""
    return bool(sys.executable) and not getattr(sys, "frozen", False)


def spawn(home: Path, app: str) -> int | None:
    """Start a detached uploader for ``app``; return its process id (``None`` where it cannot be started)."""
    if not can_spawn():
        return None
    package_parent = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "consentry._send.detached", "--home", str(home), "--app", app]
    if hasattr(os, "posix_spawn"):
        devnull = os.devnull
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
        ]
        return os.posix_spawn(sys.executable, argv, env, file_actions=actions, setsid=True)
    import subprocess  # noqa: PLC0415 - Windows only

    flags = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined,unused-ignore]
    child = subprocess.Popen(  # noqa: S603 - our own module, run by the same interpreter
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        creationflags=flags,
        close_fds=True,
    )
    child.returncode = 0  # detached on purpose: nobody waits for it, so do not warn about it
    return child.pid


def reap(pid: int) -> bool:
    """Collect a finished uploader (POSIX), so it does not linger as a zombie; ``True`` once it has ended."""
    if not hasattr(os, "waitpid") or os.name == "nt":
        return True
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def main(argv: Sequence[str] | None = None) -> int:
    """Upload what may be sent for one application; exit quietly whatever happens."""
    import argparse  # noqa: PLC0415 - keep the import of this module cheap for the host that spawns

    parser = argparse.ArgumentParser(prog="python -m consentry._send.detached")
    parser.add_argument("--home", required=True)
    parser.add_argument("--app", required=True)
    parser.add_argument("--budget", type=float, default=BUDGET)
    args = parser.parse_args(argv)
    watchdog = threading.Timer(args.budget + 10, os._exit, args=(3,))
    watchdog.daemon = True
    watchdog.start()
    with contextlib.suppress(AttributeError, OSError):
        os.nice(10)  # type: ignore[attr-defined,unused-ignore]

    from consentry._local.counts import StoreError  # noqa: PLC0415
    from consentry._local.paths import Paths  # noqa: PLC0415 - keep the import of this module cheap for spawn()
    from consentry._local.session import AppSession, load_saved_manifest  # noqa: PLC0415
    from consentry._send.upload import USER_AGENT  # noqa: PLC0415
    from consentry.transport import HttpTransport  # noqa: PLC0415
    from consentry.wire.schema import APP_NAME  # noqa: PLC0415

    if APP_NAME.regex.fullmatch(args.app) is None:
        return 2
    paths = Paths(Path(args.home)).app(args.app)
    manifest = load_saved_manifest(paths)
    if manifest is None:
        return 1
    session = AppSession.open(manifest, home=args.home)
    with contextlib.suppress(StoreError, OSError):
        session.prepare_reports()  # the host may have exited before its thread wrote them
    session.upload(HttpTransport(user_agent=USER_AGENT), budget=args.budget)
    return 0


if __name__ == "__main__":
    sys.exit(main())
