"""The subcommands of ``consentry``. The CLI owns stdout, stderr and exit codes; the library never prints."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from consentry import __version__
from consentry._consent.answers import Consent, Decision, load_consent
from consentry._guard import internal_errors
from consentry._local.bookkeeping import load_state
from consentry._local.counts import StoreError
from consentry._local.files import read_json, write_json
from consentry._local.paths import Paths
from consentry._local.session import AppSession, purge_files
from consentry._send.deletion import request_deletion
from consentry._send.outbox import HistoryEntry, PendingReport, UnreadableReportError
from consentry._send.reports import reporter_id
from consentry._send.today import PartialReport, TodayResult, today_reports
from consentry.cli.discover import UnknownAppError, find_manifest, known_apps, manifest_candidates
from consentry.cli.failures import CliError, ExitCode
from consentry.manifest import NONE_LEVEL, ManifestError
from consentry.transport import HttpTransport
from consentry.wire.schema import APP_NAME

__all__ = ["VERSION", "indicator", "run"]

VERSION = __version__
#: Where users report bugs.
_ISSUES = "https://github.com/consentry/consentry/issues"


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
        raise CliError(str(error), _unknown_app_hint(args), ExitCode.UNKNOWN_APP) from None
    except ManifestError as error:
        raise CliError(f"the manifest of {args.app!r} is invalid:\n{error}", code=ExitCode.BAD_MANIFEST) from None
    return AppSession.open(manifest, home=paths.home)


def _unknown_app_hint(args: argparse.Namespace) -> str:
    """What the user can do about an application the CLI does not know: a run of it without an answer does not help."""
    if getattr(args, "manifest", None) is not None:
        return "give the manifest of this application with --manifest FILE"
    command = f"consentry {args.command} {args.app}"
    found = manifest_candidates(args.app)
    if found:
        return f"its installed package ships a manifest: {command} --manifest {found[0]}"
    return (
        f"give the manifest file the application ships: {command} --manifest FILE. The application becomes known here "
        "once you answered its own consent question, or when its package declares the manifest in the "
        "`consentry.manifests` entry-point group (see docs/embedding.md); `consentry apps` lists the known ones"
    )


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
    pending = session.outbox.pending()
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
        "pending_reports": len(pending),
        "waiting_approval": sum(  # in local mode (or switched off) nothing is sent at all: none waits for you
            1 for r in pending if decision.send and not r.approved and not decision.sends_unasked(r.epoch)
        ),
        "last_upload": state.last_success.isoformat() if state and state.last_success else None,
        # Why the pending reports wait, when the server refused the last upload for its own configuration.
        "uploads_wait": state.waiting if state and pending and decision.send else None,
        "next_upload_after": state.retry_after.isoformat() if state and state.retry_after and pending else None,
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


def _cmd_status(args: argparse.Namespace) -> ExitCode:
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
        "waiting_approval": "waiting for you",
        "last_upload": "last upload",
        "uploads_wait": "uploads wait",
        "next_upload_after": "next try after",
        "reporter_id_this_week": "reporter id (week)",
        "data_folder": "data folder",
    }
    for key, label in labels.items():
        value = document[key]
        if value is None and key in ("uploads_wait", "next_upload_after"):
            continue  # shown only when uploads wait
        _out(f"  {label:<19} {'-' if value is None else value}")
    if document["ask_again"]:
        _out(f"  Consent is needed: run `consentry enable {session.manifest.name}` or `consentry disable ...`.")
    _out("  levels:")
    for level in session.manifest.levels:
        where = f" -> {level.host}" if level.host else ""
        _out(f"    {level.name:<8} {level.description}{where}")
    if args.verbose:
        drops = cast("dict[str, int]", document["drops"])
        _out(f"  drops               {'none' if not drops else ''}")
        for reason, n in sorted(drops.items(), key=lambda item: (-item[1], item[0])):
            _out(f"    {n:>6}  {reason}")
        errors = cast("list[str]", document["internal_errors"])
        _out(f"  internal errors     {', '.join(errors) if errors else 'none'}")
    return ExitCode.OK


# ---- answers -----------------------------------------------------------------------------------------------------
def _cmd_set_mode(args: argparse.Namespace) -> ExitCode:
    """``enable``, ``local`` and ``ask``."""
    session = _session(args)
    level = args.level
    name = session.manifest.name
    if level == NONE_LEVEL:
        raise CliError(
            f"level {NONE_LEVEL!r} collects nothing", f"to switch off, run `consentry disable {name}`", ExitCode.USAGE
        )
    if level is not None and level not in session.manifest.level_names:
        choices = [item for item in session.manifest.level_names if item != NONE_LEVEL]
        raise CliError(f"{name!r} has no level {level!r}", f"choose one of {', '.join(choices)}", ExitCode.USAGE)
    session = session.set_consent(args.mode, level, valid_for=_duration(args.valid_for))
    consent = session.consent
    until = f" until {consent.expires.isoformat()}" if consent.expires else ""
    _out(f"{name}: mode {consent.mode}, level {consent.level}{until}.")
    _out(f"Undo with `consentry disable {name}`; see what would be sent with `consentry preview {name}`.")
    decision = session.decision
    if not decision.record:
        _out(f"Note: nothing will be recorded for now: {decision.reason}.")
        return ExitCode.SWITCHED_OFF
    kept = _kept_reports(session)
    if kept:
        _out(
            f"{kept} report(s) recorded before this answer stay on this computer and are not sent unless you say so: "
            f"see them with `consentry preview {name}`, send them with `consentry approve {name}`, delete them "
            f"with `consentry reject {name}`. Data recorded earlier today waits for your approval too."
        )
    return ExitCode.OK


def _kept_reports(session: AppSession) -> int:
    """Reports (including those of completed days not yet built) that the current answer does not send unasked."""
    with contextlib.suppress(StoreError, OSError):
        session.prepare_reports()
    decision = session.decision
    if decision.ask_mode or not decision.send:
        return 0  # every report waits anyway (ask), or none is ever sent (local): nothing to point out
    return sum(
        1 for report in session.outbox.pending() if not report.approved and not decision.sends_unasked(report.epoch)
    )


def _cmd_disable(args: argparse.Namespace) -> ExitCode:
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


def _cmd_enable_all(_: argparse.Namespace) -> ExitCode:
    """Lift the user-wide switch."""
    paths = Paths.from_environment()
    settings = read_json(paths.settings) or {}
    settings.pop("disable_all", None)
    write_json(paths.settings, settings)
    _out("The user-wide switch is lifted; each application stays as you last answered.")
    return ExitCode.OK


# ---- reports -----------------------------------------------------------------------------------------------------
def _prepare(session: AppSession) -> None:
    """Turn completed days into reports; if that cannot be done now (a read-only or full disk), say so and go on."""
    try:
        session.prepare_reports()
    except (StoreError, OSError) as error:
        sys.stderr.write(f"consentry: warning: completed days cannot be turned into reports now: {error}\n")
        sys.stderr.write(f"hint: check that {session.paths.root} is writable; the reports already pending follow\n")


def _state_of(session: AppSession, report: PendingReport) -> str:
    """How ``report`` will go: sent as it is, or waiting for the user, and why."""
    decision = session.decision
    if report.approved:
        return "approved by you"
    if decision.sends_unasked(report.epoch):
        return "sent automatically"
    if decision.ask_mode:
        return "waits for your approval"
    if not decision.send:
        return "kept on this computer"
    return "waits for your approval (recorded before your current answer)"


def _url(session: AppSession, report: PendingReport) -> str | None:
    return session.manifest.level(report.level).endpoint if report.level in session.manifest.level_names else None


@dataclass(frozen=True)
class _Shown:
    """One report as ``preview`` shows it: what it is, where it goes, and its bytes (``None``: unreadable)."""

    report: PendingReport | PartialReport
    url: str | None
    status: str
    data: bytes | None
    heading: Callable[[int, int], str]  # of the report's number and how many there are
    note: str
    extra: dict[str, object] = field(default_factory=dict)


def _show(shown: list[_Shown], args: argparse.Namespace, nothing: str) -> ExitCode:
    """Print ``shown`` as ``preview`` does: raw bytes, JSON, or each report under its heading."""
    if args.raw:
        for item in shown:
            if item.data is not None:
                sys.stdout.buffer.write(item.data)
        sys.stdout.flush()
        return ExitCode.OK
    if args.json:
        _json(
            [
                {
                    "name": item.report.name,
                    "file": str(item.report.path),
                    "day": item.report.day.isoformat(),
                    "level": item.report.level,
                    "url": item.url,
                    **item.extra,
                    "status": item.status,
                    "report": json.loads(item.data) if item.data is not None else None,
                }
                for item in shown
            ]
        )
        return ExitCode.OK
    if not shown:
        _out(nothing)
        return ExitCode.OK
    for index, item in enumerate(shown, 1):
        _out(item.heading(index, len(shown)))
        _out(f"# file {item.report.path}")
        _out(f"# {item.note}")
        if item.data is not None:
            sys.stdout.flush()
            sys.stdout.buffer.write(item.data)
            sys.stdout.flush()
    return ExitCode.OK


def _cmd_preview(args: argparse.Namespace) -> ExitCode:
    """Print pending reports byte for byte."""
    session = _session(args)
    if args.today:
        return _preview_today(session, args)
    _prepare(session)
    shown = []
    for report in session.outbox.pending():
        about = f"{report.name}, level {report.level}, to {_url(session, report)}"

        def heading(index: int, count: int, about: str = about) -> str:
            return f"# report {index} of {count}: {about}"

        try:
            data: bytes | None = session.outbox.check(report, session.manifest.name)
        except (UnreadableReportError, OSError) as unreadable:
            note = f"unreadable, will not be sent (it is set aside at the next upload): {unreadable}"
            extra: dict[str, object] = {"approved": report.approved, "error": str(unreadable)}
            shown.append(_Shown(report, _url(session, report), "unreadable: not sent", None, heading, note, extra))
            continue
        status = _state_of(session, report)
        extra = {"approved": report.approved, "error": None}
        shown.append(_Shown(report, _url(session, report), status, data, heading, status, extra))
    return _show(shown, args, f"{session.manifest.name}: nothing is waiting to be sent ({session.decision.reason}).")


def _upload(session: AppSession, *, as_json: bool) -> ExitCode:
    result = session.upload(force=True)
    if as_json:
        _json(
            {
                "sent": result.sent,
                "dropped": result.dropped,
                "kept": result.kept,
                "waiting_approval": result.waiting_approval,
                "quarantined": result.quarantined,
                "messages": result.messages,
            }
        )
    else:
        unreadable = f", {result.quarantined} unreadable set aside" if result.quarantined else ""
        _out(
            f"{session.manifest.name}: {result.sent} sent, {result.dropped} refused and dropped, {result.kept} kept "
            f"for later, {result.waiting_approval} waiting for approval{unreadable}."
        )
        for message in result.messages:
            _out(f"  {message}")
    if result.dropped:
        return ExitCode.REFUSED
    if result.kept:
        return ExitCode.NOT_SENT
    return ExitCode.OK


def _cmd_upload(args: argparse.Namespace) -> ExitCode:
    """Send pending reports now."""
    session = _session(args)
    decision = session.decision
    if not decision.send:
        _out(f"{session.manifest.name}: nothing is sent: {decision.reason}.")
        return ExitCode.SWITCHED_OFF
    if args.today:
        return _upload_today(session, as_json=args.json)
    _prepare(session)
    return _upload(session, as_json=args.json)


# ---- today's partial reports (consentry._send.today) ---------------------------------------------------------------
_PARTIAL_NOTE = (
    "partial: today so far, not queued; the whole day is reported after midnight as usual and replaces it on "
    "the server, so nothing is counted twice"
)


def _today(session: AppSession, *, send: bool) -> TodayResult:
    result = today_reports(session, send=send)
    if result.busy:
        raise CliError(
            "another process is building or sending reports of this application",
            "try again in a moment",
            ExitCode.NOT_SENT,
        )
    return result


def _nothing_today(session: AppSession) -> str:
    decision = session.decision
    if not decision.record:
        return f"{session.manifest.name}: nothing is recorded ({decision.reason})."
    return (
        f"{session.manifest.name}: nothing was recorded today yet. Counts reach the disk every ten minutes and when "
        "the application exits (or calls flush()): quit it, then try again."
    )


def _preview_today(session: AppSession, args: argparse.Namespace) -> ExitCode:
    """``consentry preview APP --today``: today's partial reports, byte for byte."""
    result = _today(session, send=False)
    as_of = result.as_of.strftime("%H:%M UTC")
    shown = []
    for report in result.reports:
        url = session.manifest.level(report.level).endpoint
        about = f"{report.name} as of {as_of}, level {report.level}, to {url}"

        def heading(index: int, count: int, about: str = about) -> str:
            return f"# PARTIAL report {index} of {count}: {about}"

        status = _today_state(session, report.epoch)
        extra: dict[str, object] = {"partial": True, "as_of": result.as_of.isoformat()}
        shown.append(_Shown(report, url, status, report.data, heading, f"{_PARTIAL_NOTE}; {status}", extra))
    return _show(shown, args, _nothing_today(session))


