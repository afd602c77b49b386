"""The subcommands of ``consentry``. The CLI owns stdout, stderr and exit codes; the library never prints."""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from consentry import __version__
from consentry._files import read_json, write_json
from consentry._guard import internal_errors
from consentry.cli.discover import UnknownAppError, find_manifest, known_apps
from consentry.cli.exit_codes import ExitCode
from consentry.consent import Decision
from consentry.deletion import request_deletion
from consentry.manifest import ManifestError
from consentry.paths import Paths
from consentry.reports import reporter_id
from consentry.session import AppSession
from consentry.state import load_state
from consentry.transport import HttpTransport
from consentry.wire.schema import APP_NAME

__all__ = ["VERSION", "CliError", "indicator", "run"]

VERSION = __version__


class CliError(Exception):
    """A failure to report to the user, with a hint and an exit code."""

    def __init__(self, message: str, hint: str = "", code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


def _session(args: argparse.Namespace) -> AppSession:
    if APP_NAME.regex.fullmatch(args.app) is None:
        raise CliError(f"{args.app!r} is not an application name", "`consentry apps` lists them", ExitCode.USAGE)
    paths = Paths.from_environment()
    try:
        manifest = find_manifest(args.app, paths, getattr(args, "manifest", None))
    except UnknownAppError as error:
        raise CliError(
            str(error),
            "run the application once, or give its manifest with --manifest FILE; `consentry apps` lists known ones",
            ExitCode.UNKNOWN_APP,
        ) from None
    except ManifestError as error:
        raise CliError(f"the manifest of {args.app!r} is invalid:\n{error}", code=ExitCode.BAD_MANIFEST) from None
    return AppSession.open(manifest, home=paths.home)


def indicator(decision: Decision) -> str:
    """The one-line text an application can show in its status bar."""
    if decision.mode == "on":
        return f"Usage statistics: on ({decision.level})"
    if decision.mode == "ask":
        return f"Usage statistics: on ({decision.level}), sent after you approve"
    if decision.mode == "local":
        return f"Usage statistics: kept on this computer ({decision.level})"
    return "Usage statistics: off"


def _duration(text: str | None) -> datetime.timedelta | None:
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d{1,5})\s*([hdw])\s*", text)
    if not match:
        raise CliError(f"cannot read the duration {text!r}", "write it like 12h, 30d or 2w", ExitCode.USAGE)
    number, unit = int(match.group(1)), match.group(2)
    delta = {"h": datetime.timedelta(hours=number), "d": datetime.timedelta(days=number)}.get(unit)
    result = delta if delta is not None else datetime.timedelta(weeks=number)
    if result <= datetime.timedelta(0) or result > datetime.timedelta(days=3650):
        raise CliError(f"the duration {text!r} is out of range", "use between 1h and 3650d", ExitCode.USAGE)
    return result


# ---- status ----------------------------------------------------------------------------------------------------
def _this_week_reporter(session: AppSession) -> str | None:
    try:
        secret = bytes.fromhex(session.paths.secret.read_text("ascii").strip())
    except (OSError, ValueError):
        return None
    return reporter_id(secret, session.manifest.name, session.clock.today())


def _status_document(session: AppSession, *, verbose: bool) -> dict[str, object]:
    decision = session.decision
    consent = session.consent
    state = load_state(session.paths, repair=False) if session.paths.state.exists() else None
    document: dict[str, object] = {
        "app": session.manifest.name,
        "mode": decision.mode,
        "level": decision.level,
        "consented_mode": consent.mode,
        "consented_level": consent.level,
        "since": consent.given.isoformat() if consent.given else None,
        "expires": consent.expires.isoformat() if consent.expires else None,
        "consent_version": consent.consent_version,
        "manifest_consent_version": session.manifest.consent_version,
        "reason": decision.reason,
        "ask_again": decision.ask,
        "pending_reports": len(session.outbox.pending()),
        "last_upload": state.last_success.isoformat() if state and state.last_success else None,
        "reporter_id_this_week": _this_week_reporter(session),
        "data_folder": str(session.paths.root),
        "indicator": indicator(decision),
        "levels": [
            {"name": level.name, "description": level.description, "host": level.host}
            for level in session.manifest.levels
        ],
        "plugins": dict(consent.plugins),
    }
    if verbose:
        document["drops"] = state.drops if state else {}
        document["internal_errors"] = [type(error).__name__ for error in internal_errors()]
    return document


