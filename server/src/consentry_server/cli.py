"""``consentry-server``: run and operate a Consentry collection server."""

from __future__ import annotations

import argparse
import datetime
import errno
import gc
import json
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.types import ASGIApp

from consentry.manifest import Manifest, ManifestError, load_any_manifest
from consentry_server._version import __version__
from consentry_server.admin.backup import BackupError, backup_database
from consentry_server.admin.retention import apply_retention
from consentry_server.config import ConfigError, Settings, load_settings
from consentry_server.progress import ProgressBar
from consentry_server.public.site import write_site
from consentry_server.publish.release import publish_as_configured
from consentry_server.storage import PublicStore, StorageUnavailable, open_storage

if TYPE_CHECKING:
    import uvicorn

__all__ = ["bind", "build_parser", "main", "run_server", "serve", "uvicorn_server"]

_DESCRIPTION = """\
Run and operate a Consentry collection server: validated ingest against each application's manifest, SQLite
storage, aggregation, and publication of aggregates with small-count suppression.

Start with `consentry-server demo` to see it with demo data, or register your manifest and serve:

  consentry-server apps add my_app/telemetry.toml
  consentry-server serve
"""


_NOISE_HELP = (
    "add calibrated noise to every published number, epsilon E per number (needs consentry-server[noise]); "
    "what each publication spends is kept in the privacy ledger"
)