def _today_state(session: AppSession, epoch: str | None) -> str:
    decision = session.decision
    if decision.sends_unasked(epoch):
        return f"`consentry upload {session.manifest.name} --today` sends it now"
    if not decision.send:
        return "never sent from here (" + decision.reason + ")"
    return "not sent before the day ends: it waits for your approval tomorrow"


def _upload_today(session: AppSession, *, as_json: bool) -> ExitCode:
    """``consentry upload APP --today``: build today's partial reports and send them once."""
    result = _today(session, send=True)
    if as_json:
        _json(
            {
                "day": result.day.isoformat(),
                "as_of": result.as_of.isoformat(),
                "partial": True,
                "built": len(result.reports),
                "sent": result.sent,
                "refused": result.refused,
                "not_sent": result.not_sent,
                "messages": result.messages,
            }
        )
    elif not result.reports:
        _out(_nothing_today(session))
    else:
        _out(
            f"{session.manifest.name}: today's partial report(s) as of {result.as_of.strftime('%H:%M UTC')}: "
            f"{result.sent} sent, {result.refused} refused, {result.not_sent} not sent (none is kept for later)."
        )
        for message in result.messages:
            _out(f"  {message}")
        _out(f"  ({_PARTIAL_NOTE}; `consentry history {session.manifest.name}` shows what was sent.)")
    if result.refused:
        return ExitCode.REFUSED
    if result.not_sent:
        return ExitCode.NOT_SENT
    return ExitCode.OK