def cmd_status(args: argparse.Namespace) -> ExitCode:
    """Show the state of one application or of all."""
    if args.app is None:
        paths = Paths.from_environment()
        rows = []
        for name in known_apps(paths):
            args.app = name
            try:
                rows.append(_status_document(_session(args), verbose=args.verbose))
            except CliError as error:
                rows.append({"app": name, "error": str(error)})
        if args.json:
            _json({"home": str(paths.home), "apps": rows})
        else:
            _out(f"Consentry home: {paths.home}")
            if not rows:
                _out("No application using Consentry is known here yet.")
            for row in rows:
                _out(f"  {row['app']}: {row.get('indicator', row.get('error'))}")
        return ExitCode.OK
    session = _session(args)
    document = _status_document(session, verbose=args.verbose)
    if args.json:
        _json(document)
        return ExitCode.OK
    _out(f"{document['app']}: {document['indicator']}")
    labels = {
        "reason": "why",
        "since": "consent given",
        "expires": "expires",
        "consent_version": "consent version",
        "manifest_consent_version": "manifest version",
        "pending_reports": "pending reports",
        "last_upload": "last upload",
        "reporter_id_this_week": "reporter id (week)",
        "data_folder": "data folder",
    }
    for key, label in labels.items():
        value = document[key]
        _out(f"  {label:<19} {'-' if value is None else value}")
    if document["ask_again"]:
        _out(f"  Consent is needed: run `consentry enable {session.manifest.name}` or `consentry disable ...`.")
    _out("  levels:")
    for level in session.manifest.levels:
        where = f" -> {level.host}" if level.host else ""
        _out(f"    {level.name:<8} {level.description}{where}")
    if args.verbose:
        _out(f"  drops               {document['drops'] or 'none'}")
        _out(f"  internal errors     {document['internal_errors'] or 'none'}")
    return ExitCode.OK


# ---- answers -----------------------------------------------------------------------------------------------------
def cmd_set_mode(args: argparse.Namespace) -> ExitCode:
    """``enable``, ``local`` and ``ask``."""
    session = _session(args)
    level = args.level
    if level is not None and level not in session.manifest.level_names:
        raise CliError(
            f"{session.manifest.name!r} has no level {level!r}",
            f"choose one of {', '.join(session.manifest.level_names)}",
            ExitCode.USAGE,
        )
    session = session.set_consent(args.mode, level, valid_for=_duration(args.valid_for))
    consent = session.consent
    until = f" until {consent.expires.isoformat()}" if consent.expires else ""
    _out(f"{session.manifest.name}: mode {consent.mode}, level {consent.level}{until}.")
    _out(f"Undo with `consentry disable {session.manifest.name}`; see what is sent with `consentry preview`.")
    decision = session.decision
    if not decision.record:
        _out(f"Note: nothing will be recorded for now: {decision.reason}.")
        return ExitCode.SWITCHED_OFF
    return ExitCode.OK


def cmd_disable(args: argparse.Namespace) -> ExitCode:
    """Switch one application, or all, off."""
    if args.all:
        paths = Paths.from_environment()
        settings = read_json(paths.settings) or {}
        settings["disable_all"] = True
        write_json(paths.settings, settings)
        _out(f"Telemetry is now off for every application using Consentry ({paths.settings}).")
        _out("Undo with `consentry enable-all`.")
        return ExitCode.OK
    if args.app is None:
        raise CliError("say which application to disable", "consentry disable APP, or --all", ExitCode.USAGE)
    session = _session(args)
    sent_ever = load_state(session.paths, repair=False).sent_ever if session.paths.state.exists() else False
    deleted = len(session.outbox.pending())
    session.set_consent("off")
    _out(f"{session.manifest.name}: telemetry is off; {deleted} unsent report(s) deleted.")
    if sent_ever:
        _out(f"Reports were sent before; to ask the servers to delete them: consentry forget {session.manifest.name}")
    return ExitCode.OK


def cmd_enable_all(_: argparse.Namespace) -> ExitCode:
    """Lift the user-wide switch."""
    paths = Paths.from_environment()
    settings = read_json(paths.settings) or {}
    settings.pop("disable_all", None)
    write_json(paths.settings, settings)
    _out("The user-wide switch is lifted; each application stays as you last answered.")
    return ExitCode.OK