def _common(parser: argparse.ArgumentParser, *, public: bool = True) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (see docs/server.md)")
    parser.add_argument(
        "--db",
        metavar="URL",
        help="database: sqlite:///PATH or postgresql://USER@HOST/DB (default: consentry-data/...)",
    )
    if public:
        parser.add_argument("--public-db", metavar="PATH", help="the public store of published aggregates")


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one block per subcommand
    """The argument parser of ``consentry-server``."""
    parser = argparse.ArgumentParser(
        prog="consentry-server", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"consentry-server {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve_parser = sub.add_parser(
        "serve",
        help="serve ingest, the public API and pages",
        description="Serve report ingest (POST /v1/reports/LEVEL; OpenTelemetry's OTLP/HTTP at POST /v1/traces and "
        "/v1/metrics), the public JSON API (/api/v1/...), the public "
        "pages (/) and the admin API (/admin/v1/..., with a token) over HTTP. Put a TLS-terminating proxy in front.",
    )
    _common(serve_parser)
    serve_parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port to listen on (default 8000; 0 picks a free one)")
    serve_parser.add_argument(
        "--otlp-port",
        type=int,
        metavar="PORT",
        help="also listen on PORT (OTLP/HTTP's is 4318), answering only POST /v1/traces and /v1/metrics there",
    )
    serve_parser.add_argument(
        "--public-only",
        action="store_true",
        help="serve only the public pages and API from the public store; never open the raw database",
    )

    apps = sub.add_parser(
        "apps",
        help="register and list application and plugin manifests",
        description="Register manifests (every version is kept; reports are checked against them) or list them.",
    )
    apps_sub = apps.add_subparsers(dest="apps_command", metavar="ACTION", required=True)
    add = apps_sub.add_parser(
        "add",
        help="register manifest files",
        description="Register manifest files. With --server, with that running server, through its admin API "
        "(the token in CONSENTRY_ADMIN_TOKEN): the way to add an application to a server that runs. Without it, "
        "straight into the database of --config or --db, by default the one `serve` uses when started from the "
        "same folder (consentry-data/); it names the database it wrote to.",
    )
    _common(add)
    add.add_argument("files", nargs="+", metavar="FILE", help="application or plugin manifests (.toml or .json)")
    add.add_argument(
        "--server",
        metavar="URL",
        help="register with the server running at URL (e.g. http://127.0.0.1:8000) through its admin API, "
        "with the admin token in CONSENTRY_ADMIN_TOKEN",
    )
    listing = apps_sub.add_parser(
        "list",
        help="list registered applications",
        description="List applications, each with what ingest dropped from its accepted uploads (undeclared or "
        "invalid rows, records and parameters of the seed formats), by reason, over the request log kept.",
    )
    _common(listing)

    aggregate = sub.add_parser(
        "aggregate",
        help="roll raw reports up per day and week",
        description="Recompute the day and ISO-week aggregates touched by reports received since the last run. "
        "Idempotent; aggregates are kept after raw reports expire.",
    )
    _common(aggregate)

    publish_parser = sub.add_parser(
        "publish",
        help="publish aggregates, suppressing small counts",
        description="Write the aggregates to the public store, leaving out every number that rests on fewer "
        "than the reporter threshold (k) of distinct installs; with noise_epsilon, add calibrated noise to every "
        "number. Each release is recorded in the privacy ledger, published beside the data (see docs/server.md).",
    )
    _common(publish_parser)
    publish_parser.add_argument("--reporter-threshold", type=int, metavar="K", help="smallest published count")
    publish_parser.add_argument("--noise-epsilon", type=float, metavar="E", help=_NOISE_HELP)
    publish_parser.add_argument(
        "--site",
        metavar="DIR",
        help="also write the dashboard, open data and badges as a static site into DIR, for any static host",
    )

    retention = sub.add_parser(
        "retention",
        help="delete raw reports and logs past their retention",
        description="Delete raw reports older than raw_retention_days (60 by default) and request-log lines older "
        "than log_retention_days (14). Aggregates are kept. The running server also does this by itself every "
        "retention_interval_hours.",
    )
    _common(retention)

    export = sub.add_parser(
        "export",
        help="export the raw reports of an application as JSON lines",
        description="Write the raw rows of APP (one JSON object per report and day: level, reporter id, day, version, "
        "country, binned fields, counters) to standard output or --output, for the operators' own analyses. The "
        "same data is at GET /admin/v1/export/APP.",
    )
    _common(export)
    export.add_argument("app", help="application name")
    export.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="first day")
    export.add_argument("--until", type=_date, metavar="YYYY-MM-DD", help="last day")
    export.add_argument("--output", metavar="FILE", help="write here instead of standard output")

    certify = sub.add_parser(
        "certify",
        help="write a signed usage certificate of an application or plugin over a period",
        description="Write a usage certificate of APP (or of its plugin P) over a complete PERIOD, signed with the "
        "server's Ed25519 key (the signing_key setting; created on first use, mode 0600): weekly active installs "
        "(mean and peak over the ISO weeks whose Thursday falls in the period), monthly active installs, new "
        "installs, the reporter threshold and the noise applied. The figures are read from the published "
        "aggregates only, so none rests on fewer than k installs; one that was not published is null. Anyone can "
        "check the certificate offline with `consentry verify FILE --key KEY` against the key this server "
        "publishes at /api/v1/certificates/key (also printed by --show-key). See docs/certificates.md.",
    )
    _common(certify)
    certify.add_argument("--app", metavar="APP", help="the application")
    certify.add_argument("--plugin", metavar="P", help="certify the installs of APP that report plugin P")
    certify.add_argument(
        "--period", metavar="PERIOD", help="2026 (year), 2026-Q3 (quarter), 2026-09 (month) or 2026-W37 (ISO week)"
    )
    certify.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    certify.add_argument(
        "--show-key", action="store_true", help="print the public key document (JSON) to publish, and exit"
    )

    _report_parser(sub)

    backup = sub.add_parser(
        "backup",
        help="copy the database, consistently, while the server runs",
        description="Write a consistent copy of the database to DEST (a new file, or a folder to write "
        "consentry-YYYYMMDDTHHMMSSZ.sqlite3 into) while serve goes on storing. SQLite: SQLite's online backup API; "
        "every report answered 2xx before the backup starts is in the copy, with those still only in the "
        "write-ahead log (copying the database file is not safe); the copy is one file, checked. To restore, stop "
        "the server and put the copy in place of the database (without the old -wal and -shm files). PostgreSQL: "
        "runs pg_dump --format=custom into DEST when it is installed, else says how to. See docs/server.md.",
    )
    _common(backup, public=False)  # the public store is not backed up: publish makes it again
    backup.add_argument("destination", metavar="DEST", help="a new file, or an existing folder")

    demo = sub.add_parser(
        "demo",
        help="serve a demo with simulated installs of the example applications",
        description="Start a server on 127.0.0.1 with SQLite in a local folder, fill it by running the real "
        "client for simulated installs of the example applications (uploading over HTTP), aggregate and publish, "
        "then print the dashboard URL and serve until interrupted.",
    )
    demo.add_argument("--data-dir", default="consentry-demo-data", help="folder for the demo's data (recreated)")
    demo.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0 picks a free one)")
    demo.add_argument("--installs", type=int, default=300, help="simulated installations (default 300)")
    demo.add_argument("--days", type=int, default=42, help="days of simulated use, ending yesterday (default 42)")
    demo.add_argument("--seed", type=int, default=8, help="random seed, for a reproducible demo")
    demo.add_argument("--no-serve", action="store_true", help="fill, publish and exit instead of serving")
    demo.add_argument("--noise-epsilon", type=float, metavar="E", help=_NOISE_HELP)
    return parser