def _chosen(session: AppSession, names: list[str]) -> list[PendingReport]:
    reports, unknown = session.outbox.select(names)
    if unknown:
        pending = ", ".join(report.name for report in session.outbox.pending()) or "none"
        raise CliError(
            f"no pending report {', '.join(map(repr, unknown))} for {session.manifest.name}",
            f"pending reports: {pending} (see `consentry preview {session.manifest.name}`)",
            ExitCode.USAGE,
        )
    return reports


def _cmd_approve(args: argparse.Namespace) -> ExitCode:
    """Approve pending reports and send them."""
    session = _session(args)
    _prepare(session)
    reports = _chosen(session, args.reports)
    for report in reports:
        session.outbox.approve(report)
    _out(f"{session.manifest.name}: {len(reports)} report(s) approved.")
    if not session.decision.send:
        _out(f"Nothing is sent: {session.decision.reason}.")
        return ExitCode.SWITCHED_OFF
    return _upload(session, as_json=False)


def _cmd_reject(args: argparse.Namespace) -> ExitCode:
    """Delete pending reports unsent, recording each in the history as rejected."""
    session = _session(args)
    _prepare(session)
    reports = _chosen(session, args.reports)
    now = session.clock.now().isoformat()
    for report in reports:
        try:
            text = report.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        session.outbox.record(HistoryEntry(now, _url(session, report) or "", 0, "rejected by you: not sent", text))
        session.outbox.remove(report)
    _out(f"{session.manifest.name}: {len(reports)} report(s) deleted without being sent.")
    return ExitCode.OK