# ---- reports -----------------------------------------------------------------------------------------------------
def cmd_preview(args: argparse.Namespace) -> ExitCode:
    """Print pending reports byte for byte."""
    session = _session(args)
    session.prepare_reports()
    pending = session.outbox.pending()
    if args.raw:
        for report in pending:
            sys.stdout.buffer.write(report.read())
        sys.stdout.flush()
        return ExitCode.OK
    if args.json:
        _json(
            [
                {
                    "file": str(report.path),
                    "day": report.day.isoformat(),
                    "level": report.level,
                    "url": session.manifest.level(report.level).endpoint
                    if report.level in session.manifest.level_names
                    else None,
                    "approved": report.approved,
                    "report": json.loads(report.read()),
                }
                for report in pending
            ]
        )
        return ExitCode.OK
    if not pending:
        _out(f"{session.manifest.name}: nothing is waiting to be sent ({session.decision.reason}).")
        return ExitCode.OK
    for index, report in enumerate(pending, 1):
        url = session.manifest.level(report.level).endpoint if report.level in session.manifest.level_names else "?"
        _out(f"# report {index} of {len(pending)}: level {report.level}, {report.day}, to {url}")
        _out(f"# file {report.path}")
        sys.stdout.flush()
        sys.stdout.buffer.write(report.read())
        sys.stdout.flush()
    return ExitCode.OK


def _upload(session: AppSession, *, as_json: bool) -> ExitCode:
    result = session.upload(force=True)
    if as_json:
        _json(
            {
                "sent": result.sent,
                "dropped": result.dropped,
                "kept": result.kept,
                "waiting_approval": result.waiting_approval,
                "messages": result.messages,
            }
        )
    else:
        _out(
            f"{session.manifest.name}: {result.sent} sent, {result.dropped} refused and dropped, {result.kept} kept "
            f"for later, {result.waiting_approval} waiting for approval."
        )
        for message in result.messages:
            _out(f"  {message}")
    if result.dropped:
        return ExitCode.REFUSED
    if result.kept:
        return ExitCode.NOT_SENT
    return ExitCode.OK


def cmd_upload(args: argparse.Namespace) -> ExitCode:
    """Send pending reports now."""
    session = _session(args)
    decision = session.decision
    if not decision.send:
        session.prepare_reports()
        _out(f"{session.manifest.name}: nothing is sent: {decision.reason}.")
        return ExitCode.SWITCHED_OFF
    session.prepare_reports()
    return _upload(session, as_json=args.json)


def cmd_approve(args: argparse.Namespace) -> ExitCode:
    """Approve pending reports and send them."""
    session = _session(args)
    session.prepare_reports()
    pending = session.outbox.pending()
    for report in pending:
        session.outbox.approve(report)
    _out(f"{session.manifest.name}: {len(pending)} report(s) approved.")
    if not session.decision.send:
        _out(f"Nothing is sent: {session.decision.reason}.")
        return ExitCode.SWITCHED_OFF
    return _upload(session, as_json=False)


def cmd_history(args: argparse.Namespace) -> ExitCode:
    """List uploads."""
    session = _session(args)
    entries = session.outbox.history()
    if args.json:
        _json(
            [
                {"time": e.time, "url": e.url, "status": e.status, "outcome": e.outcome}
                | ({"report": json.loads(e.report)} if args.bytes else {})
                for e in entries
            ]
        )
        return ExitCode.OK
    if not entries:
        _out(f"{session.manifest.name}: nothing was ever sent.")
    for entry in entries:
        _out(f"{entry.time}  {entry.status}  {entry.url}  {entry.outcome}")
        if args.bytes:
            _out(entry.report.rstrip("\n"))
    return ExitCode.OK


def cmd_endpoints(args: argparse.Namespace) -> ExitCode:
    """List hosts per level."""
    session = _session(args)
    rows = [
        {"level": level.name, "url": level.endpoint, "host": level.host}
        for level in session.manifest.levels
        if level.endpoint
    ]
    if args.json:
        _json(rows)
        return ExitCode.OK
    for row in rows:
        _out(f"{row['level']:<10} {row['host']:<40} {row['url']}")
    return ExitCode.OK