def _report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``consentry-server report``: a funder report (consentry_server.public.funder_report)."""
    report = sub.add_parser(
        "report",
        help="write a printable HTML report of an application or plugin over a period, for funders",
        description="Write one self-contained, printable HTML page (inline CSS and SVG charts; it loads nothing) "
        "about APP (or its plugin P) over a complete PERIOD: weekly, monthly and new installs, versions, operating "
        "systems and top features, a methods section made from the manifest and the settings (levels and what each "
        "collects, k, noise and the privacy ledger, contribution caps, retention, how installs are counted), and the "
        "signed usage certificate of the same figures with the steps to verify it offline. Only published figures "
        "are read (never raw reports): one that was not published is shown as hidden. See docs/report.md.",
    )
    _common(report)
    report.add_argument("--app", metavar="APP", help="the application")
    report.add_argument("--plugin", metavar="P", help="report on the installs of APP that report plugin P")
    report.add_argument(
        "--period", metavar="PERIOD", help="2026 (year), 2026-Q3 (quarter), 2026-09 (month) or 2026-W37 (ISO week)"
    )
    report.add_argument("--output", metavar="FILE", help="the HTML file to write (default: APP-PERIOD-report.html)")
    report.add_argument(
        "--pdf", metavar="FILE", help="also print the report to FILE as PDF (needs Playwright and Chromium)"
    )


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date as YYYY-MM-DD") from None


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(getattr(args, "config", None))
    database = getattr(args, "db", None)
    public_db = getattr(args, "public_db", None)
    changes = {
        "database": database,
        "public_database": public_db,
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "otlp_port": getattr(args, "otlp_port", None),
        "reporter_threshold": getattr(args, "reporter_threshold", None),
        "noise_epsilon": getattr(args, "noise_epsilon", None),
    }
    return settings.replace(**changes)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port`` 0 picks a free one).

    The protocol is named: asyncio turns Nagle's algorithm off (``TCP_NODELAY``) only on sockets whose protocol is
    ``IPPROTO_TCP``, and with it on, an answer written in two parts waits for the client's delayed
    acknowledgement, about 40 ms per request on a kept-alive connection.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def serve(settings: Settings, sock: socket.socket | None = None, *, public_only: bool = False) -> None:
    """Serve until interrupted. Access logs are off: they would hold client addresses."""
    from consentry_server.app import create_app, create_public_app  # noqa: PLC0415

    application: ASGIApp = create_public_app(settings) if public_only else create_app(settings)
    sockets = [sock or bind(settings.host, settings.port)]
    host, port = sockets[0].getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    sys.stdout.write(f"Consentry server listening on http://{shown}:{port}\n")
    if settings.otlp_port is not None and not public_only:  # the public side has no ingest
        from consentry_server.ingest.otlp import only_otlp_on  # noqa: PLC0415

        sockets.append(bind(settings.host, settings.otlp_port))
        otlp_port = sockets[1].getsockname()[1]
        application = only_otlp_on(application, otlp_port)
        sys.stdout.write(f"OTLP/HTTP receiver listening on http://{shown}:{otlp_port}\n")
    sys.stdout.flush()
    run_server(uvicorn_server(application, settings), sockets)


def uvicorn_server(application: ASGIApp, settings: Settings | None = None) -> uvicorn.Server:
    """The ASGI server ``serve`` runs, configured once for it and the benchmarks.

    No access log (it would hold addresses), no ``Server`` header, forwarded headers left to the application's
    trusted-proxy list; the limits on connections, request heads and the time a request may take to arrive of
    ``settings`` (default: the default settings), applied by
    :class:`~consentry_server.ingest.connections.GuardedProtocol`.
    """
    import uvicorn  # noqa: PLC0415 - only the serving commands need the server

    from consentry_server.ingest.connections import ConnectionLimits, GuardedProtocol, descriptor_budget  # noqa: PLC0415

    settings = settings or Settings()
    limits = ConnectionLimits(settings, max_connections=descriptor_budget(settings.max_connections))
    config = uvicorn.Config(
        application,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        http=GuardedProtocol.bound(limits),
    )
    return uvicorn.Server(config)


def run_server(server: uvicorn.Server, sockets: Sequence[socket.socket]) -> None:
    """Serve on ``sockets`` until interrupted.

    First the objects that exist by now (modules, classes, the application) are moved out of the garbage
    collector's reach (``gc.freeze``): they live as long as the process, and walking them again and again cost
    the serving process 0.12 of its ingest rate and doubled its p99 latency (benchmarks/server.py).
    """
    gc.freeze()
    server.run(sockets=list(sockets))


def _cmd_apps(args: argparse.Namespace) -> int:
    if args.apps_command == "add" and args.server is not None:
        from consentry_server.admin.remote import add_remote  # noqa: PLC0415 - HTTP only for this

        return add_remote(args.files, args.server, sys.stdout, sys.stderr)
    settings = _settings(args)
    storage = open_storage(settings)
    try:
        if args.apps_command == "list":
            dropped = storage.dropped()
            for app in storage.apps():
                catalog = storage.catalog(app)
                versions = len(catalog.versions) if catalog else 0
                plugins = ", ".join(sorted(catalog.plugins)) if catalog else ""
                sys.stdout.write(f"{app}  ({versions} version(s){'; plugins: ' + plugins if plugins else ''})\n")
                if dropped.get(app):
                    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(dropped[app].items()))
                    sys.stdout.write(f"  dropped from uploads in the request log kept: {reasons}\n")
            return 0
        failed = 0
        for file in args.files:
            try:
                manifest = load_any_manifest(file)
            except ManifestError as error:
                sys.stderr.write(f"consentry-server: error: {error}\n")
                failed += 1
                continue
            created = storage.register_manifest(manifest)
            what = "application" if isinstance(manifest, Manifest) else "plugin"
            state = "registered" if created else "already registered"
            where = settings.sqlite_path or "the PostgreSQL database"  # a URL may hold a password
            sys.stdout.write(f"{file}: {what} {manifest.name} {manifest.consent_version} {state} in {where}\n")
        return 1 if failed else 0
    finally:
        storage.close()


def _cmd_aggregate(args: argparse.Namespace) -> int:
    storage = open_storage(_settings(args))
    bar = ProgressBar("aggregating")
    try:
        tables = storage.aggregate(lambda note, done, total: bar(done, total, note))
    finally:
        storage.close()
    bar.finish(f"({len(tables.installs)} install rows, {len(tables.counters)} counter rows)")
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    settings = _settings(args)
    storage = open_storage(settings)
    try:
        publication = publish_as_configured(storage, settings)
    finally:
        storage.close()
    sys.stdout.write(
        f"published {len(publication.installs)} install rows, {len(publication.counters)} counter rows and "
        f"{len(publication.values)} distribution rows (k = {publication.threshold}) to {settings.public_path}\n"
    )
    if args.site:
        files = write_site(PublicStore(settings.public_path), settings, Path(args.site))
        sys.stdout.write(f"wrote the static site ({len(files)} files) to {args.site}\n")
    return 0


def _cmd_retention(args: argparse.Namespace) -> int:
    settings = _settings(args)
    storage = open_storage(settings)
    try:
        result = apply_retention(storage, settings)
    finally:
        storage.close()
    sys.stdout.write(
        f"deleted {result.raw_rows} raw report row(s) older than {settings.raw_retention_days} days, "
        f"{result.log_rows} log line(s) older than {settings.log_retention_days} days"
        + (f", {result.partitions} partition(s)" if result.partitions else "")
        + "\n"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    storage = open_storage(_settings(args))
    try:
        output = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: PTH123, SIM115
        try:
            rows = 0
            for row in storage.export(args.app, since=args.since, until=args.until):
                output.write(json.dumps(row, sort_keys=True) + "\n")
                rows += 1
        finally:
            if output is not sys.stdout:
                output.close()
    finally:
        storage.close()
    sys.stderr.write(f"exported {rows} row(s) of {args.app}\n")
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        backup = backup_database(settings, Path(args.destination))
    except BackupError as error:
        sys.stderr.write(f"consentry-server: error: {error}\n")
        return 1
    held = f"{backup.reports} report row(s), " if backup.reports is not None else ""
    sys.stdout.write(f"backed up the database to {backup.path} ({held}{backup.size} bytes)\n")
    return 0


def _cmd_certify(args: argparse.Namespace) -> int:
    from consentry_server.publish import certificates  # noqa: PLC0415 - cryptography is loaded only to sign

    settings = _settings(args)
    try:
        if args.show_key:
            certificates.load_signing_key(settings.signing_key_path)
            document: object = certificates.public_key_document(settings)
        elif not args.app or not args.period:
            sys.stderr.write("consentry-server: error: certify needs --app and --period (or --show-key)\n")
            return 2
        else:
            period = certificates.parse_period(args.period)
            document = certificates.issue_certificate(settings, app=args.app, plugin=args.plugin, period=period)
    except certificates.CertificateError as error:
        sys.stderr.write(f"consentry-server: error: {error}\n")
        return 1
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if args.output and not args.show_key:
        Path(args.output).write_text(text, encoding="utf-8")
        sys.stderr.write(f"wrote the certificate of {args.app} for {args.period} to {args.output}\n")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from consentry_server.public import funder_report  # noqa: PLC0415 - cryptography is loaded only to sign
    from consentry_server.public.funder_report.pdf import PdfError, write_pdf  # noqa: PLC0415

    settings = _settings(args)
    if not args.app or not args.period:
        sys.stderr.write("consentry-server: error: report needs --app and --period\n")
        return 2
    try:
        html = funder_report.build_report(settings, app=args.app, plugin=args.plugin, period=args.period)
    except funder_report.ReportError as error:
        sys.stderr.write(f"consentry-server: error: {error}\n")
        return 1
    output = Path(args.output or funder_report.default_file_name(args.app, args.plugin, args.period))
    output.write_text(html, encoding="utf-8")
    sys.stdout.write(f"wrote the report of {args.app} for {args.period} to {output}\n")
    if args.pdf:
        try:
            write_pdf(html, Path(args.pdf))
        except PdfError as error:
            sys.stderr.write(f"consentry-server: error: {error}\n")
            return 1
        sys.stdout.write(f"wrote the PDF to {args.pdf}\n")
    return 0


#: What to do about a file that cannot be written or read, by ``errno``.
_OS_HINTS = {
    errno.EACCES: "make it writable (or readable) for the user running consentry-server, or choose another path",
    errno.EPERM: "make it writable for the user running consentry-server (is it immutable?), or choose another path",
    errno.EROFS: "the file system is read-only: choose a path on a writable one",
    errno.ENOTDIR: "a file stands where a folder of this path should be: move it aside, or choose another path",
    errno.EISDIR: "a folder stands where a file should be: move it aside, or choose another path",
    errno.EEXIST: "a file stands where a folder should be: move it aside, or choose another path",
    errno.ENOSPC: "the disk is full: free some space",
    errno.ENOENT: "check the path",
    errno.EADDRINUSE: "another program (another server?) listens there: stop it, or choose another --port (0: any)",
}


def _os_error(error: OSError) -> str:
    """``error`` as one line: what failed, on which file, and what to do about it."""
    what = error.strerror or str(error)
    where = f": {error.filename}" if error.filename is not None else ""
    hint = _OS_HINTS.get(error.errno or 0)
    return f"{what}{where}" + (f"; {hint}" if hint else "")


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 - one return per subcommand
    """Run ``consentry-server``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            serve(_settings(args), public_only=args.public_only)
            return 0
        if args.command == "retention":
            return _cmd_retention(args)
        if args.command == "export":
            return _cmd_export(args)
        if args.command == "apps":
            return _cmd_apps(args)
        if args.command == "aggregate":
            return _cmd_aggregate(args)
        if args.command == "publish":
            return _cmd_publish(args)
        if args.command == "certify":
            return _cmd_certify(args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "backup":
            return _cmd_backup(args)
        try:  # the demo is an example that drives the real client: it lives with the example applications
            from consentry_examples.demo import run_demo  # noqa: PLC0415
        except ImportError:
            sys.stderr.write(
                "consentry-server: error: the demo needs the example applications.\n"
                "hint: pip install ./examples (from a clone of Consentry)\n"
            )
            return 2
        return run_demo(
            Path(args.data_dir),
            port=args.port,
            installs=args.installs,
            days=args.days,
            seed=args.seed,
            serve_forever=not args.no_serve,
            noise_epsilon=args.noise_epsilon,
        )
    except ConfigError as error:
        sys.stderr.write(f"consentry-server: error: {error}\n")
        return 2
    except StorageUnavailable as error:  # its message says what is wrong and what to do
        sys.stderr.write(f"consentry-server: error: {error}\n")
        return 1
    except OSError as error:
        sys.stderr.write(f"consentry-server: error: {_os_error(error)}\n")
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