def _cmd_history(args: argparse.Namespace) -> ExitCode:
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


def _cmd_endpoints(args: argparse.Namespace) -> ExitCode:
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


def _cmd_apps(args: argparse.Namespace) -> ExitCode:
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


def _cmd_plugins(args: argparse.Namespace) -> ExitCode:
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


def _cmd_forget(args: argparse.Namespace) -> ExitCode:
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


def _cmd_purge(args: argparse.Namespace) -> ExitCode:
    """Switch off and delete everything local; with --all, every application, even one whose manifest is gone."""
    if not args.all and args.app is None:
        raise CliError("say which application to purge", "consentry purge APP, or --all", ExitCode.USAGE)
    if not args.all:
        _session(args).purge()
        _out(f"{args.app}: telemetry is off and every local file is deleted.")
        return ExitCode.OK
    paths = Paths.from_environment()
    problems = []
    for name in sorted(set(known_apps(paths)) | set(_app_folders(paths))):
        try:
            _purge_one(paths, name)
        except OSError as error:
            problems.append(name)
            sys.stderr.write(f"consentry: error: {name}: could not delete everything: {error}\n")
            continue
        _out(f"{name}: telemetry is off and every local file is deleted.")
    if problems:
        sys.stderr.write(f"hint: check that {paths.apps} is writable, then run `consentry purge --all` again\n")
        return ExitCode.ERROR
    return ExitCode.OK