def cmd_apps(args: argparse.Namespace) -> ExitCode:
    """List known applications."""
    apps = known_apps(Paths.from_environment())
    if args.json:
        _json([{"app": name, "found": where} for name, where in apps.items()])
        return ExitCode.OK
    if not apps:
        _out("No application using Consentry is known here yet.")
    for name, where in apps.items():
        _out(f"{name:<30} {where}")
    return ExitCode.OK


def cmd_plugins(args: argparse.Namespace) -> ExitCode:
    """Show, allow or deny plugins."""
    session = _session(args)
    for name in args.allow:
        session = session.set_plugin_choice(name, "allow")
    for name in args.deny:
        session = session.set_plugin_choice(name, "deny")
    choices = dict(session.consent.plugins)
    default = session.manifest.plugins.default
    if args.json:
        _json({"policy": session.manifest.plugins.policy, "default": default, "choices": choices})
        return ExitCode.OK
    _out(f"{session.manifest.name}: plugins policy {session.manifest.plugins.policy}; unlisted plugins: {default}")
    for name, choice in sorted(choices.items()):
        _out(f"  {name:<30} {choice}")
    return ExitCode.OK


def cmd_forget(args: argparse.Namespace) -> ExitCode:
    """Deletion request, then local purge."""
    session = _session(args)
    outcomes = [] if args.local_only else request_deletion(session, HttpTransport(user_agent="consentry-cli"))
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if not failed:
        session.purge()
    if args.json:
        rows = [{"url": o.url, "ok": o.ok, "deleted": o.deleted, "message": o.message} for o in outcomes]
        _json({"requests": rows, "purged": not failed})
    else:
        if not outcomes:
            note = "no server contacted" if args.local_only else "nothing was ever reported from here"
            _out(f"{session.manifest.name}: {note}.")
        for outcome in outcomes:
            detail = f"{outcome.deleted} row(s) deleted" if outcome.ok else outcome.message
            _out(f"  {outcome.url}: {detail}")
        if failed:
            _out("Nothing was deleted here, so you can try again later (or use --local-only).")
        else:
            _out(f"{session.manifest.name}: telemetry is off and every local file is deleted.")
    return ExitCode.NOT_SENT if failed else ExitCode.OK


def cmd_purge(args: argparse.Namespace) -> ExitCode:
    """Switch off and delete everything local."""
    if args.all:
        names = list(known_apps(Paths.from_environment()))
    elif args.app is not None:
        names = [args.app]
    else:
        raise CliError("say which application to purge", "consentry purge APP, or --all", ExitCode.USAGE)
    for name in names:
        args.app = name
        _session(args).purge()
        _out(f"{name}: telemetry is off and every local file is deleted.")
    return ExitCode.OK


def cmd_verify(args: argparse.Namespace) -> ExitCode:
    """Check a usage certificate (in a module of its own: it is the one command that needs no application)."""
    from consentry.cli.verify import verify_command  # noqa: PLC0415 - imported only by this command

    return verify_command(args)


HANDLERS: dict[str, Callable[[argparse.Namespace], ExitCode]] = {
    "status": cmd_status,
    "enable": cmd_set_mode,
    "local": cmd_set_mode,
    "ask": cmd_set_mode,
    "disable": cmd_disable,
    "enable-all": cmd_enable_all,
    "preview": cmd_preview,
    "approve": cmd_approve,
    "upload": cmd_upload,
    "history": cmd_history,
    "endpoints": cmd_endpoints,
    "apps": cmd_apps,
    "plugins": cmd_plugins,
    "forget": cmd_forget,
    "purge": cmd_purge,
    "verify": cmd_verify,
}


def run(args: argparse.Namespace) -> ExitCode:
    """Dispatch to the handler of ``args.command``; turn expected failures into messages and exit codes."""
    try:
        return HANDLERS[args.command](args)
    except CliError as error:
        sys.stderr.write(f"consentry: error: {error}\n")
        if error.hint:
            sys.stderr.write(f"hint: {error.hint}\n")
        return error.code
    except OSError as error:
        sys.stderr.write(f"consentry: error: {error}\n")
        sys.stderr.write(f"hint: check that {Path(getattr(error, 'filename', '') or '.')} is writable\n")
        return ExitCode.ERROR
