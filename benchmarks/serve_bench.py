"""One server process of the benchmarks, on a free port of 127.0.0.1, served as ``consentry-server serve`` does.

    python benchmarks/serve_bench.py KIND DATABASE

KIND is one of:

- ``consentry``: the real application (``create_app``) on DATABASE (``sqlite:///PATH`` or a PostgreSQL URL),
  with the per-source rate limit lifted (all the load comes from 127.0.0.1); everything else as configured by
  default (country lookup on, per-reporter limits on, retention task on, reports stored by the storing
  process that ``serve`` starts beside the serving one).
- ``consentry-thread``: the same with ``storing_process = false``: reports decoded on the event loop and
  stored by a writer thread, all in the one process.
- ``empty``: the same application, with the same middleware and the same route, whose endpoint answers an empty
  204 without reading the body: the ceiling the server stack itself sets.
- ``echo``: the same, reading the body and answering the JSON a stored report gets, without looking at it.
- ``validate``: the same, also decoding and validating the report against the manifests (``Acceptor.accept``),
  without storing it. With ``empty`` and ``echo``, this splits the cost of a request into its parts. These three
  start no storing process (they store nothing).
- ``public``: the public side alone (``create_public_app``: API, open data, badges, pages), reading the public
  store beside DATABASE (``public.sqlite3`` in its folder); used by ``benchmarks/public.py``.
- ``naive``: the FastAPI + pydantic + one-commit-per-request baseline of :mod:`naive_nap8` on the SQLite file
  DATABASE.
- ``naive-rollback``: the same baseline with SQLite's default rollback journal instead of WAL.
All are served as ``consentry_server.cli.serve`` serves them (``cli.uvicorn_server``, ``cli.run_server``), on a
socket made by ``consentry_server.cli.bind`` as ``serve`` makes it (one process, default event loop and HTTP
implementation, no access log). The process prints ``PORT <n>`` once it accepts connections and serves until it
receives SIGTERM or SIGINT.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consentry_server import cli
from consentry_server.config import Settings
from consentry_server.ingest.accept import Acceptor, rate_limiter
from consentry_server.ingest.routes import read_body

INGEST = "/v1/reports/{level}"
KINDS = (
    "consentry",
    "consentry-thread",
    "empty",
    "echo",
    "validate",
    "public",
    "naive",
    "naive-rollback",
)


def settings_for(database: str) -> Settings:
    """The consentry settings of the benchmarks: the defaults, with no per-source limits (every request comes from
    127.0.0.1, each with a reporter of its own).
    """
    unlimited = 10**9
    return Settings(
        database=database,
        source_rate_per_minute=unlimited,
        source_burst=unlimited,
        source_new_reporters_per_day=unlimited,
        max_connections_per_source=unlimited,
    )


async def _empty(_: Request) -> Response:
    return Response(status_code=204)


async def _echo(request: Request) -> Response:
    await request.body()
    return JSONResponse({"status": "stored", "days": 1})


def _validate(acceptor: Acceptor) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        body = await read_body(request, acceptor.settings.max_body_bytes)
        headers = request.headers
        report = acceptor.accept(
            request.path_params["level"],
            body,
            content_type=headers.get("content-type"),
            encoding=headers.get("content-encoding"),
        )
        return JSONResponse({"status": "stored", "days": len(report.days)})

    return endpoint


def application(kind: str, database: str) -> object:
    """The ASGI application of ``kind``."""
    if kind not in KINDS:
        raise SystemExit(f"unknown server kind {kind!r}; one of {', '.join(KINDS)}")
    if kind in ("naive", "naive-rollback"):
        from naive_nap8 import create_app as naive  # noqa: PLC0415 - FastAPI only where it is needed

        return naive(database.removeprefix("sqlite:///"), wal=kind == "naive")
    from consentry_server.app import create_app, create_public_app  # noqa: PLC0415

    if kind == "public":
        return create_public_app(settings_for(database))
    settings = settings_for(database)
    app = create_app(settings.replace(storing_process=kind == "consentry"))
    state = app.state.consentry
    acceptor = Acceptor(state.settings, state.registry, rate_limiter(state.settings))
    endpoints = {
        "empty": _empty,
        "echo": _echo,
        "validate": _validate(acceptor),
    }
    if kind in endpoints:
        routes = app.router.routes
        [index] = [i for i, route in enumerate(routes) if isinstance(route, Route) and route.path == INGEST]
        routes[index] = Route(INGEST, endpoints[kind], methods=["POST"])
    return app


def main() -> None:
    kind, database = sys.argv[1:3]
    app = application(kind, database)
    sock = cli.bind("127.0.0.1", 0)
    # The naive servers take a file, not a URL; uvicorn's settings are the same for every kind.
    url = database if "://" in database else f"sqlite:///{database}"
    server = cli.uvicorn_server(app, settings_for(url))  # type: ignore[arg-type]

    def announce() -> None:
        while not server.started:
            time.sleep(0.01)
        print(f"PORT {sock.getsockname()[1]}", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    cli.run_server(server, [sock])


if __name__ == "__main__":
    main()