def _app_folders(paths: Paths) -> list[str]:
    try:
        return [entry.name for entry in paths.apps.iterdir() if entry.is_dir() and APP_NAME.regex.fullmatch(entry.name)]
    except OSError:
        return []


def _purge_one(paths: Paths, name: str) -> None:
    """Purge one application: with its manifest the usual way; without one, its files and an answer of "no"."""
    app = paths.app(name)
    try:
        manifest = find_manifest(name, paths)
    except (UnknownAppError, ManifestError):
        manifest = None
    if manifest is not None:
        AppSession.open(manifest, home=paths.home).purge()
        return
    purge_files(app)
    consent = load_consent(app)
    write_json(app.consent, {**Consent().to_document(), "asked_version": consent.asked_version})


def _cmd_verify(args: argparse.Namespace) -> ExitCode:
    """Check a usage certificate (in a module of its own: it is the one command that needs no application)."""
    from consentry.cli.verify import verify_command  # noqa: PLC0415 - imported only by this command

    return verify_command(args)


_HANDLERS: dict[str, Callable[[argparse.Namespace], ExitCode]] = {
    "status": _cmd_status,
    "enable": _cmd_set_mode,
    "local": _cmd_set_mode,
    "ask": _cmd_set_mode,
    "disable": _cmd_disable,
    "enable-all": _cmd_enable_all,
    "preview": _cmd_preview,
    "approve": _cmd_approve,
    "reject": _cmd_reject,
    "upload": _cmd_upload,
    "history": _cmd_history,
    "endpoints": _cmd_endpoints,
    "apps": _cmd_apps,
    "plugins": _cmd_plugins,
    "forget": _cmd_forget,
    "purge": _cmd_purge,
    "verify": _cmd_verify,
}


def run(args: argparse.Namespace) -> ExitCode:
    """Dispatch to the handler of ``args.command``; turn every failure into a message and an exit code."""
    try:
        return _HANDLERS[args.command](args)
    except CliError as error:
        sys.stderr.write(f"consentry: error: {error}\n")
        if error.hint:
            sys.stderr.write(f"hint: {error.hint}\n")
        return error.code
    except BrokenPipeError:
        raise  # the reader went away: main() stops quietly
    except (OSError, StoreError) as error:
        sys.stderr.write(f"consentry: error: {error}\n")
        sys.stderr.write(f"hint: check that {_folder_of(error)} is writable and the disk is not full\n")
        return ExitCode.ERROR
    except Exception as error:  # noqa: BLE001 - a bug of ours: one line for the user, never a traceback
        sys.stderr.write(f"consentry: internal error: {type(error).__name__}: {error}\n")
        sys.stderr.write(f"hint: please report it at {_ISSUES}, with the command you ran\n")
        return ExitCode.ERROR


def _folder_of(error: BaseException) -> Path:
    """The folder to name in a hint: the file's own folder (never a temporary file's name), else the home."""
    name = getattr(error, "filename", None)
    if isinstance(name, (str, bytes, os.PathLike)) and os.fspath(name):
        path = Path(os.fsdecode(name))
        return path if path.is_dir() else path.parent
    return Paths.from_environment().home
